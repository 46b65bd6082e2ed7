"""Evaluation of a trained workdir: per-action tables, per-joint errors, figures, hypotheses.

`run_evaluation` restores a checkpoint's parameters, runs the shared
`hpe_jax.evaluator.Evaluator` over a split (the one training uses), and writes
into `workdir/eval/`:

- results.md, results.csv: MPJPE and P-MPJPE (mm) per action (a row per action of the
  dataset, `skeleton.action_names`: 15 for Human3.6M) and their mean over actions,
  averaged over the 17 joints with the root included;
- per_joint.csv: each joint's error (mm, mean over poses);
- {pair}_predictions.png, {pair}_errors.png, latent_{source}_action.png,
  latent_{source}_camera.png;
- with num_hypotheses K > 0: {pair}_hypotheses.md/.csv (per action: MPJPE of
  the single answers, best-of-K and mean-of-K, calibration error, reprojection
  and bone symmetry errors; see `hypotheses`), {pair}_spread.csv/.png and
  {pair}_calibration.csv (per joint), over all poses or `max_hypothesis_poses`;
- summary.json: the tables, hypothesis numbers and pictures as data (what
  `hpe_jax.evaluation.summary` prints);
- TensorBoard events (scalars and images) at the checkpoint's step.

Pose pairs read the split with `input_pipeline.load_pose_arrays`; image pairs
stream its crops through grain (`input_pipeline.eval_image_batches`) in the same
(records') order.
Models with an image decoder also get `images.png`: test crops, their
reconstructions and images generated from the 2D/3D poses of the same examples.
"""

import csv
import functools
import json
import os
import re
import time

from absl import logging
import jax
import numpy as np

from hpe_jax import evaluator as evaluator_lib
from hpe_jax import files as files_lib
from hpe_jax import image_stream
from hpe_jax import input_pipeline
from hpe_jax import logs
from hpe_jax import metrics
from hpe_jax import modalities
from hpe_jax import parallel
from hpe_jax import ray_spread
from hpe_jax import sampling
from hpe_jax import sequences
from hpe_jax import summary_writer
from hpe_jax import workdir as workdir_lib
from hpe_jax.evaluation import figures
from hpe_jax.evaluation import hypotheses as hypotheses_lib
from hpe_jax.evaluation import images as images_lib
from hpe_jax.inference import restore as restore_lib
from tfds_h36m import skeleton

EVAL_DIR = 'eval'
SUMMARY_FILE = 'summary.json'
GRID_POSES = 25
DEFAULT_UMAP_NEIGHBORS = (5, 15, 50, 200)
# Poses of the hypothesis report: about 50 s at K = 50 for the default lifting model on 2
# CPU cores (~400 poses/s); Human3.6M's whole test split would take ~20 min.
DEFAULT_MAX_HYPOTHESIS_POSES = 20_000
# The hypothesis tables' columns (keys of hypotheses.summarize's tables): MPJPE in mm ...
HYPOTHESIS_MPJPE = (
    ('posterior_mean', 'posterior mean'), ('sample_mean', 'mean of the samples'),
    ('sample_median', 'median of the samples'), ('best_of_k', 'best of K (oracle)'),
    ('mean_of_k', 'mean of K'))
HYPOTHESIS_MPJPE_NOTE = (
    'Single answers: the posterior mean (the pose decoded from the latent mean; with the '
    'rays sampler, that pose moved onto the camera rays of the input 2D pose), the '
    'per-coordinate mean and median of the K samples; and over the K samples: the best one '
    '(an oracle: it picks by the ground truth) and the mean of their MPJPEs.')
# ... and the others: (key, label, unit).
HYPOTHESIS_OTHER = (
    ('calibration_error', 'calibration error', ''),
    ('reprojection_samples', 'reprojection: samples', 'px'),
    ('reprojection_posterior_mean', 'posterior mean', 'px'),
    ('reprojection_gt', 'ground truth', 'px'),
    ('symmetry_samples', 'bone symmetry: samples', 'mm'),
    ('symmetry_posterior_mean', 'posterior mean', 'mm'),
    ('symmetry_gt', 'ground truth', 'mm'))
HYPOTHESIS_OTHER_NOTE = (
    'Calibration error of the per-joint quantiles of the samples (0: calibrated, 0.5 at '
    'worst, as for samples all alike; Pierzchlewicz et al. 2022, see '
    'hpe_jax/evaluation/hypotheses.py). '
    'Reprojection error: the poses put at the example\'s root position and projected with '
    'its camera, against the input 2D pose (px, mean over joints; the samples\' mean over '
    'them); the ground truth\'s is the reference (0 when the input 2D is its projection). '
    'Bone symmetry error: |length(left bone) - length(right bone)| (mm, mean over the 6 '
    'left/right pairs).')
