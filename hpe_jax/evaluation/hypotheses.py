"""Errors of several 3D hypotheses per input (`hpe_jax.sampling`) against the ground truth.

All K samples are decoded, scored and reduced inside one jitted call per chunk of poses:
only per-pose numbers, the per-joint spread and per-action calibration counts
leave the device, never the (B, K, 17, 3) samples. A chunk holds as many poses as the
memory budget allows (`hpe_jax.memory`, --memory_budget_gb; estimated from one pose's
traced computation), so memory stays bounded whatever the number of poses; K samples of
one pose that do not fit are refused in one line before anything is sampled. The samples
of the i-th pose depend on the seed and i only (`sampling.per_row_keys`), so chunks and
batches do not change the numbers. Reported per pose:

- single answers (MPJPE, mm): the posterior mean (the pose decoded from the
  latent mean, key 'posterior_mean'), the per-coordinate mean ('sample_mean')
  and median ('sample_median') of the K samples;
- best-of-K MPJPE (the oracle: the sample closest to the ground truth, which
  needs the ground truth) and mean-of-K MPJPE (each sample's MPJPE averaged
  over the K samples);
- per-joint spread: the standard deviation in mm over the K samples per axis
  (x, y, z = depth in the camera frame); `summarize` also gives the total (the
  root of the summed variances: the RMS distance of a sample's joint to the
  samples' mean), averaged over poses;
- reprojection error (px): each pose (root-relative, camera frame) moved to the
  example's root position `root_3d` and projected with its camera's intrinsics
  (the dataset's own model with distortion, `tfds_h36m.cameras.project`), against
  the input 2D pose `pose_2d` (the ground truth on synthetic and ground-truth-2D
  builds, the detections on a detection build): the mean over joints, of the
  samples (also averaged over them), of the posterior mean and of the ground
  truth (near 0 px when `pose_2d` is the projection of the ground truth);
- bone symmetry error (mm): the mean over the 6 left/right bone pairs of the
  17-joint skeleton of |length(left bone) - length(right bone)|, of the samples
  (averaged over them), of the posterior mean and of the ground truth.

Calibration error, as Pierzchlewicz et al. 2022 ("Multi-hypothesis 3D human
pose estimation metrics favor miscalibrated distributions", arXiv 2210.11179)
define it and compute it for the normalizing flows of Wehrbein et al. 2021 (code:
github.com/sinzlab/cGNF, scripts/eval/human36m/calibration.py and
scripts/external/WehrbeinEtAl/eval_calibration.py; Wehrbein et al.'s own code
reports no calibration): for each of the 16 non-root joints j of a pose, the
distances of the K samples to their per-coordinate median are an empirical
distribution of radii; for the levels q in QUANTILES (0, 0.05, ..., 1), r_q is
their q-quantile (linear interpolation, as np.quantile); the indicator is
r_q > |ground truth - median|. freq_j(q) is that indicator's frequency over the
poses; ECE_j = mean over q of |freq_j(q) - q| (per joint), and the calibration
error is the mean over q of |median over joints of freq_j(q) - q|. 0 is perfect
calibration, 0.5 the worst: the ground truth outside every radius (over-confident
samples; all alike, as at temperature 0) or inside every one.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import memory
from hpe_jax import metrics
from hpe_jax import normalization
from hpe_jax import ray_spread
from hpe_jax import sampling
from tfds_h36m import skeleton

QUANTILES = np.linspace(0.0, 1.0, 21)  # the levels 0, 0.05, ..., 1 of Pierzchlewicz et al.
# Left bones (parent, child) and their mirrors on the right, from the skeleton's tables.
LEFT_BONES = tuple(b for b in skeleton.BONES if b[1] in skeleton.LEFT_JOINTS)
RIGHT_BONES = tuple(tuple(skeleton.flip_permutation()[j] for j in b) for b in LEFT_BONES)
# The per-pose numbers `summarize` tabulates by action (mm, or px for reprojection_*).
PER_POSE_KEYS = ('posterior_mean', 'sample_mean', 'sample_median', 'best_of_k', 'mean_of_k',
                 'reprojection_samples', 'reprojection_posterior_mean', 'reprojection_gt',
                 'symmetry_samples', 'symmetry_posterior_mean', 'symmetry_gt')


def _project_xy(x, y, z, camera):
  """Pixel coordinates (px, py) of camera-frame coordinates x, y, z (mm), as
  `tfds_h36m.cameras.project`; one array per coordinate (XLA:CPU vectorises those, not a
  minor axis of 2 or 3); camera: {name: (..., n)} broadcast against them with n last."""
  u, v = jnp.clip(x / z, -1.0, 1.0), jnp.clip(y / z, -1.0, 1.0)
  r2 = u * u + v * v
  k1, k2, k3 = (camera['radial_distortion'][..., i] for i in range(3))
  p1, p2 = camera['tangential_distortion'][..., 0], camera['tangential_distortion'][..., 1]
  scale = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3 + p1 * u + p2 * v
  f, c = camera['focal_length'], camera['center']
  return (f[..., 0] * (u * scale + p1 * r2) + c[..., 0],
          f[..., 1] * (v * scale + p2 * r2) + c[..., 1])


def project_px(points_mm, camera):
  """Camera-frame points (..., 3) mm -> pixels (..., 2) as `tfds_h36m.cameras.project`
  (distortion included); camera: {name: (..., n)} broadcast against the points' leading
  axes."""
  return jnp.stack(_project_xy(*jnp.moveaxis(points_mm, -1, 0), camera), axis=-1)


def reprojection_error_px(poses_mm, root_mm, camera, pose_2d_px):
  """Mean over joints (B, ...) of the pixel distance between the projection of poses
  (B, ..., 17, 3) (root-relative mm, camera frame, put at root_mm (B, 3)) and pose_2d_px
  (B, 17, 2); camera: per-row intrinsics (B, n) (`ray_spread.INTRINSICS`)."""
  extra = (1,) * (poses_mm.ndim - 3)  # the axes between the batch and the joints
  per_row = lambda a: a.reshape(a.shape[:1] + extra + (1, a.shape[-1]))
  x, y, z = (poses_mm[..., i] + per_row(root_mm)[..., i] for i in range(3))
  px, py = _project_xy(x, y, z, jax.tree.map(per_row, camera))
  target = pose_2d_px.reshape(pose_2d_px.shape[:1] + extra + pose_2d_px.shape[1:])
  return jnp.sqrt((px - target[..., 0]) ** 2 + (py - target[..., 1]) ** 2).mean(axis=-1)


def bone_symmetry_error_mm(poses_mm):
  """Mean over the left/right bone pairs of |length(left) - length(right)| (...,) in mm,
  of poses (..., 17, 3)."""
  def lengths(bones):
    parents, children = np.asarray(bones).T
    return jnp.linalg.norm(poses_mm[..., children, :] - poses_mm[..., parents, :], axis=-1)
  return jnp.abs(lengths(LEFT_BONES) - lengths(RIGHT_BONES)).mean(axis=-1)


def _bitonic_stages(n):
  """The compare-exchange stages of a bitonic sort of n = 2^m values, (stages, 2) int32:
  (size, stride); position i's partner is i ^ stride, and it keeps the smaller of the two
  where (i & size == 0) == (i & stride == 0)."""
  stages, size = [], 2
  while size <= n:  # merges the sorted runs of size / 2 into runs of size
    stages += [(size, size >> shift) for shift in range(1, size.bit_length())]
    size *= 2
  return np.array(stages, np.int32).reshape(-1, 2)


def _sorted_samples(x):
  """x (K, ...) sorted along its first axis by a bitonic network of elementwise min/max
  over whole slabs, in a loop over its stages: on XLA:CPU about twice as fast as jnp.sort
  (one comparator call per element; measured 170 against 370 ms for (50, 1310, 17, 3))
  and compiled in a fraction of a second (an unrolled network took 2 s). Each stage's
  partners are computed in the loop: a (stages, n) table would take 1 GB at K = 10^6."""
  k = x.shape[0]
  n = 1 << (k - 1).bit_length()
  stages = _bitonic_stages(n)
  if not len(stages):
    return x
  x = jnp.concatenate([x, jnp.full((n - k,) + x.shape[1:], jnp.inf, x.dtype)])
  i = jnp.arange(n, dtype=jnp.int32)
  table = jnp.asarray(stages)

  def stage(s, x):
    size, stride = table[s, 0], table[s, 1]
    other = jnp.take(x, i ^ stride, axis=0)
    keep_min = ((i & size) == 0) == ((i & stride) == 0)
    keep_min = keep_min.reshape((n,) + (1,) * (x.ndim - 1))
    return jnp.where(keep_min, jnp.minimum(x, other), jnp.maximum(x, other))

  return jax.lax.fori_loop(0, len(stages), stage, x)[:k]


def _quantiles(sorted_x, levels):
  """(len(levels), ...) quantiles of x (K, ...) sorted along its first axis, interpolated
  linearly between order statistics as np.quantile's default."""
  k = sorted_x.shape[0]
  out = []
  for level in levels:
    position = level * (k - 1)
    low = int(np.floor(position))
    high, fraction = min(low + 1, k - 1), position - low
    out.append(sorted_x[low] * (1 - fraction) + sorted_x[high] * fraction)
  return jnp.stack(out)


