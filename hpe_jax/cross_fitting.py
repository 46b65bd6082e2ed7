"""Cross-fitting over the training subjects: a lifter's errors on people it has not seen,
for the spread of the 2D-consistent hypotheses (`hpe_jax.ray_spread`).

`fit` trains the workdir's config once per fold of the training subjects, each time
without that fold (WORKDIR/spread_folds/fold_<i>, resumable like any workdir), takes
those lifters' errors on the subjects they did not see and the workdir's own errors on
its training poses, moved onto the camera rays and in the rays' frames, and writes their
.632 mixture (`ray_spread.residual_table`) to WORKDIR/ray_spread.npz. The command line is
`hpe_jax.fit_spread`.
"""

import copy
import os

from absl import logging
import jax
import numpy as np

from hpe_jax import config_lib
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import ray_spread
from hpe_jax import sampling
from hpe_jax.evaluation import report
from hpe_jax.inference import restore

FOLDS_DIR = 'spread_folds'


def subject_folds(subject_numbers, folds, dataset):
  """The training subjects (numbers, from the training poses' `subject_numbers`) split into
  `folds` groups (0: one per subject)."""
  subjects = np.unique(subject_numbers)
  if len(subjects) < 2:
    raise config_lib.ConfigError(f'{dataset} has {len(subjects)} training subject: '
                                 'cross-fitting needs two or more.')
  folds = folds or len(subjects)
  if folds > len(subjects):
    raise config_lib.ConfigError(f'{folds} folds of {len(subjects)} training subjects.')
  return [[int(s) for s in fold] for fold in np.array_split(subjects, folds)]


def make_ray_errors(model, stats, data, input_space='pixels'):
  """fn(variables, subjects, max_rows, seed=0) -> the ray-frame errors (N, 48) mm
  (`ray_spread.frame_errors`) of `model` with `variables` on the training poses of
  `subjects` in `data` (`report.EvalData` of the training split): all, or a random subset
  of max_rows drawn with seed. Every fold's lifter has the workdir's model, so one
  compiled function serves them all. A perspective crop's answers and labels are turned
  back into the camera's frame first (`normalization.camera_frame`)."""
  @jax.jit
  def errors(variables, batch):
    x = batch.get('pose_2d_window', batch[modalities.POSE_2D])
    to_camera = lambda pose: normalization.camera_frame(pose, batch.get('pose_2d_plane'),
                                                        input_space)
    single = sampling.single_pose_mm(model, variables, x, source=modalities.POSE_2D,
                                     stats=stats)
    camera = tuple(batch[k] for k in ray_spread.INTRINSICS)
    snapped, frames = ray_spread.snap(to_camera(single), batch['pose_2d_px'], camera)
    return ray_spread.frame_errors(snapped, frames, to_camera(batch['pose_3d_mm']))

  def ray_errors(variables, subjects, max_rows, seed=0):
    rows = np.flatnonzero(np.isin(data.pose_arrays()['subject_number'], subjects))
    if len(rows) > max_rows:
      rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    return np.concatenate([np.asarray(errors(variables, batch))[np.asarray(batch['valid'], bool)]
                           for batch in data.hypothesis_batches(data.batch_size, rows)])

  return ray_errors


def _rms_along_rays(errors):
  """RMS (mm) of ray-frame errors (N, 48) along the rays."""
  return float(np.sqrt(np.mean(errors[:, 2::3]**2)))


def fit(workdir, folds=0, max_rows=20_000):
  """Trains the folds, writes WORKDIR/ray_spread.npz (at most `max_rows` errors, each
  fold's and the training poses' from at most as many poses); returns its path."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top  # TF is slow to import
  config = restore.load_config(workdir)
  if modalities.POSE_2D not in {p.source for p in modalities.pairs_to_3d(config)}:
    raise config_lib.ConfigError(f'{workdir} has no 2D -> 3D pair to fit a spread for.')
  if modalities.uses_images(config):
    raise config_lib.ConfigError(f'{workdir} trains on images: fit the spread of a pose '
                                 'config (cross-fitting leaves subjects out of pose data).')
  restored = restore.restore(workdir, 'last')
  stats = restore.load_stats(workdir, config)  # the dataset's, as every fold's
  data = report.EvalData(config, stats, 'train')
  ray_errors = make_ray_errors(restored.model, stats, data, config.input_space)
  errors, record = [], {'folds': subject_folds(data.pose_arrays()['subject_number'], folds,
                                               config.dataset)}
  for i, subjects in enumerate(record['folds']):
    fold_workdir = os.path.join(os.path.abspath(workdir), FOLDS_DIR, f'fold_{i}')
    logging.info('Fold %d of %d: training without subjects %s in %s.', i + 1,
                 len(record['folds']), subjects, fold_workdir)
    fold_config = copy.deepcopy(config)
    fold_config.train_exclude_subjects = tuple(subjects)
    train.train_and_evaluate(fold_config, fold_workdir)
    errors.append(ray_errors(restore.restore(fold_workdir, 'last').variables, subjects,
                             max_rows))
    logging.info('Fold %d: %d held-out poses, RMS error along the rays %.1f mm.', i + 1,
                 len(errors[-1]), _rms_along_rays(errors[-1]))
  held_out = np.concatenate(errors)
  in_sample = ray_errors(restored.variables, sum(record['folds'], []), max_rows)
  table = ray_spread.residual_table(held_out, in_sample, max_rows)
  record.update(held_out_poses=len(held_out), in_sample_poses=len(in_sample), rows=len(table),
                held_out_rms_along_rays_mm=_rms_along_rays(held_out),
                in_sample_rms_along_rays_mm=_rms_along_rays(in_sample))
  path = ray_spread.save(workdir, table, record)
  logging.info('Wrote %s: %d rows (errors along the rays: %.1f mm RMS on unseen people, %.1f '
               'mm on the training poses).', path, len(table), _rms_along_rays(held_out),
               _rms_along_rays(in_sample))
  return path
