"""The one evaluator: per-pose errors of every pair, per-action tables, the results table.

Training (every `eval_every_epochs`) and `python -m hpe_jax.evaluate` both run
it, in the manner of big_vision's evaluators: a per-batch function of the
model's variables, run either over a whole device-resident split (pose data,
one jitted `lax.map` over fixed-size batches) or over streamed batches (image
data, one jitted call per batch); padding rows carry valid=False and never
count. Per pose (latent means, no sampling; with `config.flip_test` the 3D answers
average the input's and its mirror's; with `config.ray_refinement` they are then moved toward
the keypoints' rays, for keypoints of the evaluation's noise, as `Lifter.lift` does):
- pairs ending in 3D: MPJPE and P-MPJPE over the 17 joints (root included) and
  per-joint errors, in mm; with `predictions`, also the pose (mm) and latent;
- pairs ending in 2D: mean joint error in px;
- pairs ending in images: mean absolute error of the normalised image (the L1
  loss's units).
"""

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import metrics
from hpe_jax import mirror
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import ray_refinement
from hpe_jax import sequences
from tfds_h36m import skeleton

METADATA_KEYS = ('action', 'camera_index', 'principal_x', 'valid')
# Kept per pose with `predictions`, never averaged into tables.
PER_POSE_ONLY = ('pred_mm', 'latent', 'pose_3d_mm')
# The most actions of any dataset (`skeleton.action_names`): Human3.6M's 15.
MAX_ACTIONS = len(skeleton.ACTIONS)


