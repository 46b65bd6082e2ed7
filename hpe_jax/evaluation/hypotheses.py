"""Errors of several 3D hypotheses per input (`hpe_jax.sampling`) against the ground truth.

Reported next to the posterior-mean MPJPE:

- best-of-K MPJPE (the oracle: the sample closest to the ground truth),
- mean-of-K MPJPE (each sample's MPJPE, averaged over the K samples),
- per-joint spread: the standard deviation in mm over the K samples per axis
  (x, y, z = depth in the camera frame) and in total (the root of the summed
  variances: the RMS distance of a sample's joint to the samples' mean),
  averaged over poses.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import metrics
from hpe_jax import sampling
from tfds_h36m import skeleton


def make_hypothesis_metrics(model, source, stats, num_samples):
  """jit of (variables, x, target_mm, rng, temperature) -> per-pose errors (mm) of K samples."""

  @jax.jit
  def evaluate(variables, x, target_mm, rng, temperature):
    mean_pose, samples = sampling.sample_poses_mm(
        model, variables, x, rng, temperature, source=source, num_samples=num_samples,
        stats=stats)
    per_sample = metrics.mpjpe(samples, target_mm[:, None])  # (B, K)
    return {'posterior_mean': metrics.mpjpe(mean_pose, target_mm),
            'best_of_k': per_sample.min(axis=1),
            'mean_of_k': per_sample.mean(axis=1),
            'spread_xyz': samples.std(axis=1)}  # (B, 17, 3)

  return evaluate


def evaluate_hypotheses(model, variables, source, stats, batches, *, num_samples, temperature,
                        seed):
  """Per-pose hypothesis errors (host arrays) over `batches`.

  batches: iterable of batches holding the source modality as the data holds
  it (normalised poses, uint8 crops), 'pose_3d_mm' (B, 17, 3) and 'valid' (B,). Returns posterior_mean, best_of_k, mean_of_k (N,) and spread_xyz
  (N, 17, 3), in mm.
  """
  evaluate = make_hypothesis_metrics(model, source, stats, num_samples)
  key = jax.random.PRNGKey(seed)
  parts = []
  for i, batch in enumerate(batches):
    out = evaluate(variables, batch[source], batch['pose_3d_mm'], jax.random.fold_in(key, i),
                   jnp.float32(temperature))
    valid = np.asarray(batch['valid'], bool)
    parts.append({k: np.asarray(v)[valid] for k, v in out.items()})
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
