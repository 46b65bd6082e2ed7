"""VAEs over one shared latent space: any encoder paired with any decoder."""

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp


def reparameterize(rng, mean, logvar, temperature=1.0):
  """z = mean + temperature * sigma * eps, eps ~ N(0, I)."""
  eps = jax.random.normal(rng, mean.shape, mean.dtype)
  return mean + temperature * jnp.exp(0.5 * logvar) * eps


class CrossModalVAE(nn.Module):
  """Encoders and decoders of several modalities sharing one latent space.

  `__call__(x, source=..., target=...)` encodes x with encoders[source] and
  decodes with decoders[target]. In training the latent is a reparameterised
  sample (rng stream 'latent'); at evaluation it is the posterior mean. The
  log-variance is clamped to [-logvar_clip, logvar_clip] so exp never
  overflows. deterministic_latent=True always uses the mean (the beta = 0
  Martinez et al. baseline). `conditional` is the CVAE pass of a learned prior.
  """
  encoders: Mapping[str, nn.Module]
  decoders: Mapping[str, nn.Module]
  logvar_clip: float = 10.0
  deterministic_latent: bool = False

  def encode(self, x, source, train):
    mean, logvar = self.encoders[source](x, train)
    return mean, jnp.clip(logvar, -self.logvar_clip, self.logvar_clip)

  def decode(self, z, target, train):
    return self.decoders[target](z, train)

  def __call__(self, x, *, source, target, train):
    mean, logvar = self.encode(x, source, train)
    if train and not self.deterministic_latent:
      z = reparameterize(self.make_rng('latent'), mean, logvar)
    else:
      z = mean
    return {'recon': self.decode(z, target, train), 'mean': mean, 'logvar': logvar, 'z': z}

  def conditional(self, x, pose_3d, *, source, train, decode_prior, prior_temperature=1.0):
    """A CVAE pass of a pair ending in 3D: the posterior q(z | 3D) from the 3D encoder,
    the prior p(z | x) from the `source` encoder; decodes a posterior sample and, with
    `decode_prior`, a prior sample too (one decoder call over both, so BatchNorm sees one
    batch; `prior_temperature` scales its sigma, 0 decodes the prior mean). Returns recon,
    recon_prior (or None) and the moments of q and p."""
    prior_mean, prior_logvar = self.encode(x, source, train)
    mean, logvar = self.encode(pose_3d, 'pose_3d', train)
    z = reparameterize(self.make_rng('latent'), mean, logvar)
    if decode_prior:
      z_prior = reparameterize(self.make_rng('latent'), prior_mean, prior_logvar,
                               prior_temperature)
      recon = self.decode(jnp.concatenate([z, z_prior]), 'pose_3d', train)
      recon, recon_prior = recon[:z.shape[0]], recon[z.shape[0]:]
    else:
      recon, recon_prior = self.decode(z, 'pose_3d', train), None
    return {'recon': recon, 'recon_prior': recon_prior, 'mean': mean, 'logvar': logvar,
            'prior_mean': prior_mean, 'prior_logvar': prior_logvar}

  def init_all(self, inputs):
    """Touches every encoder and decoder (for `init`); inputs: {modality: batch}."""
    z = None
    for name in self.encoders:
      z, _ = self.encode(inputs[name], name, train=False)
    for name in self.decoders:
      self.decode(z, name, train=False)
    return z
