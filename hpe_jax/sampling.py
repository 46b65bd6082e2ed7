"""Several 3D hypotheses per input, sampled from the VAE's posterior (no TensorFlow, no training
code: the lifter and the evaluation share it).

For each input, K latent codes z = mean + temperature * sigma * eps (eps ~
N(0, I)) are drawn from the encoder's posterior and all K are decoded in one
jitted call (vmap over K), so the samples never leave the device.
"""

import functools

import jax
import jax.numpy as jnp

from hpe_jax import modalities
from hpe_jax import normalization

# Decoded poses per jitted call: batch size x K stays below this.
MAX_POSES_PER_CALL = 1 << 16


def per_row_keys(key, rows):
  """One key per row (B,): `key` folded with each row's index (B,), so that a row's samples
  depend on its index only, not on the batch it comes in."""
  return jax.vmap(jax.random.fold_in, (None, 0))(key, rows)


def _normal(rng, shape, dtype):
  """N(0, 1) of shape (K, B, ...): from one key, or from one key per row (`per_row_keys`)."""
  typed = jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key)
  if rng.ndim == (0 if typed else 1):
    return jax.random.normal(rng, shape, dtype)
  rows = jax.vmap(lambda k: jax.random.normal(k, shape[:1] + shape[2:], dtype))(rng)
  return jnp.moveaxis(rows, 0, 1)


def sample_poses_mm(model, variables, x, rng, temperature, *, source, num_samples, stats):
  """Posterior-mean pose (B, 17, 3) and K sampled poses (B, K, 17, 3), root-relative mm.

  Traceable (call it inside jit). x: the source batch as the data holds it (uint8
  crops for images). rng: a key, or one key per row (`per_row_keys`). temperature scales
  sigma: 0 gives K copies of the posterior-mean pose.
  """
  mean, logvar = _encode(model, variables, x, source)
  eps = _normal(rng, (num_samples,) + mean.shape, mean.dtype)
  z = mean + temperature * jnp.exp(0.5 * logvar) * eps
  decode = functools.partial(_decode_mm, model, variables, stats=stats)
  return decode(mean), jnp.moveaxis(jax.vmap(decode)(z), 0, 1)


def single_pose_mm(model, variables, x, *, source, stats):
  """The pose decoded from the latent mean (B, 17, 3), root-relative mm (traceable): the
  single answer of `sample_poses_mm` without the samples."""
  return _decode_mm(model, variables, _encode(model, variables, x, source)[0], stats=stats)


def _encode(model, variables, x, source):
  return model.apply(variables, normalization.model_input({source: x}, source), source, False,
                     method=model.encode)


def _decode_mm(model, variables, latent, *, stats):
  pose = model.apply(variables, latent, modalities.POSE_3D, False, method=model.decode)
  return normalization.pose_3d_mm(pose, stats)


def make_sampler(model, source, stats, num_samples):
  """jit of (variables, x, rng, temperature) -> mean pose (B, 17, 3), samples (B, K, 17, 3) mm."""
  return jax.jit(functools.partial(sample_poses_mm, model, source=source,
                                   num_samples=num_samples, stats=stats))


def batch_size_for(num_samples, max_batch, multiple):
  """A batch size (a multiple of `multiple`, at most max_batch) bounding batch x K per call."""
  size = min(max_batch, max(MAX_POSES_PER_CALL // max(num_samples, 1), 1))
  return max(size // multiple, 1) * multiple