def sample_median(samples_mm):
  """The per-coordinate median (B, 17, 3) of samples (B, K, 17, 3)."""
  return _quantiles(_sorted_samples(jnp.moveaxis(samples_mm, 1, 0)), [0.5])[0]


def calibration_indicators(samples_mm, median_mm, target_mm):
  """(B, 16, Q) booleans: r_q > |target - median| for each non-root joint and level q of
  QUANTILES, r_q the q-quantile of the K samples' distances to their per-coordinate median.

  samples_mm (B, K, 17, 3), median_mm (`sample_median`) and target_mm (B, 17, 3).
  """
  median = median_mm[:, 1:]
  radii = jnp.linalg.norm(jnp.moveaxis(samples_mm, 1, 0)[:, :, 1:] - median, axis=-1)
  r_q = _quantiles(_sorted_samples(radii), QUANTILES)  # (Q, B, 16)
  inside = r_q > jnp.linalg.norm(target_mm[:, 1:] - median, axis=-1)
  return jnp.moveaxis(inside, 0, -1)


def calibration_error(frequencies):
  """(per-joint ECE (..., J), calibration error (...)) of the frequencies freq_j(q)
  (..., J, Q) at the levels QUANTILES (see the module docstring)."""
  frequencies = np.asarray(frequencies, np.float64)
  per_joint = np.abs(frequencies - QUANTILES).mean(axis=-1)
  return per_joint, np.abs(np.median(frequencies, axis=-2) - QUANTILES).mean(axis=-1)


