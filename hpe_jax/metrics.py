"""3D pose metrics in millimetres: MPJPE (Protocol 1), P-MPJPE (Protocol 2), N-MPJPE
(scale-normalised) and their tables.

Convention (the literature's): errors are averaged over all 17 joints with the
root included; after root alignment the root's error is 0.
"""

import jax
import jax.numpy as jnp
import numpy as np

ROOT = 0
METRIC_NOTE = 'MPJPE / P-MPJPE in mm, mean over 17 joints (root included)'


def pose_errors(pred_mm, target_mm):
  """Per-pose MPJPE, P-MPJPE and N-MPJPE (N,) and per-joint errors (N, 17), in mm."""
  return {'mpjpe': mpjpe(pred_mm, target_mm), 'p_mpjpe': p_mpjpe(pred_mm, target_mm),
          'n_mpjpe': n_mpjpe(pred_mm, target_mm),
          'per_joint': per_joint_error(pred_mm, target_mm)}


def _root_aligned(pose):
  return pose - pose[..., ROOT:ROOT + 1, :]


def per_joint_error(pred, target):
  """Euclidean error (N, 17) in mm of each joint after root alignment."""
  return jnp.linalg.norm(_root_aligned(pred) - _root_aligned(target), axis=-1)


def mpjpe(pred, target):
  """Mean per-joint position error (N,) in mm after root alignment (Protocol 1)."""
  return jnp.mean(per_joint_error(pred, target), axis=-1)


def n_mpjpe(pred, target):
  """MPJPE (N,) in mm after root alignment and the least-squares scale of each pred
  (Rhodin et al. 2018): the measure of models that cannot know a person's size."""
  pred, target = _root_aligned(pred), _root_aligned(target)
  scale = (jnp.sum(pred * target, axis=(-2, -1))
           / jnp.maximum(jnp.sum(pred * pred, axis=(-2, -1)), 1e-12))
  return jnp.mean(jnp.linalg.norm(scale[..., None, None] * pred - target, axis=-1), axis=-1)


def procrustes_align(pred, target):
  """Aligns each pred (N, J, 3) to its target by the best rotation, translation and scale.

  Orthogonal Procrustes with a determinant fix, so the rotation is proper (no
  reflection).
  """
  pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
  mu_pred = pred.mean(axis=-2, keepdims=True)
  mu_target = target.mean(axis=-2, keepdims=True)
  x, y = pred - mu_pred, target - mu_target
  h = jnp.einsum('nji,njk->nik', x, y)
  u, s, vt = jnp.linalg.svd(h)
  sign = jnp.sign(jnp.linalg.det(jnp.einsum('nij,njk->nik', u, vt)))
  d = jnp.stack([jnp.ones_like(sign), jnp.ones_like(sign), sign], axis=-1)
  rotation = jnp.einsum('nij,nj,njk->nik', u, d, vt)
  scale = jnp.sum(s * d, axis=-1) / jnp.maximum(jnp.sum(x * x, axis=(-2, -1)), 1e-12)
  return scale[:, None, None] * jnp.einsum('nji,nik->njk', x, rotation) + mu_target


def p_mpjpe(pred, target):
  """MPJPE (N,) in mm after per-pose similarity Procrustes alignment (Protocol 2)."""
  aligned = procrustes_align(pred, target)
  return jnp.mean(jnp.linalg.norm(aligned - target, axis=-1), axis=-1)


def action_table(errors, actions, num_actions=15):
  """Per-action means of per-pose errors, jit-friendly.

  Returns dict per_action (num_actions,) with NaN for actions without poses,
  counts (num_actions,), and mean_over_actions (the mean of the present
  actions' means, as the literature reports). Action ids outside
  [0, num_actions) are ignored (padding).
  """
  sums = jax.ops.segment_sum(errors, actions, num_segments=num_actions)
  counts = jax.ops.segment_sum(jnp.ones_like(errors), actions, num_segments=num_actions)
  per_action = jnp.where(counts > 0, sums / jnp.maximum(counts, 1), jnp.nan)
  return {'per_action': per_action, 'counts': counts,
          'mean_over_actions': jnp.nanmean(per_action)}


def format_action_table(columns, action_names):
  """A Markdown table: one row per action, an 'Average' row (mean over actions).

  columns: {label: per-action values (len(action_names),) in mm}.
  """
  labels = list(columns)
  values = {k: np.asarray(v, np.float64) for k, v in columns.items()}
  lines = [f'{METRIC_NOTE}.', '', '| Action | ' + ' | '.join(labels) + ' |',
           '|---|' + '---:|' * len(labels)]
  fmt = lambda v: '-' if np.isnan(v) else f'{v:.1f}'
  for i, name in enumerate(action_names):
    lines.append(f'| {name} | ' + ' | '.join(fmt(values[k][i]) for k in labels) + ' |')
  lines.append('| **Average** | ' + ' | '.join(fmt(np.nanmean(values[k])) for k in labels) + ' |')
  return '\n'.join(lines)


# Cross-dataset metrics (MPI-INF-3DHP, 3DPW): 3D PCK and AUC (Mehta et al. 2017), and
# MPJPE / P-MPJPE over a set of joints, given as a (J,) bool mask (e.g. `joint_valid`).
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))  # 0, 5, ..., 150: 31


def _joint_index(mask):
  """The indices of a (J,) joint mask (concrete: a NumPy array, a list or a tuple)."""
  index = np.flatnonzero(np.asarray(mask, bool))
  if not len(index):
    raise ValueError('The joint mask selects no joint.')
  return index


def pck_curve(joint_errors, mask, thresholds=AUC_THRESHOLDS_MM):
  """3D PCK (T,) in % at each threshold (mm): the share of the masked joints of all poses
  whose error (N, J) mm is below it (strictly, as Mehta et al.'s script counts). NumPy:
  grouping rows of one error array compiles nothing."""
  errors = np.asarray(joint_errors)[:, _joint_index(mask)]
  return 100.0 * np.mean(errors[..., None] < np.asarray(thresholds, errors.dtype), axis=(0, 1))


def pck(pred, target, mask, threshold=PCK_THRESHOLD_MM):
  """3D PCK in % of poses (N, J, 3) after root alignment, over the masked joints."""
  return float(pck_curve(per_joint_error(pred, target), mask, (threshold,))[0])


def auc(pred, target, mask, thresholds=AUC_THRESHOLDS_MM):
  """Area under the 3D PCK curve in %: the mean PCK (poses (N, J, 3) after root alignment,
  masked joints) over `thresholds` mm (default 0, 5, ..., 150: 31, Mehta et al. 2017)."""
  return float(np.mean(pck_curve(per_joint_error(pred, target), mask, thresholds)))


def masked_mpjpe(pred, target, mask):
  """MPJPE (N,) in mm after root alignment (at joint ROOT, masked or not), averaged over
  the masked joints."""
  return jnp.mean(per_joint_error(pred, target)[:, _joint_index(mask)], axis=-1)


def masked_p_mpjpe(pred, target, mask):
  """P-MPJPE (N,) in mm with the similarity Procrustes fitted to the masked joints alone
  and the error averaged over them."""
  index = _joint_index(mask)
  return p_mpjpe(pred[:, index], target[:, index])
