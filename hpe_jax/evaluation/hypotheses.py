"""Several 3D hypotheses per input, sampled from the VAE's posterior.

For each input, K latent codes z = mean + temperature * sigma * eps (eps ~
N(0, I)) are drawn from the encoder's posterior and all K are decoded in one
jitted call (vmap over K), so the samples never leave the device. Reported
next to the posterior-mean MPJPE:

- best-of-K MPJPE (the oracle: the sample closest to the ground truth),
- mean-of-K MPJPE (each sample's MPJPE, averaged over the K samples),
- per-joint spread: the standard deviation in mm over the K samples per axis
  (x, y, z = depth in the camera frame) and in total (the root of the summed
  variances: the RMS distance of a sample's joint to the samples' mean),
  averaged over poses.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import metrics
from hpe_jax import train
from tfds_h36m import skeleton

# Decoded poses per jitted call: batch size x K stays below this.
MAX_POSES_PER_CALL = 1 << 16


def sample_poses_mm(model, variables, x, rng, temperature, *, source, num_samples, stats):
  """Posterior-mean pose (B, 17, 3) and K sampled poses (B, K, 17, 3), root-relative mm.

  Traceable (call it inside jit). x: the source batch as the data holds it (uint8
  crops for images). temperature scales sigma: 0 gives K copies of the
  posterior-mean pose.
  """
  x = train.model_input({source: x}, source)
  mean, logvar = model.apply(variables, x, source, False, method=model.encode)
  eps = jax.random.normal(rng, (num_samples,) + mean.shape, mean.dtype)
  z = mean + temperature * jnp.exp(0.5 * logvar) * eps
  decode = lambda latent: model.apply(variables, latent, 'pose_3d', False, method=model.decode)
  samples = jnp.moveaxis(metrics.pose_3d_mm(jax.vmap(decode)(z), stats), 0, 1)
  return metrics.pose_3d_mm(decode(mean), stats), samples


def make_sampler(model, source, stats, num_samples):
  """jit of (variables, x, rng, temperature) -> mean pose (B, 17, 3), samples (B, K, 17, 3) mm."""
  return jax.jit(functools.partial(sample_poses_mm, model, source=source,
                                   num_samples=num_samples, stats=stats))


def make_hypothesis_metrics(model, source, stats, num_samples):
  """jit of (variables, x, target_mm, rng, temperature) -> per-pose errors (mm) of K samples."""

  @jax.jit
  def evaluate(variables, x, target_mm, rng, temperature):
    mean_pose, samples = sample_poses_mm(model, variables, x, rng, temperature, source=source,
                                         num_samples=num_samples, stats=stats)
    per_sample = metrics.mpjpe(samples, target_mm[:, None])  # (B, K)
    return {'posterior_mean': metrics.mpjpe(mean_pose, target_mm),
            'best_of_k': per_sample.min(axis=1),
            'mean_of_k': per_sample.mean(axis=1),
            'spread_xyz': samples.std(axis=1)}  # (B, 17, 3)

  return evaluate


def batch_size_for(num_samples, max_batch, multiple):
  """A batch size (a multiple of `multiple`, at most max_batch) bounding batch x K per call."""
  size = min(max_batch, max(MAX_POSES_PER_CALL // max(num_samples, 1), 1))
  return max(size // multiple, 1) * multiple


def evaluate_hypotheses(model, variables, source, stats, batches, *, num_samples, temperature,
                        seed):
  """Per-pose hypothesis errors (host arrays) over `batches`.

  batches: iterable of (batch, num_valid): batch holds the source modality's
  normalised input and 'pose_3d_mm' (B, 17, 3); the first num_valid rows are
  real. Returns posterior_mean, best_of_k, mean_of_k (N,) and spread_xyz
  (N, 17, 3), in mm.
  """
  evaluate = make_hypothesis_metrics(model, source, stats, num_samples)
  key = jax.random.PRNGKey(seed)
  parts = []
  for i, (batch, num_valid) in enumerate(batches):
    out = evaluate(variables, batch[source], batch['pose_3d_mm'], jax.random.fold_in(key, i),
                   jnp.float32(temperature))
    parts.append({k: np.asarray(v)[:num_valid] for k, v in out.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def summarize(per_pose, actions):
  """Per-action tables of the three MPJPEs and the per-joint spread averaged over poses (mm)."""
  actions = jnp.asarray(actions)
  tables = {}
  for name in ('posterior_mean', 'best_of_k', 'mean_of_k'):
    table = metrics.action_table(jnp.asarray(per_pose[name]), actions,
                                 num_actions=len(skeleton.ACTIONS))
    tables[name] = {'per_action': np.asarray(table['per_action']),
                    'mean_over_actions': float(table['mean_over_actions'])}
  spread_xyz = per_pose['spread_xyz']
  return {'tables': tables,
          'counts': np.bincount(np.asarray(actions), minlength=len(skeleton.ACTIONS)),
          'spread_xyz': spread_xyz.mean(axis=0),
          'spread': np.sqrt((spread_xyz ** 2).sum(axis=-1)).mean(axis=0)}