def make_hypothesis_metrics(model, source, stats, num_samples, num_actions, ray_table=None,
                            input_space='pixels'):
  """jit of (variables, batch, key, first_row, temperature) -> (per-pose numbers of K
  samples: the PER_POSE_KEYS (B,), spread_xyz (B, 17, 3) mm, action (B,); calibration
  counts (num_actions, 16, Q): the valid poses of each action whose indicator is true).
  The batch's rows are the poses first_row, first_row + 1, ...: row i's samples come from
  `key` folded with i (`sampling.per_row_keys`).

  The samples come from the latent (`sampling.sample_poses_mm`), or with a ray_table
  (M, 48) along the input's camera rays (`hpe_jax.ray_spread`: the single answer made
  consistent with the input 2D pose, and the table's errors around it; 2D pose sources
  only).

  A perspective-crop lifter's answers and labels (`input_space`) are turned back into the
  camera's frame first (`normalization.camera_frame`, with the batch's 'pose_2d_plane').

  batch: the source modality as the data holds it (a temporal model's 2D windows as
  'pose_2d_window'), pose_3d_mm (B, 17, 3), pose_2d_px
  (B, 17, 2), root_3d (B, 3) mm, each row's camera intrinsics (`ray_spread.INTRINSICS`),
  action and valid (B,).
  """
  @jax.jit
  def evaluate(variables, batch, key, first_row, temperature):
    x = batch.get('pose_2d_window', batch[source]) if source == 'pose_2d' else batch[source]
    camera = {k: batch[k] for k in ray_spread.INTRINSICS}
    keys = sampling.per_row_keys(key, first_row + jnp.arange(len(batch['valid'])))
    to_camera = lambda pose: normalization.camera_frame(pose, batch.get('pose_2d_plane'),
                                                        input_space)
    if ray_table is None:
      mean_pose, samples = map(to_camera, sampling.sample_poses_mm(
          model, variables, x, keys, temperature, source=source,
          num_samples=num_samples, stats=stats))
    else:
      mean_pose, frames = ray_spread.snap(
          to_camera(sampling.single_pose_mm(model, variables, x, source=source, stats=stats)),
          batch['pose_2d_px'], tuple(camera[k] for k in ray_spread.INTRINSICS))
      samples = jax.vmap(lambda pose, frame, k: ray_spread.sample(
          pose[None], frame[None], ray_table, k, temperature, num_samples)[0])(
              mean_pose, frames, keys)
    target, median = to_camera(batch['pose_3d_mm']), sample_median(samples)
    per_sample = metrics.mpjpe(samples, target[:, None])  # (B, K)
    reproject = lambda poses: reprojection_error_px(poses, batch['root_3d'], camera,
                                                    batch['pose_2d_px'])
    out = {'posterior_mean': metrics.mpjpe(mean_pose, target),
           'sample_mean': metrics.mpjpe(samples.mean(axis=1), target),
           'sample_median': metrics.mpjpe(median, target),
           'best_of_k': per_sample.min(axis=1),
           'mean_of_k': per_sample.mean(axis=1),
           'reprojection_samples': reproject(samples).mean(axis=1),
           'reprojection_posterior_mean': reproject(mean_pose),
           'reprojection_gt': reproject(target),
           'symmetry_samples': bone_symmetry_error_mm(samples).mean(axis=1),
           'symmetry_posterior_mean': bone_symmetry_error_mm(mean_pose),
           'symmetry_gt': bone_symmetry_error_mm(target),
           'spread_xyz': samples.std(axis=1),  # (B, 17, 3)
           'action': batch['action']}
    weights = jax.nn.one_hot(batch['action'], num_actions) * batch['valid'][:, None]
    counts = jnp.einsum('ba,bjq->ajq', weights,
                        calibration_indicators(samples, median, target).astype(weights.dtype))
    return out, counts

  return evaluate


