"""VAEs over one shared latent space: any encoder paired with any decoder."""

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp


def reparameterize(rng, mean, logvar):
  """z = mean + sigma * eps, eps ~ N(0, I)."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


class CrossModalVAE(nn.Module):
  """Encoders and decoders of several modalities sharing one latent space.

  `__call__(x, source=..., target=...)` encodes x with encoders[source] and
  decodes with decoders[target]. In training the latent is a reparameterised
  sample (rng stream 'latent'); at evaluation it is the posterior mean. The
  log-variance is clamped to [-logvar_clip, logvar_clip] so exp never
  overflows. deterministic_latent=True always uses the mean (the beta = 0
  Martinez et al. baseline).
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

  def init_all(self, inputs):
    """Touches every encoder and decoder (for `init`); inputs: {modality: batch}."""
    z = None
    for name in self.encoders:
      z, _ = self.encode(inputs[name], name, train=False)
    for name in self.decoders:
      self.decode(z, name, train=False)
    return z
