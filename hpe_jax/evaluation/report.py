"""Evaluation of a trained workdir: per-action tables, per-joint errors, figures, hypotheses.

`run_evaluation` restores a checkpoint, streams a split through each pair
ending in 3D in fixed-size batches (one jitted function per pair, no
recompiles), and writes into `workdir/eval/`:

- results.md, results.csv: MPJPE and P-MPJPE (mm) per action (15 rows) and
  their mean over actions, averaged over the 17 joints with the root included;
- per_joint.csv: each joint's error (mm, mean over poses);
- {pair}_predictions.png, {pair}_errors.png, latent_{source}_action.png,
  latent_{source}_camera.png;
- with num_hypotheses K > 0: {pair}_hypotheses.md/.csv, {pair}_spread.csv/.png;
- TensorBoard events (scalars and images) at the checkpoint's step.

Pose pairs read the split with `input_pipeline.load_pose_arrays`; image pairs
stream its crops with `input_pipeline.image_batches` in the same (file) order.
Models with an image decoder also get `images.png`: test crops, their
reconstructions and images generated from the 2D/3D poses of the same examples.
"""

import csv
import os
import time

from absl import logging
from clu import metric_writers
import jax
import numpy as np

from hpe_jax import input_pipeline
from hpe_jax import metrics
from hpe_jax import train
from hpe_jax.evaluation import checkpoint as checkpoint_lib
from hpe_jax.evaluation import figures
from hpe_jax.evaluation import hypotheses as hypotheses_lib
from tfds_h36m import skeleton

EVAL_DIR = 'eval'
GRID_POSES = 25
DEFAULT_UMAP_NEIGHBORS = (5, 15, 50, 200)
SOURCES = ('pose_2d', 'pose_3d', train.IMAGE)


def pair_tag(pair):
  """A file-name-safe pair name: '2d_to_3d'."""
  return train.pair_name(pair).replace('->', '_to_')


def load_pose_split(config, stats, split):
  """A split's normalised model inputs and metadata as host arrays (one process).

  Keys: pose_2d (N, 16, 2) and pose_3d (N, 16, 3) normalised as in training,
  pose_3d_mm (N, 17, 3) root-relative mm, pose_2d_px (N, 17, 2), action and
  camera_index (N,).
  """
  builder = input_pipeline.get_builder(config.dataset, config.data_dir, build_synthetic=False)
  arrays = input_pipeline.load_pose_arrays(builder, split, process_index=0, process_count=1)
  f32 = lambda x: np.asarray(x, np.float32)
  return {
      'pose_2d': f32(metrics.normalize(arrays['pose_2d'], stats, 'pose_2d')),
      'pose_3d': f32(metrics.normalize(arrays['pose_3d'], stats, 'pose_3d')),
      'pose_3d_mm': f32(arrays['pose_3d']),
      'pose_2d_px': f32(arrays['pose_2d']),
      'action': arrays['action'],
      'camera_index': arrays['camera_index'],
  }