# Where the hypotheses come from: the model's latent, or the rays (`hpe_jax.ray_spread`).
SAMPLERS = ('latent', 'rays')
# What each picture shows, by the figure's name (without .png).
PICTURES = (
    ('_predictions', '25 test poses: prediction, ground truth, per-joint errors (mm)'),
    ('_errors', 'per-pose MPJPE by action'),
    ('_action', 'UMAP of the latent space, coloured by action'),
    ('_camera', 'UMAP of the latent space, coloured by camera'),
    ('_spread', 'per-joint spread of the sampled hypotheses'),
    ('images', 'test crops, reconstructions, images generated from 2D/3D poses'),
)


class EvalData:
  """A split of a workdir's dataset as fixed-size batches on this process's devices.

  Pose-only models read the split's poses whole (`input_pipeline.load_pose_arrays`);
  models with an image encoder stream its crops (`input_pipeline.eval_image_batches`)
  in the same (records') order. Padding rows carry valid=False.
  """

  def __init__(self, config, stats, split):
    self.config, self.stats, self.split = config, stats, split
    self.builder = input_pipeline.get_builder(config.dataset, config.data_dir,
                                              build_synthetic=False)
    mesh = parallel.make_data_mesh(jax.local_devices())
    self.sharding = parallel.batch_sharding(mesh)
    self.replicated = parallel.replicated(mesh)
    self.devices = len(jax.local_devices())
    self.batch_size = -(-config.eval_batch_size // self.devices) * self.devices
    self.streams_images = modalities.IMAGE in {p.source for p in modalities.pairs(config)}
    self.temporal = modalities.is_temporal(config)
    self._prepare = jax.jit(functools.partial(image_stream.device_batch, stats=stats,
                                              image_size=config.image_size))
    self._arrays = None
    if not self.streams_images:
      self.pose_arrays()

  def pose_arrays(self):
    """The split's poses from the pose side file (`input_pipeline.load_pose_arrays`), read
    on first use: image models need them only for the hypothesis report."""
    if self._arrays is None:
      self._arrays = input_pipeline.load_pose_arrays(self.builder, self.split, process_index=0,
                                                     process_count=1)
    return self._arrays

  def poses(self, multiple, in_frame_order=False):
    """The split's poses on the devices, padded to a multiple of `multiple` rows, in the
    records' order or `in_frame_order` (`input_pipeline.in_frame_order`: for temporal
    windows and the jitter)."""
    n = len(self._arrays['pose_3d'])
    arrays = input_pipeline.in_frame_order(self._arrays) if in_frame_order else self._arrays
    data = input_pipeline.eval_pose_arrays(arrays, self.stats, -(-n // multiple) * multiple,
                                           self.config)
    return jax.device_put(data, self.sharding)

  def windows(self, rows):
    """A temporal model's normalised 2D windows (R, window, 16, 2) of record rows `rows`."""
    arrays = self.pose_arrays()
    order = sequences.frame_order(arrays)
    rows_of = sequences.window_rows_by_order(
        order, sequences.bounds({k: arrays[k][order] for k in sequences.SEQUENCE_KEYS}),
        sequences.config_window_offsets(self.config))
    pose_2d = input_pipeline.model_pose_2d(arrays, self.stats, self.config,
                                           self.config.eval_pose_2d_noise)
    return pose_2d[rows_of(rows)].astype(np.float32)

  def hypothesis_rows(self, max_poses, seed):
    """Rows (records' order, ascending) of the hypothesis report: all of the split's, or a
    fixed random subset of `max_poses` drawn with `seed` (0: all)."""
    n = len(self.pose_arrays()['action'])
    if not 0 < max_poses < n:
      return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_poses, replace=False))

  def hypothesis_batches(self, batch_size, rows):
    """Batches of the split's `rows` on the devices, for `hypotheses.evaluate_hypotheses`:
    the model's inputs, pose_3d_mm, action, camera_index and valid as `batches` gives them,
    plus pose_2d_px (17, 2) px, root_3d (3,) mm and the camera's intrinsics
    (`ray_spread.INTRINSICS`, px) from the pose side file (whose rows are in the records'
    order, as the image stream's) for the reprojection."""
    arrays = {k: v[rows] for k, v in self.pose_arrays().items()}
    padded = -(-len(rows) // batch_size) * batch_size
    extra = {'pose_2d_px': arrays['pose_2d'], 'root_3d': arrays['root_3d'],
             **{k: arrays[k] for k in ray_spread.INTRINSICS}}
    if self.temporal:
      extra['pose_2d_window'] = self.windows(rows)
    extra = jax.device_put(parallel.pad_rows(extra, padded), self.sharding)
    if self.streams_images:
      batches = self._image_rows(batch_size, rows)
    else:
      data = jax.device_put(input_pipeline.eval_pose_arrays(arrays, self.stats, padded,
                                                            self.config),
                            self.sharding)
      batches = ({k: v[start:start + batch_size] for k, v in data.items()}
                 for start in range(0, padded, batch_size))
    for start, batch in zip(range(0, padded, batch_size), batches):
      yield dict(batch, **{k: v[start:start + batch_size] for k, v in extra.items()})

  def _image_rows(self, batch_size, rows):
    """The crops of `rows` streamed in batches (the last one padded), on the devices."""
    source = _Rows(input_pipeline.image_source(self.builder, self.split, 0, 1), rows)
    size = image_stream.decoded_size(self.builder.info.features['image'].shape[0],
                                     self.config.image_size)
    dataset = image_stream.eval_batches(source, batch_size=batch_size, size=size,
                                        num_batches=-(-len(rows) // batch_size))
    for batch in image_stream.iterate(dataset):
      yield self._prepare(jax.device_put(batch, self.sharding))

  def batches(self, batch_size):
    """Batches of `batch_size` rows in file order, on the devices."""
    if not self.streams_images:
      data = self.poses(batch_size)
      for start in range(0, len(data['valid']), batch_size):
        yield {k: v[start:start + batch_size] for k, v in data.items()}
      return
    dataset = input_pipeline.eval_image_batches(
        self.builder, self.split, batch_size=batch_size, image_size=self.config.image_size,
        process_index=0, process_count=1)
    for batch in image_stream.iterate(dataset):
      yield self._prepare(jax.device_put(batch, self.sharding))

  def evaluate(self, evaluator, variables):
    """Host per-pose outputs of the evaluator over the whole split in the records' order,
    padding rows dropped."""
    if self.streams_images:
      per_pose = evaluator.run_batches(evaluator.batch_fn(self.replicated), variables,
                                       self.batches(evaluator.batch_size))
    else:
      per_pose = jax.device_get(evaluator.resident_fn(self.replicated)(
          variables, self.poses(evaluator.batch_size, in_frame_order=True)))
      # Back from frame order to the records' order (padding rows are the last ones).
      record_order = np.argsort(sequences.frame_order(self._arrays))
      per_pose = {k: np.asarray(v)[record_order] for k, v in per_pose.items()}
    return evaluator_lib.valid_rows(per_pose)


class _Rows:
  """Some rows of a random-access source, as a source (what grain reads)."""

  def __init__(self, source, rows):
    self.source, self.rows = source, rows

  def __len__(self):
    return len(self.rows)

  def __getitem__(self, index):
    return self.source[int(self.rows[index])]


def _fmt(value):
  return '' if np.isnan(value) else f'{value:.4f}'


def _write_csv(path, header, rows):
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return path


def write_action_tables(eval_dir, summary, counts, action_names, header=''):
  """results.md (the evaluator's table) and results.csv: a row per name of `action_names`
  (the dataset's) with its poses of `counts`, and the mean over actions, mm."""
  md_path = os.path.join(eval_dir, 'results.md')
  with open(md_path, 'w') as f:
    f.write((header + '\n\n' if header else '')
            + evaluator_lib.format_results(summary, action_names) + '\n')
  columns = evaluator_lib.action_columns(summary)
  rows = [[name, int(counts[a])] + [_fmt(v[a]) for v in columns.values()]
          for a, name in enumerate(action_names)]
  rows.append(['Average', int(np.sum(counts))] +
              [_fmt(np.nanmean(v)) for v in columns.values()])
  csv_path = _write_csv(os.path.join(eval_dir, 'results.csv'),
                        ['action', 'poses'] + [f'{c} (mm)' for c in columns], rows)
  return md_path, csv_path


def write_per_joint(eval_dir, summary):
  """per_joint.csv: each joint's error (mm, mean over poses) for every pair ending in 3D."""
  keys = [k for k in summary if k.endswith('/per_joint')]
  rows = [[name] + [_fmt(summary[k][j]) for k in keys]
          for j, name in enumerate(skeleton.JOINT_NAMES)]
  header = ['joint'] + [f'{k.rsplit("/", 1)[0]} error (mm)' for k in keys]
  return _write_csv(os.path.join(eval_dir, 'per_joint.csv'), header, rows)


def _action_markdown(columns, action_names):
  """Markdown table lines: a row per name of `action_names` and the mean over actions, of
  {label: (per_action (A,), mean_over_actions, decimals)}."""
  fmt = lambda v, decimals: '-' if np.isnan(v) else f'{v:.{decimals}f}'
  lines = ['| Action | ' + ' | '.join(columns) + ' |', '|---|' + '---:|' * len(columns)]
  for a, name in enumerate(action_names):
    lines.append(f'| {name} | ' + ' | '.join(fmt(v[a], d) for v, _, d in columns.values()) + ' |')
  lines.append('| **Average** | ' + ' | '.join(fmt(m, d) for _, m, d in columns.values()) + ' |')
  return lines


def _hypotheses_markdown(summary, header, action_names):
  """The lines of {tag}_hypotheses.md: the MPJPE table, the calibration / reprojection /
  symmetry table (a row per name of `action_names`) and the per-joint spread and
  calibration error."""
  tables = summary['tables']
  md = [header, '', HYPOTHESIS_MPJPE_NOTE, '', metrics.format_action_table(
      {label: tables[k]['per_action'] for k, label in HYPOTHESIS_MPJPE}, action_names),
        '', HYPOTHESIS_OTHER_NOTE, '']
  md += _action_markdown({f'{label} ({unit})' if unit else label: (
      tables[k]['per_action'], tables[k]['mean_over_actions'], 3 if k == 'calibration_error' else 1)
                          for k, label, unit in HYPOTHESIS_OTHER}, action_names)
  md += ['', 'Per joint: spread, the std over the K samples (mm, mean over poses) along the '
         'camera axes and in total (root of the summed variances), and calibration error '
         f'ECE_j (all {int(summary["counts"].sum())} poses; the root, always at the origin, '
         'has none).', '',
         '| Joint | x | y | z (depth) | total | ECE |', '|---|---:|---:|---:|---:|---:|']
  for j, name in enumerate(skeleton.JOINT_NAMES):
    sx, sy, sz = summary['spread_xyz'][j]
    ece = summary['calibration_error_joint'][j]
    md.append(f'| {name} | {sx:.1f} | {sy:.1f} | {sz:.1f} | {summary["spread"][j]:.1f} | '
              f'{"-" if np.isnan(ece) else f"{ece:.3f}"} |')
  md += ['', 'Calibration error of all poses together (not the mean over actions): '
         f'{summary["calibration_error_all_poses"]:.3f}.']
  return md


def write_hypotheses(eval_dir, tag, summary, header, action_names):
  """{tag}_hypotheses.md (the tables), {tag}_hypotheses.csv (a row per name of
  `action_names`), {tag}_spread.csv and {tag}_calibration.csv (per joint: ECE_j and the
  frequencies freq_j(q))."""
  tables = summary['tables']
  md_path = os.path.join(eval_dir, f'{tag}_hypotheses.md')
  with open(md_path, 'w') as f:
    f.write('\n'.join(_hypotheses_markdown(summary, header, action_names)) + '\n')
  columns = {f'{k}_mpjpe_mm': k for k, _ in HYPOTHESIS_MPJPE}
  columns.update({f'{k}_{unit}' if unit else k: k for k, _, unit in HYPOTHESIS_OTHER})
  rows = [[name, int(summary['counts'][a])] +
          [_fmt(tables[k]['per_action'][a]) for k in columns.values()]
          for a, name in enumerate(action_names)]
  rows.append(['Average', int(summary['counts'].sum())] +
              [_fmt(tables[k]['mean_over_actions']) for k in columns.values()])
  csv_path = _write_csv(os.path.join(eval_dir, f'{tag}_hypotheses.csv'),
                        ['action', 'poses'] + list(columns), rows)
  spread_rows = [[name] + [_fmt(v) for v in summary['spread_xyz'][j]] + [_fmt(summary['spread'][j])]
                 for j, name in enumerate(skeleton.JOINT_NAMES)]
  spread_path = _write_csv(os.path.join(eval_dir, f'{tag}_spread.csv'),
                           ['joint', 'std_x_mm', 'std_y_mm', 'std_z_mm', 'spread_mm'], spread_rows)
  frequencies = np.concatenate([np.full((1, len(hypotheses_lib.QUANTILES)), np.nan),
                                summary['calibration_frequencies']])
  calibration_rows = [[name, _fmt(summary['calibration_error_joint'][j])] +
                      [_fmt(v) for v in frequencies[j]]
                      for j, name in enumerate(skeleton.JOINT_NAMES)]
  calibration_path = _write_csv(
      os.path.join(eval_dir, f'{tag}_calibration.csv'),
      ['joint', 'calibration_error'] + [f'freq_q{q:.2f}' for q in hypotheses_lib.QUANTILES],
      calibration_rows)
  return md_path, csv_path, spread_path, calibration_path


def _grid_figure(per_pose, name, seed, action_names):
  n = len(per_pose['action'])
  idx = np.sort(np.random.default_rng(seed).choice(n, min(GRID_POSES, n), replace=False))
  titles = [f'{action_names[per_pose["action"][i]]}, '
            f'MPJPE {per_pose[f"{name}/mpjpe"][i]:.1f} mm' for i in idx]
  return figures.prediction_grid(per_pose[f'{name}/pred_mm'][idx], per_pose['pose_3d_mm'][idx],
                                 titles)


def camera_names(dataset, camera_index):
  """Labels of a dataset's camera indices: Human3.6M's camera ids, or for a motion capture
  dataset ('mocap/...') the k-th virtual camera of a sequence, 'virtual_<k>' (as many as
  the indices `camera_index` need)."""
  if dataset.split('/')[0] != 'mocap':
    return skeleton.CAMERA_IDS
  return tuple(f'virtual_{k}' for k in range(int(np.max(camera_index, initial=0)) + 1))


def _latent_figures(per_pose, name, source, dataset, neighbors, max_points, seed):
  """UMAPs of a source's latent means coloured by action and by camera, of `dataset`."""
  latents = per_pose[f'{name}/latent']
  n = len(latents)
  idx = np.arange(n)
  if n > max_points:
    idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
  logging.info('Latent-space pictures of %s: UMAP layouts of %d posterior means (%d '
               'dimensions) for n_neighbors %s (--latent_max_points, --umap_neighbors).',
               source, len(idx), latents.shape[1], ', '.join(map(str, neighbors)))
  start = time.monotonic()
  embeddings = figures.umap_embeddings(latents[idx], neighbors, seed=seed)
  logging.info('UMAP of %s done in %.0f s.', source, time.monotonic() - start)
  if not embeddings:
    logging.warning('Too few points (%d) for a UMAP of the latent space.', len(idx))
    return {}
  what = f'posterior means of {source}, {len(idx)} poses'
  return {
      f'latent_{source}_action': figures.latent_scatter(
          embeddings, per_pose['action'][idx], skeleton.action_names(dataset),
          title=f'Latent space (UMAP of {what}) by action', legend_title='action'),
      f'latent_{source}_camera': figures.latent_scatter(
          embeddings, per_pose['camera_index'][idx],
          camera_names(dataset, per_pose['camera_index']),
          title=f'Latent space (UMAP of {what}) by camera', legend_title='camera'),
  }


def _figures(per_pose, pairs, dataset, umap_neighbors, latent_max_points, seed):
  """{name: figure}: prediction grids, error distributions and latent UMAPs of the pairs,
  labelled with the actions and cameras of `dataset` (its TFDS name)."""
  figs, action_names = {}, skeleton.action_names(dataset)
  for pair in pairs:
    figs[f'{pair.tag}_predictions'] = _grid_figure(per_pose, pair.name, seed, action_names)
    figs[f'{pair.tag}_errors'] = figures.error_distribution(
        per_pose[f'{pair.name}/mpjpe'], per_pose['action'], action_names,
        title=f'{pair.name}: per-pose MPJPE by action')
  if umap_neighbors:
    for source in sorted({p.source for p in pairs}):
      name = next(p for p in pairs if p.source == source).name
      figs.update(_latent_figures(per_pose, name, source, dataset, umap_neighbors,
                                  latent_max_points, seed))
  return figs


def _sampler_setup(restored, pairs, sampler):
  """(the pairs sampled, the ray spread's table or None, the header's words on the
  samples) of `sampler`: 'latent' (the model's own) or 'rays' (`hpe_jax.ray_spread`)."""
  if sampler not in SAMPLERS:
    raise ValueError(f'Unknown sampler {sampler!r}; known: {", ".join(SAMPLERS)}.')
  if sampler == 'latent':
    return pairs, None, 'from the posterior'
  table = jax.device_put(ray_spread.load(restored.workdir))
  pose_pairs = [p for p in pairs if p.source == modalities.POSE_2D]
  if not pose_pairs:
    raise restore_lib.CheckpointError(
        f'No pair of {restored.workdir} lifts 2D poses: the rays sampler needs one.')
  return pose_pairs, table, (f'along the camera rays ({ray_spread.SPREAD_FILE}), around '
                              'the single answer on the rays')


def _check_hypotheses_fit(restored, data, stats, sampled, num_hypotheses):
  """A memory.BudgetError, before the evaluation's work, where one pose's K hypotheses
  would not fit the memory budget (`hypotheses.rows_per_call` on the split's first pose)."""
  pairs, ray_table, _ = sampled
  first = next(data.hypothesis_batches(data.devices, data.hypothesis_rows(0, 0)[:1]))
  for pair in pairs:
    hypotheses_lib.rows_per_call(
        hypotheses_lib.make_hypothesis_metrics(
            restored.model, pair.source, stats, num_hypotheses,
            len(skeleton.action_names(restored.config.dataset)), ray_table,
            restored.config.input_space),
        restored.variables, first, num_hypotheses)


def _hypotheses(restored, data, stats, sampled, settings, eval_dir):
  """Samples K hypotheses per pose of the report's rows for each pair of `sampled` (of
  `_sampler_setup`) and writes their tables; returns ({pair name: summary}, files, {name:
  spread figure}, number of poses)."""
  num_hypotheses, temperature, seed, max_poses = settings
  pairs, ray_table, origin = sampled
  files, figs = [], {}
  if restored.config.deterministic and ray_table is None:
    logging.warning('%s was trained without the KL term (deterministic): its posterior '
                    'variances are untrained and the hypotheses mean little.', restored.workdir)
  batch_size = sampling.batch_size_for(num_hypotheses, data.batch_size, data.devices)
  rows = data.hypothesis_rows(max_poses, seed)
  total = len(data.pose_arrays()['action'])
  poses = (f'{len(rows)} poses' if len(rows) == total else
           f'{len(rows)} of its {total} poses (a fixed random subset, seed {seed}, '
           f'--max_hypothesis_poses={max_poses})')
  out, action_names = {}, skeleton.action_names(restored.config.dataset)
  for pair in pairs:
    logging.info('Sampling %d hypotheses per pose for %s (temperature %g, batches of %d) '
                 'over %s.', num_hypotheses, pair.name, temperature, batch_size, poses)
    start = time.monotonic()
    per_pose, counts = hypotheses_lib.evaluate_hypotheses(
        restored.model, restored.variables, pair.source, stats,
        data.hypothesis_batches(batch_size, rows), num_samples=num_hypotheses,
        temperature=temperature, seed=seed, num_actions=len(action_names),
        ray_table=ray_table, input_space=restored.config.input_space)
    hyp = hypotheses_lib.summarize(per_pose, counts)
    out[pair.name] = hyp
    header = (f'{pair.name}: {num_hypotheses} samples per pose {origin}, '
              f'temperature {temperature:g}, seed {seed}; checkpoint step {restored.step}, '
              f'split {data.split!r}, {poses}.')
    files.extend(write_hypotheses(eval_dir, pair.tag, hyp, header, action_names))
    figs[f'{pair.tag}_spread'] = figures.joint_spread(
        hyp['spread_xyz'], title=f'{pair.name}: per-joint spread of {num_hypotheses} samples '
        f'(temperature {temperature:g})', caption=_spread_caption(hyp))
    logging.info('%s: %d hypotheses per pose sampled in %.0f s; calibration error %.3f.',
                 pair.name, num_hypotheses, time.monotonic() - start,
                 hyp['tables']['calibration_error']['mean_over_actions'])
  return out, files, figs, len(rows)


def _spread_caption(hyp):
  """`hypotheses.spread_caption` of a pair's hypothesis summary (errors: mean of K)."""
  tables = hyp['tables']
  return hypotheses_lib.spread_caption(
      hypotheses_lib.spread_mm(hyp), tables['mean_of_k']['mean_over_actions'],
      tables['calibration_error']['mean_over_actions'])


def _picture_note(name):
  return next((what for suffix, what in PICTURES if name.endswith(suffix)), '')


def _number(value):
  """A float for JSON: None for NaN (an action without poses), which strict parsers reject."""
  value = float(value)
  return None if np.isnan(value) else value


def _write_summary(eval_dir, record, summary, hypotheses, pictures, action_names):
  """eval/summary.json: the run's tables (a value per name of `action_names`), hypothesis
  numbers and pictures as data."""
  tables = {k: {'per_action': [_number(x) for x in v['per_action']],
                'mean_over_actions': _number(v['mean_over_actions'])}
            for k, v in summary.items() if isinstance(v, dict)}
  hyp = {name: dict({k: _number(h['tables'][k]['mean_over_actions']) for k in h['tables']},
                    calibration_error_all_poses=_number(h['calibration_error_all_poses']),
                    spread_mm=_number(hypotheses_lib.spread_mm(h)),
                    spread_xyz_joint_mm=np.round(h['spread_xyz'], 2).tolist())
         for name, h in hypotheses.items()}
  data = dict(record, actions=list(action_names), tables=tables, hypotheses=hyp,
              pictures=[{'path': p, 'what': _picture_note(os.path.basename(p)[:-4])}
                        for p in pictures])
  path = os.path.join(eval_dir, SUMMARY_FILE)
  files_lib.write_atomic(path, json.dumps(data, indent=1, allow_nan=False))
  return path


def _write_pictures(eval_dir, figs, restored, data):
  """The figures as PNGs (and TensorBoard images); images.png for models with an image decoder."""
  files, images = [], {}
  for fig_name, fig in figs.items():
    files.append(figures.save_png(fig, os.path.join(eval_dir, f'{fig_name}.png')))
    images[fig_name] = figures.to_array(fig)[None]
  if modalities.IMAGE in restored.model.decoders:
    generate, labels = images_lib.make_image_generator(restored.model, data.replicated)
    first = next(data.batches(data.batch_size))
    rows = np.asarray(generate(restored.variables, first))
    files.append(os.path.join(eval_dir, 'images.png'))
    images_lib.save_image_grid(files[-1], rows, labels)
    images['images'] = images_lib.image_grid(rows)[None]
  return files, images


def eval_dir_name(config, dataset=None, pose_2d_noise=None, split='test'):
  """'eval' for the test split of the workdir's own dataset with its 2D; 'eval_<dataset>'
  ('/' as '_') for another dataset, then '_noise<level>' for noisy 2D and '_<split>' for a
  split other than 'test' (so evaluating the training split keeps the test's results)."""
  name = EVAL_DIR
  if dataset and dataset != config.dataset:
    name += '_' + dataset.replace('/', '_')
  if pose_2d_noise:
    name += f'_noise{pose_2d_noise:g}'
  if split != 'test':  # TFDS split syntax ('train[:10%]') as a folder name: eval_train_10
    name += '_' + re.sub(r'[^A-Za-z0-9]+', '_', split).strip('_')
  return name


def _restore(workdir, checkpoint, dataset, data_dir, pose_2d_noise, flip_test, split):
  """(restored workdir with its config set for this evaluation, stats, eval folder name)."""
  if dataset:  # an unknown or unbuilt dataset is one line before the checkpoint is read
    input_pipeline.check_dataset(dataset,
                                 data_dir or restore_lib.load_config(workdir).data_dir)
  restored = restore_lib.restore(workdir, checkpoint)
  config = restored.config
  stats = restore_lib.load_stats(workdir, config)
  name = eval_dir_name(config, dataset, pose_2d_noise, split)
  if dataset:
    config.dataset, config.data_dir = dataset, data_dir or config.data_dir
  if pose_2d_noise is not None:
    config.eval_pose_2d_noise = float(pose_2d_noise)
  if flip_test is not None:
    config.flip_test = bool(flip_test)
  logging.info('Test-time flip of the single answers: %s.', 'on' if config.flip_test else 'off')
  return restored, stats, name


def run_evaluation(workdir, *, checkpoint='best', split='test', num_hypotheses=0,
                   temperature=1.0, seed=0, max_hypothesis_poses=DEFAULT_MAX_HYPOTHESIS_POSES,
                   umap_neighbors=DEFAULT_UMAP_NEIGHBORS, latent_max_points=5000,
                   flip_test=None, sampler='latent', dataset=None, data_dir=None,
                   pose_2d_noise=None):
  """Evaluates a workdir's checkpoint on a split and writes everything into workdir/eval
  (workdir/eval[_<dataset>][_noise<level>][_<split>] for another dataset, noisy 2D or a
  split other than 'test', `eval_dir_name`).

  num_hypotheses: K posterior samples per pose (0: none); max_hypothesis_poses:
  poses of the hypothesis report (a fixed random subset drawn with `seed`; 0: all
  of the split's); umap_neighbors: the UMAP n_neighbors values of the latent
  figures (empty: no latent figures); latent_max_points: poses (a fixed random
  subset) in the UMAP; flip_test: True or False overrides the workdir's
  `config.flip_test` (the test-time flip of the single answers; None keeps it); sampler:
  'latent' (the model's samples) or 'rays' (`hpe_jax.ray_spread`, after
  `hpe_jax.fit_spread`); dataset (and data_dir): another dataset of the training schema
  (e.g. a model trained on mocap/cmu tested on mocap/bandai), read with the workdir's
  normalisation; pose_2d_noise: the config's eval_pose_2d_noise (detector-like 2D noise).
  Returns dict(step, summary, hypotheses {pair: summary}, files).
  """
  restored, stats, dir_name = _restore(workdir, checkpoint, dataset, data_dir, pose_2d_noise,
                                       flip_test, split)
  config = restored.config
  pairs = modalities.pairs_to_3d(config)
  if not pairs:
    raise restore_lib.CheckpointError(f'No pair of {workdir} ends in 3D: nothing to evaluate.')
  sampled = _sampler_setup(restored, pairs, sampler) if num_hypotheses > 0 else None
  final_dir = os.path.join(restored.workdir, dir_name)
  with workdir_lib.eval_lock(restored.workdir), files_lib.staged_dir(restored.workdir,
                                                                      dir_name) as eval_dir:
    logging.info('Reading split %r of %s.', split, config.dataset)
    data = EvalData(config, stats, split)
    if num_hypotheses > 0:
      _check_hypotheses_fit(restored, data, stats, sampled, num_hypotheses)
    evaluator = evaluator_lib.Evaluator(restored.model, config, stats, predictions=True,
                                        batch_size=data.batch_size)
    per_pose = data.evaluate(evaluator, restored.variables)
    num_poses = len(per_pose['action'])
    action_names = skeleton.action_names(config.dataset)
    summary = evaluator_lib.summarize(per_pose, len(action_names))
    counts = np.bincount(per_pose['action'], minlength=len(action_names))
    header = (f'Evaluation of {restored.workdir}, checkpoint step {restored.step} '
              f'({checkpoint}), split {split!r}: {num_poses} poses of {config.dataset}.')
    files = list(write_action_tables(eval_dir, summary, counts, action_names, header))
    files.append(write_per_joint(eval_dir, summary))
    scalars = {f'{split}/{k}': v for k, v in evaluator_lib.scalars(summary).items()}
    logs.info_wrapped(f'{num_poses} poses evaluated: ', evaluator_lib.headline(
        evaluator_lib.scalars(summary)))
    figs = _figures(per_pose, pairs, config.dataset, umap_neighbors, latent_max_points, seed)
    hypotheses, hypothesis_poses = {}, 0
    if num_hypotheses > 0:
      hypotheses, hyp_files, hyp_figs, hypothesis_poses = _hypotheses(
          restored, data, stats, sampled,
          (num_hypotheses, temperature, seed, max_hypothesis_poses), eval_dir)
      files += hyp_files
      figs.update(hyp_figs)
      for name, hyp in hypotheses.items():
        for key, table in hyp['tables'].items():
          scalars[f'{split}/{name}/hypotheses_{key}'] = table['mean_over_actions']
    pictures, images = _write_pictures(eval_dir, figs, restored, data)
    files += pictures
    record = {'header': header, 'workdir': restored.workdir, 'step': restored.step,
              'checkpoint': str(checkpoint), 'split': split, 'num_poses': num_poses,
              'dataset': config.dataset, 'num_hypotheses': num_hypotheses, 'sampler': sampler,
              'flip_test': bool(config.flip_test),
              'eval_pose_2d_noise': float(config.eval_pose_2d_noise),
              'num_hypothesis_poses': hypothesis_poses}
    shown = [os.path.join(final_dir, os.path.basename(p)) for p in pictures]
    files.append(_write_summary(eval_dir, record, summary, hypotheses, shown, action_names))
    writer = summary_writer.SummaryWriter(eval_dir)
    writer.write_scalars(restored.step, scalars, log=False)  # summary.json holds them
    writer.write_images(restored.step, images)
    writer.close()
  files = [os.path.join(final_dir, os.path.relpath(f, eval_dir)) for f in files]
  summary_command = 'python -m hpe_jax.evaluation.summary --workdir=' + restored.workdir
  logging.info('Wrote %d files and TensorBoard summaries to %s%s.', len(files), final_dir,
               f'; {summary_command} prints its tables' if dir_name == EVAL_DIR else '')
  return {'step': restored.step, 'summary': summary, 'hypotheses': hypotheses, 'files': files,
          'eval_dir': final_dir}