class Evaluator:
  """Evaluates the pairs of a config with the training split's normalisation `stats`."""

  def __init__(self, model, config, stats, *, predictions=False, batch_size=None):
    self.model, self.stats, self.predictions = model, stats, predictions
    self.pairs = modalities.pairs(config)
    self.batch_size = batch_size or config.eval_batch_size
    self.flip_test = config.flip_test
    self.window_offsets = sequences.config_window_offsets(config)
    self.input_space = config.input_space
    self.ray_weight = (ray_refinement.weight(config.eval_pose_2d_noise)
                       if config.ray_refinement else None)

  def _mirrored_input(self, batch, source):
    """The model input of `source` mirrored (`hpe_jax.mirror`): crops' columns reversed."""
    x = normalization.model_input(batch, source)
    if source == modalities.IMAGE:
      return jnp.flip(x, axis=2)
    return mirror.mirror_normalized(source, x, self.stats,
                                    batch['principal_x'])

  def predict_3d_mm(self, variables, batch, pair):
    """The pair's 3D answer (B, 17, 3) mm and latent mean; with `flip_test`, the mean of
    the answers to the input and to its mirror (mirrored back)."""
    apply = lambda x: self.model.apply(variables, x, source=pair.source, target=pair.target,
                                       train=False)
    result = apply(normalization.model_input(batch, pair.source))
    pred_mm = normalization.pose_3d_mm(result['recon'], self.stats)
    if self.flip_test:
      mirrored = apply(self._mirrored_input(batch, pair.source))['recon']
      pred_mm = mirror.flip_average(pred_mm, normalization.pose_3d_mm(mirrored, self.stats))
    if self.ray_weight is not None:
      pred_mm = self._refined(pred_mm, batch)
    return pred_mm, result['mean']

  def _refined(self, pred_mm, batch):
    """`ray_refinement.refine` of answers (B, 17, 3) mm in the model's frame (a perspective
    crop's turned one) to the keypoints 'pose_2d_plane' (B, 17, 2); padding rows as they are."""
    plane = batch['pose_2d_plane']
    camera_mm = normalization.camera_frame(pred_mm, plane, self.input_space)
    refined = ray_refinement.refine(camera_mm, plane, jnp.full(plane.shape[:-1], self.ray_weight))
    if self.input_space == 'perspective_crop':
      refined = normalization.to_crop_frame(refined, plane)
    return jnp.where(batch['valid'][:, None, None], refined, pred_mm)

  def batch_outputs(self, variables, batch):
    """Per-pose outputs of every pair on one batch, keyed '{pair.name}/{metric}' (traceable)."""
    out = {}
    for pair in self.pairs:
      errors = (self._pose_3d_errors(variables, batch, pair) if pair.target == modalities.POSE_3D
                else self._reconstruction_errors(variables, batch, pair))
      out.update({f'{pair.name}/{k}': v for k, v in errors.items()})
    out.update({k: batch[k] for k in METADATA_KEYS})
    if self.predictions:
      out['pose_3d_mm'] = batch['pose_3d_mm']
    return out

  def _pose_3d_errors(self, variables, batch, pair):
    pred_mm, latent = self.predict_3d_mm(variables, batch, pair)
    errors = metrics.pose_errors(pred_mm, batch['pose_3d_mm'])
    if 'sequence_bounds' in batch:  # for the jitter, over the whole split
      errors['pred_mm'] = pred_mm
    if self.predictions:
      errors.update(pred_mm=pred_mm, latent=latent)
    return errors

  def _reconstruction_errors(self, variables, batch, pair):
    """Mean joint error (px) of a 2D target, mean absolute error of a normalised image."""
    pred = self.model.apply(variables, normalization.model_input(batch, pair.source),
                            source=pair.source, target=pair.target, train=False)['recon']
    if pair.target == modalities.POSE_2D:
      error = jnp.linalg.norm(normalization.pose_2d_px(pred, self.stats)
                              - normalization.pose_2d_px(batch['pose_2d'], self.stats), axis=-1)
      return {'error_px': jnp.mean(error, axis=-1)}
    return {'l1': jnp.mean(jnp.abs(pred - normalization.model_input(batch, modalities.IMAGE)),
                           axis=(1, 2, 3))}

  def resident_fn(self, out_sharding):
    """jit of (variables, data) -> per-pose outputs of a whole padded device-resident split.

    Data in frame order with 'sequence_bounds' adds each pair's jitter and the ground
    truth's (`sequences.acceleration_mm`; NaN at sequence ends) and, for a temporal model,
    gives every row its window of 2D poses."""

    @functools.partial(jax.jit, out_shardings=out_sharding)
    def evaluate(variables, data):
      n = data['valid'].shape[0]
      data = dict(data, row=jnp.arange(n))
      batched = jax.tree.map(
          lambda v: v.reshape((n // self.batch_size, self.batch_size) + v.shape[1:]), data)

      def outputs(batch):
        if self.window_offsets is not None:
          batch = dict(batch, pose_2d_window=sequences.gather_windows(
              data['pose_2d'], batch['row'], batch['sequence_bounds'], self.window_offsets))
        return self.batch_outputs(variables, batch)

      per_pose = jax.lax.map(outputs, batched)
      per_pose = jax.tree.map(lambda v: v.reshape((n,) + v.shape[2:]), per_pose)
      if 'sequence_bounds' in data:
        per_pose = self._with_jitter(per_pose, data)
      return per_pose

    return evaluate

  def _with_jitter(self, per_pose, data):
    """Adds '{pair}/jitter' of every pair ending in 3D and 'jitter_gt' (mm / frame^2)."""
    bounds = data['sequence_bounds']
    per_pose['jitter_gt'] = sequences.acceleration_mm(data['pose_3d_mm'], bounds)
    for pair in self.pairs:
      if pair.target == modalities.POSE_3D:
        per_pose[f'{pair.name}/jitter'] = sequences.acceleration_mm(
            per_pose[f'{pair.name}/pred_mm'], bounds)
        if not self.predictions:
          del per_pose[f'{pair.name}/pred_mm']
    return per_pose

  def batch_fn(self, out_sharding, prepare=None):
    """jit of (variables, batch) -> per-pose outputs of one streamed batch; `prepare` turns
    a host batch into the model's batch first (`image_stream.device_batch`)."""
    if prepare is None:
      return jax.jit(self.batch_outputs, out_shardings=out_sharding)
    return jax.jit(lambda variables, batch: self.batch_outputs(variables, prepare(batch)),
                   out_shardings=out_sharding)

  @staticmethod
  def run_batches(evaluate_batch, variables, batches):
    """Host per-pose outputs of `evaluate_batch` over an iterable of batches, in order."""
    parts = collections.defaultdict(list)
    for batch in batches:
      for key, value in evaluate_batch(variables, batch).items():  # stays on the device
        parts[key].append(value)
    parts = jax.device_get(dict(parts))
    return {k: np.concatenate(v) for k, v in parts.items()}


def valid_rows(per_pose):
  """The per-pose outputs without the padding rows."""
  valid = np.asarray(per_pose['valid'], bool)
  return {k: np.asarray(v)[valid] for k, v in per_pose.items()}


def summarize(per_pose, num_actions=MAX_ACTIONS):
  """Host-side tables of one evaluation: per-action means (num_actions,) (NaN for actions
  without poses), mean over actions, per joint; errors in mm."""
  per_pose = valid_rows(per_pose)
  actions = per_pose['action']
  summary = {}
  for key, values in per_pose.items():
    if key in METADATA_KEYS or key.rsplit('/', 1)[-1] in PER_POSE_ONLY:
      continue
    if key.endswith('/per_joint'):
      summary[key] = values.mean(axis=0)
      continue
    key_actions = actions
    if is_jitter(key):  # defined between two frames of a sequence only
      values, key_actions = values[np.isfinite(values)], actions[np.isfinite(values)]
    table = metrics.action_table(jnp.asarray(values), jnp.asarray(key_actions),
                                 num_actions=num_actions)
    summary[key] = {'per_action': np.asarray(table['per_action']),
                    'mean_over_actions': float(table['mean_over_actions']),
                    'mean_over_poses': float(values.mean())}
  return summary


def is_jitter(key):
  """Whether a per-pose output is a jitter (mm / frame^2): '{pair}/jitter' or 'jitter_gt'."""
  return key == 'jitter_gt' or key.endswith('/jitter')


def jitter_line(summary):
  """'Jitter (mean joint acceleration, mm / frame^2, mean over actions): ...' of a summary
  of sequences, or ''."""
  keys = sorted(k for k in summary if is_jitter(k) and k != 'jitter_gt')
  if not keys:
    return ''
  parts = [f"{k.rsplit('/', 1)[0]} {summary[k]['mean_over_actions']:.2f}" for k in keys]
  parts.append(f"ground truth {summary['jitter_gt']['mean_over_actions']:.2f}")
  return 'Jitter (mean joint acceleration, mm / frame^2, mean over actions): ' + ', '.join(parts)


def action_columns(summary):
  """{'2d->3d MPJPE': per-action mm (num_actions,), ...} for every pair ending in 3D in a
  summary."""
  columns = {}
  for key, value in summary.items():
    if isinstance(value, dict) and key.rsplit('/', 1)[-1] in ('mpjpe', 'p_mpjpe'):
      name, metric = key.rsplit('/', 1)
      columns[f'{name} {"MPJPE" if metric == "mpjpe" else "P-MPJPE"}'] = value['per_action']
  return columns


def format_results(summary, action_names):
  """The per-action MPJPE / P-MPJPE table (mm) of every pair ending in 3D, as Markdown: a
  row per name of `action_names` (the dataset's, `skeleton.action_names`)."""
  columns = action_columns(summary)
  table = metrics.format_action_table(columns, action_names) if columns else ''
  jitter = jitter_line(summary)
  return f'{table}\n\n{jitter}\n' if jitter else table


def scalars(summary):
  """{key: mean over actions} of every table of a summary (for TensorBoard and logs)."""
  return {k: v['mean_over_actions'] for k, v in summary.items() if isinstance(v, dict)}


def headline(results):
  """An evaluation's means over actions ({key: value}, `scalars`) as short texts for the
  console: MPJPE and P-MPJPE (mm) of each pair ending in 3D, the 2D error (px) and the
  image L1 of the others, in the summary's order."""
  parts = []
  for key, value in results.items():
    name, _, metric = key.rpartition('/')
    if metric == 'mpjpe':
      procrustes = results.get(f'{name}/p_mpjpe')
      parts.append(f'{name} MPJPE {value:.1f} mm' +
                   (f' (P-MPJPE {procrustes:.1f})' if procrustes is not None else ''))
    elif metric == 'error_px':
      parts.append(f'{name} {value:.1f} px')
    elif metric == 'l1':
      parts.append(f'{name} L1 {value:.3f}')
  return parts


def best_metric(config, summary):
  """Mean-over-actions MPJPE (mm) of the first pair ending in 3D, for checkpoint ranking."""
  pairs = modalities.pairs_to_3d(config)
  return summary[f'{pairs[0].name}/mpjpe']['mean_over_actions'] if pairs else None