def rows_per_call(evaluate, variables, batch, num_samples, budget=None):
  """The poses per call of `evaluate` (`make_hypothesis_metrics`) that fit the memory budget
  (GB, `memory.budget_gb`), at most the batch's, a multiple of the devices where it can
  be; a memory.BudgetError where even one pose's K samples do not fit. Estimated by
  tracing one pose of `batch` (`memory.peak_bytes`): nothing is computed."""
  one = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1,) + a.shape[1:], a.dtype), batch)
  per_pose = memory.peak_bytes(evaluate, variables, one, jax.random.PRNGKey(0), jnp.int32(0),
                               jnp.float32(1.0))
  memory.check_hypotheses(1, num_samples, per_pose, budget)
  rows = memory.fit_rows(per_pose, len(batch['valid']), budget)
  devices = jax.device_count()
  return rows - rows % devices if rows >= devices else rows


def evaluate_hypotheses(model, variables, source, stats, batches, *, num_samples, temperature,
                        seed, num_actions, ray_table=None, input_space='pixels',
                        memory_budget_gb=None):
  """(per-pose numbers, calibration counts) as host arrays over `batches`.

  batches: iterable of batches as `make_hypothesis_metrics` takes them (as its
  ray_table); num_actions: the dataset's (`skeleton.action_names`). per-pose:
  the PER_POSE_KEYS (N,) in mm or px, spread_xyz (N, 17, 3) mm and action (N,), padding
  rows dropped; calibration counts (num_actions, 16, Q) summed over the batches. Each
  batch is evaluated in chunks of poses that fit memory_budget_gb (`rows_per_call`).
  """
  evaluate = make_hypothesis_metrics(model, source, stats, num_samples, num_actions, ray_table,
                                     input_space)
  key, rows, first_row = jax.random.PRNGKey(seed), None, 0
  parts, counts = [], np.zeros((num_actions, skeleton.NUM_JOINTS - 1, len(QUANTILES)))
  for batch in batches:
    size = len(batch['valid'])
    rows = rows or rows_per_call(evaluate, variables, batch, num_samples, memory_budget_gb)
    for start in range(0, size, rows):
      chunk = batch if rows >= size else {k: v[start:start + rows] for k, v in batch.items()}
      out, chunk_counts = evaluate(variables, chunk, key, jnp.int32(first_row + start),
                                   jnp.float32(temperature))
      valid = np.asarray(chunk['valid'], bool)
      parts.append({k: np.asarray(v)[valid] for k, v in out.items()})
      counts += np.asarray(chunk_counts)
    first_row += size
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, counts