def iterate_batches(arrays, keys, batch_size, sharding=None):
  """Yields (batch, num_valid): fixed-size batches of `keys`, the last one zero-padded.

  With `sharding`, batches are put on the devices with it (batch_size must
  then divide by the number of devices).
  """
  n = len(arrays[keys[0]])
  num_batches = -(-n // batch_size)
  last_log = time.time()
  for i in range(num_batches):
    start = i * batch_size
    batch = {}
    for k in keys:
      part = arrays[k][start:start + batch_size]
      pad = batch_size - len(part)
      batch[k] = np.concatenate([part, np.zeros((pad,) + part.shape[1:], part.dtype)]) \
          if pad else part
    if sharding is not None:
      batch = jax.device_put(batch, sharding)
    if time.time() - last_log > 10:
      logging.info('Batch %d / %d.', i + 1, num_batches)
      last_log = time.time()
    yield batch, min(batch_size, n - start)


def iterate_image_batches(config, stats, split, batch_size, sharding=None):
  """Yields (batch, num_valid) of a split's crops and poses in file order (one process),
  as `input_pipeline.image_batches` gives them; padding rows come last."""
  builder = input_pipeline.get_builder(config.dataset, config.data_dir, build_synthetic=False)
  dataset = input_pipeline.image_batches(
      builder, split, batch_size=batch_size, image_size=config.image_size, stats=stats,
      train=False, process_index=0, process_count=1)
  for batch in dataset.as_numpy_iterator():
    num_valid = int(batch['valid'].sum())
    if not num_valid:
      return
    yield (jax.device_put(batch, sharding) if sharding is not None else batch), num_valid


def make_pair_eval_fn(model, pair, stats):
  """jit of (variables, x, target_mm) -> predictions, posterior means, per-pose errors (mm)."""

  @jax.jit
  def evaluate(variables, x, target_mm):
    x = train.model_input({pair['source']: x}, pair['source'])
    out = model.apply(variables, x, source=pair['source'], target=pair['target'], train=False)
    pred_mm = metrics.pose_3d_mm(out['recon'], stats)
    return {'pred_mm': pred_mm, 'latent': out['mean'], **metrics.pose_errors(pred_mm, target_mm)}

  return evaluate


def evaluate_pair(model, variables, pair, stats, batches):
  """Host arrays of one pair ending in 3D over `batches` of (batch, num_valid).

  A batch holds batch[pair['source']] (as the data holds it: normalised poses,
  uint8 crops) and 'pose_3d_mm'.
  Returns pred_mm (N, 17, 3), latent (N, latent_dim), mpjpe and p_mpjpe (N,)
  and per_joint (N, 17), in mm.
  """
  evaluate = make_pair_eval_fn(model, pair, stats)
  parts = []
  for batch, num_valid in batches:
    out = evaluate(variables, batch[pair['source']], batch['pose_3d_mm'])
    parts.append({k: np.asarray(v)[:num_valid] for k, v in out.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _fmt(value):
  return '' if np.isnan(value) else f'{value:.4f}'


def _write_csv(path, header, rows):
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  return path


def action_columns(summary):
  """{'2d->3d MPJPE': per-action mm (15,), ...} for every pair ending in 3D in a summary."""
  columns = {}
  for key, value in summary.items():
    if isinstance(value, dict) and key.rsplit('/', 1)[-1] in ('mpjpe', 'p_mpjpe'):
      name, metric = key.rsplit('/', 1)
      columns[f'{name} {"MPJPE" if metric == "mpjpe" else "P-MPJPE"}'] = value['per_action']
  return columns


def write_action_tables(eval_dir, summary, counts, header=''):
  """results.md (train.format_results) and results.csv: 15 actions + the mean over actions, mm."""
  md_path = os.path.join(eval_dir, 'results.md')
  with open(md_path, 'w') as f:
    f.write((header + '\n\n' if header else '') + train.format_results(summary) + '\n')
  columns = action_columns(summary)
  rows = [[name, int(counts[a])] + [_fmt(v[a]) for v in columns.values()]
          for a, name in enumerate(skeleton.ACTIONS)]
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


def write_hypotheses(eval_dir, tag, summary, header):
  """{tag}_hypotheses.md (both tables), {tag}_hypotheses.csv (per action) and {tag}_spread.csv."""
  tables = summary['tables']
  labels = {'posterior_mean': 'posterior mean', 'best_of_k': 'best of K (oracle)',
            'mean_of_k': 'mean of K'}
  md = [header, '', metrics.format_action_table(
      {labels[k]: tables[k]['per_action'] for k in labels}, skeleton.ACTIONS), '',
        'Per-joint spread: std over the K samples (mm, mean over poses) along the camera '
        'axes, and in total (root of the summed variances).', '',
        '| Joint | x | y | z (depth) | total |', '|---|---:|---:|---:|---:|']
  for j, name in enumerate(skeleton.JOINT_NAMES):
    sx, sy, sz = summary['spread_xyz'][j]
    md.append(f'| {name} | {sx:.1f} | {sy:.1f} | {sz:.1f} | {summary["spread"][j]:.1f} |')
  md_path = os.path.join(eval_dir, f'{tag}_hypotheses.md')
  with open(md_path, 'w') as f:
    f.write('\n'.join(md) + '\n')
  rows = [[name, int(summary['counts'][a])] + [_fmt(tables[k]['per_action'][a]) for k in labels]
          for a, name in enumerate(skeleton.ACTIONS)]
  rows.append(['Average', int(summary['counts'].sum())] +
              [_fmt(tables[k]['mean_over_actions']) for k in labels])
  csv_path = _write_csv(os.path.join(eval_dir, f'{tag}_hypotheses.csv'),
                        ['action', 'poses'] + [f'{k}_mpjpe_mm' for k in labels], rows)
  spread_rows = [[name] + [_fmt(v) for v in summary['spread_xyz'][j]] + [_fmt(summary['spread'][j])]
                 for j, name in enumerate(skeleton.JOINT_NAMES)]
  spread_path = _write_csv(os.path.join(eval_dir, f'{tag}_spread.csv'),
                           ['joint', 'std_x_mm', 'std_y_mm', 'std_z_mm', 'spread_mm'], spread_rows)
  return md_path, csv_path, spread_path


def _grid_figure(result, data, seed):
  n = len(result['mpjpe'])
  idx = np.sort(np.random.default_rng(seed).choice(n, min(GRID_POSES, n), replace=False))
  titles = [f'{skeleton.ACTIONS[data["action"][i]]}, MPJPE {result["mpjpe"][i]:.1f} mm'
            for i in idx]
  return figures.prediction_grid(result['pred_mm'][idx], data['pose_3d_mm'][idx], titles)


def _latent_figures(latents, data, source, neighbors, max_points, seed):
  n = len(latents)
  idx = np.arange(n)
  if n > max_points:
    idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
  logging.info('UMAP of %d %s embeddings, n_neighbors %s.', len(idx), source, list(neighbors))
  embeddings = figures.umap_embeddings(latents[idx], neighbors, seed=seed)
  if not embeddings:
    logging.warning('Too few points (%d) for a UMAP of the latent space.', len(idx))
    return {}
  what = f'posterior means of {source}, {len(idx)} poses'
  return {
      f'latent_{source}_action': figures.latent_scatter(
          embeddings, data['action'][idx], skeleton.ACTIONS,
          title=f'Latent space (UMAP of {what}) by action', legend_title='action'),
      f'latent_{source}_camera': figures.latent_scatter(
          embeddings, data['camera_index'][idx], skeleton.CAMERA_IDS,
          title=f'Latent space (UMAP of {what}) by camera', legend_title='camera'),
  }


def run_evaluation(workdir, *, checkpoint='best', split='test', num_hypotheses=0,
                   temperature=1.0, seed=0, umap_neighbors=DEFAULT_UMAP_NEIGHBORS,
                   latent_max_points=5000):
  """Evaluates a workdir's checkpoint on a split and writes everything into workdir/eval.

  num_hypotheses: K posterior samples per pose (0: none); umap_neighbors:
  the UMAP n_neighbors values of the latent figures (empty: no latent
  figures); latent_max_points: poses (a fixed random subset) in the UMAP.
  Returns dict(step, summary, hypotheses {pair: summary}, files).
  """
  restored = checkpoint_lib.restore(workdir, checkpoint)
  config, model = restored.config, restored.model
  stats = checkpoint_lib.load_normalization(workdir, config)
  eval_dir = os.path.join(restored.workdir, EVAL_DIR)
  os.makedirs(eval_dir, exist_ok=True)

  pairs = []
  for pair in config.pairs:
    if pair['target'] != 'pose_3d':
      logging.info('Skipping %s: the tables are for pairs ending in 3D.', train.pair_name(pair))
    elif pair['source'] not in SOURCES:
      raise ValueError(f'Unknown source {pair["source"]!r} of {train.pair_name(pair)}.')
    else:
      pairs.append(pair)
  if not pairs:
    raise ValueError(f'No pair of {workdir} ends in 3D: nothing to evaluate.')

  logging.info('Reading split %r of %s.', split, config.dataset)
  data = load_pose_split(config, stats, split)
  num_poses = len(data['action'])
  mesh = train.make_data_mesh(jax.local_devices())
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  variables = jax.device_put(restored.variables,
                             jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  devices = len(jax.local_devices())
  batch_size = -(-config.eval_batch_size // devices) * devices

  def batches(pair, size):
    if pair['source'] == train.IMAGE:
      return iterate_image_batches(config, stats, split, size, sharding)
    return iterate_batches(data, [pair['source'], 'pose_3d_mm'], size, sharding)

  results, per_pose = {}, {}
  for pair in pairs:
    name = train.pair_name(pair)
    logging.info('Evaluating %s on %d poses of %s.', name, num_poses, split)
    results[name] = evaluate_pair(model, variables, pair, stats, batches(pair, batch_size))
    for key in ('mpjpe', 'p_mpjpe', 'per_joint'):
      per_pose[f'{name}/{key}'] = results[name][key]
  summary = train.summarize_eval(per_pose, data['action'], np.ones(num_poses, bool))
  counts = np.bincount(data['action'], minlength=len(skeleton.ACTIONS))
  header = (f'Evaluation of {restored.workdir}, checkpoint step {restored.step} '
            f'({checkpoint}), split {split!r}: {num_poses} poses of {config.dataset}.')
  files = list(write_action_tables(eval_dir, summary, counts, header))
  files.append(write_per_joint(eval_dir, summary))
  scalars = {f'{split}/{k}': v['mean_over_actions'] for k, v in summary.items()
             if isinstance(v, dict)}
  print(header + '\n\n' + train.format_results(summary), flush=True)

  figs = {}
  for pair in pairs:
    name, tag = train.pair_name(pair), pair_tag(pair)
    figs[f'{tag}_predictions'] = _grid_figure(results[name], data, seed)
    figs[f'{tag}_errors'] = figures.error_distribution(
        results[name]['mpjpe'], data['action'], title=f'{name}: per-pose MPJPE by action')
  if umap_neighbors:
    for source in sorted({p['source'] for p in pairs}):
      name = train.pair_name(next(p for p in pairs if p['source'] == source))
      figs.update(_latent_figures(results[name]['latent'], data, source, umap_neighbors,
                                  latent_max_points, seed))

  hypotheses = {}
  if num_hypotheses > 0:
    if config.deterministic:
      logging.warning('%s was trained without the KL term (deterministic): its posterior '
                      'variances are untrained and the hypotheses mean little.', workdir)
    hyp_batch = hypotheses_lib.batch_size_for(num_hypotheses, batch_size, devices)
    for pair in pairs:
      name, tag = train.pair_name(pair), pair_tag(pair)
      logging.info('Sampling %d hypotheses per pose for %s (temperature %g, batches of %d).',
                   num_hypotheses, name, temperature, hyp_batch)
      per_pose_hyp = hypotheses_lib.evaluate_hypotheses(
          model, variables, pair['source'], stats, batches(pair, hyp_batch),
          num_samples=num_hypotheses,
          temperature=temperature, seed=seed)
      hyp = hypotheses_lib.summarize(per_pose_hyp, data['action'])
      hypotheses[name] = hyp
      hyp_header = (f'{name}: {num_hypotheses} samples per pose from the posterior, '
                    f'temperature {temperature:g}, seed {seed}; checkpoint step {restored.step}, '
                    f'split {split!r}, {num_poses} poses.')
      files.extend(write_hypotheses(eval_dir, tag, hyp, hyp_header))
      figs[f'{tag}_spread'] = figures.joint_spread(
          hyp['spread_xyz'], title=f'{name}: per-joint spread of {num_hypotheses} samples '
          f'(temperature {temperature:g})')
      for key in ('posterior_mean', 'best_of_k', 'mean_of_k'):
        scalars[f'{split}/{name}/hypotheses_{key}'] = hyp['tables'][key]['mean_over_actions']
      logging.info('%s: posterior mean %.1f mm, best of %d %.1f mm, mean of %d %.1f mm.', name,
                   hyp['tables']['posterior_mean']['mean_over_actions'], num_hypotheses,
                   hyp['tables']['best_of_k']['mean_over_actions'], num_hypotheses,
                   hyp['tables']['mean_of_k']['mean_over_actions'])

  images = {}
  for fig_name, fig in figs.items():
    files.append(figures.save_png(fig, os.path.join(eval_dir, f'{fig_name}.png')))
    images[fig_name] = figures.to_array(fig)[None]
  if train.IMAGE in model.decoders:
    generate, labels = train.make_image_generator(
        model, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    first, _ = next(iterate_image_batches(config, stats, split, batch_size, sharding))
    rows = np.asarray(generate(restored.variables, first))
    files.append(os.path.join(eval_dir, 'images.png'))
    train.save_image_grid(files[-1], rows, labels)
    images['images'] = train.image_grid(rows)[None]
  writer = metric_writers.create_default_writer(eval_dir, asynchronous=False)
  writer.write_scalars(restored.step, scalars)
  writer.write_images(restored.step, images)
  writer.flush()
  writer.close()
  logging.info('Wrote %d files and TensorBoard summaries to %s.', len(files), eval_dir)
  return {'step': restored.step, 'summary': summary, 'hypotheses': hypotheses, 'files': files}
