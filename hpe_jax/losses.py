"""VAE losses: reconstruction, and the KL divergence to the standard normal prior or to a
learned conditional prior."""

import jax.numpy as jnp


def kl_divergence(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)) summed over the latent dims -> (N,)."""
  mean, logvar = mean.astype(jnp.float32), logvar.astype(jnp.float32)
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def gaussian_kl_loss(mean, logvar, num_elements):
  """Batch-mean KL divided by the reconstruction's element count (e.g. 16x3 = 48 for 3D pose).

  The thesis normalises the KLD this way so one beta suits modalities of any size.
  """
  return jnp.mean(kl_divergence(mean, logvar)) / num_elements


def gaussian_kl(mean_q, logvar_q, mean_p, logvar_p):
  """KL(N(mean_q, exp(logvar_q)) || N(mean_p, exp(logvar_p))), diagonal Gaussians, summed
  over the latent dims -> (N,)."""
  mean_q, logvar_q, mean_p, logvar_p = (
      a.astype(jnp.float32) for a in (mean_q, logvar_q, mean_p, logvar_p))
  return 0.5 * jnp.sum(logvar_p - logvar_q + (jnp.exp(logvar_q) + (mean_q - mean_p)**2)
                       * jnp.exp(-logvar_p) - 1.0, axis=-1)


def mse_loss(pred, target):
  """Mean squared error over all elements (f32)."""
  return jnp.mean((pred.astype(jnp.float32) - target.astype(jnp.float32))**2)


def l1_loss(pred, target):
  """Mean absolute error over all elements (f32)."""
  return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))