def _table(values, actions, num_actions):
  table = metrics.action_table(jnp.asarray(values), jnp.asarray(actions),
                               num_actions=num_actions)
  return {'per_action': np.asarray(table['per_action']),
          'mean_over_actions': float(table['mean_over_actions'])}


def summarize(per_pose, calibration_counts):
  """Per-action tables ({key: per_action (A,), mean_over_actions}) of the PER_POSE_KEYS
  and of the calibration error (of each action's poses), the per-pose counts by action,
  the per-joint spread averaged over poses (mm), and over all poses the frequencies
  freq_j(q) (16, Q) of the non-root joints, the per-joint ECE (17,) (NaN at the root) and
  the calibration error; A: the actions of `calibration_counts` (A, 16, Q)."""
  actions, num_actions = np.asarray(per_pose['action']), len(calibration_counts)
  counts = np.bincount(actions, minlength=num_actions)
  tables = {k: _table(per_pose[k], actions, num_actions) for k in PER_POSE_KEYS}
  by_action = calibration_error(calibration_counts / np.maximum(counts, 1)[:, None, None])[1]
  by_action = np.where(counts > 0, by_action, np.nan)
  tables['calibration_error'] = {'per_action': by_action,
                                 'mean_over_actions': float(np.nanmean(by_action))}
  frequencies = calibration_counts.sum(axis=0) / len(actions)
  per_joint, overall = calibration_error(frequencies)
  spread_xyz = per_pose['spread_xyz']
  return {'tables': tables, 'counts': counts,
          'spread_xyz': spread_xyz.mean(axis=0),
          'spread': np.sqrt((spread_xyz ** 2).sum(axis=-1)).mean(axis=0),
          'calibration_frequencies': frequencies,
          'calibration_error_joint': np.concatenate([[np.nan], per_joint]),
          'calibration_error_all_poses': float(overall)}


def spread_mm(summary):
  """The samples' spread of a `summarize` result: the total per-joint spread (mm) averaged
  over the non-root joints (the root is the origin of every sample)."""
  return float(np.mean(np.delete(summary['spread'], skeleton.ROOT)))


def spread_caption(spread, error, calibration):
  """Plain words on whether the samples cover their errors: `spread` (mm, `spread_mm`)
  against `error` (mm, the samples' mean MPJPE) and the calibration error (0 to 0.5)."""
  text = (f'Samples spread {spread:.0f} mm per joint while their errors are {error:.0f} mm: '
          f'calibration error {calibration:.2f} (0: calibrated, 0.5: worst)')
  if calibration < 0.1:
    return f'{text}; the spread matches the errors.'
  if spread < error / 3:
    return f'{text}; the hypotheses are near-copies and do not cover the error.'
  if spread < error:
    return f'{text}; the hypotheses are too alike to cover the error.'
  return f'{text}; the hypotheses spread wider than the errors.'
