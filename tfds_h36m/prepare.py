"""Builds a dataset if it is not built yet, then describes what was built.

  python -m tfds_h36m.prepare --dataset=h36m_synthetic/default --data_dir=data
  python -m tfds_h36m.prepare --dataset=h36m/poses --manual_dir=/path/to/h36m
  python -m tfds_h36m.prepare --dataset=h36m --manual_dir=/path/to/h36m \
      --config='{"name": "poses_cpn", "keypoints_2d": "cpn_ft_h36m_dbb"}'
  python -m tfds_h36m.prepare --dataset=mpi_inf_3dhp/test --manual_dir=/path/to/3dhp
  python -m tfds_h36m.prepare --dataset=pw3d --manual_dir=/path/to/3dpw
  python -m tfds_h36m.prepare --dataset=mocap/cmu --manual_dir=/path/to/cmu_bvh

This is `tfds.builder(...).download_and_prepare(...)`; `tfds build` does the same
where TFDS's command line works (its 4.9 releases import apache-beam at start).
"""

import json

import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from hpe_jax import cli
from hpe_jax.inference import bvh
from tfds_h36m import builders
from tfds_h36m import records
from tfds_h36m import safe_pickle

_DATASET = flags.DEFINE_string('dataset', 'h36m_synthetic/default', 'TFDS name/config.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory.')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Your copy of a licence-gated dataset (h36m, mpi_inf_3dhp, pw3d), or '
    'a folder of BVH files (mocap).')
_CONFIG = flags.DEFINE_string(
    'config', None, 'A builder config as JSON (fields of H36mConfig / SyntheticConfig, with a '
    'new "name"); --dataset then names the builder alone, e.g. h36m.')


def describe(builder):
  """A few lines saying what a built dataset holds."""
  info = builder.info
  lines = [f'{info.full_name} in {builder.data_dir}']
  for name, split in sorted(info.splits.items()):
    lines.append(f'  {name}: {split.num_examples} examples in {split.num_shards} shards')
  stats = info.metadata.get('statistics', {})
  if stats:
    std_3d = np.asarray(stats['pose_3d_std'])
    lines.append(f'  normalisation statistics over {stats["num_examples"]} training poses: '
                 f'3D std {std_3d.min():.0f}-{std_3d.max():.0f} mm, '
                 f'2D mean {np.mean(stats["pose_2d_mean"], axis=0).round(0).tolist()} px')
  for split, summary in sorted(info.metadata.get('build_summary', {}).items()):
    lines.append(f'  {split}: ' + _split_summary(summary))
  if 'cameras' in info.metadata:  # the motion capture builder's virtual cameras
    lines.extend('  ' + line for line in info.metadata['cameras'].splitlines())
  if 'image' in info.features:
    lines.append(f'  images: {info.features["image"].shape} JPEG crops')
    if info.file_format.value != 'array_record':
      lines.append(f'  stored as {info.file_format.value} by an earlier version: image training '
                   f'reads ArrayRecord; remove {builder.data_dir} and run this command again')
  grid = os.path.join(builder.data_dir, 'sample_grid.png')
  if os.path.exists(grid):
    lines.append(f'  sample crops: {grid}')
  if info.full_name.startswith('h36m_synthetic'):
    lines.append('  (synthetic stand-in: numbers measured on it are not Human3.6M numbers)')
  return '\n'.join(lines)


def _split_summary(summary):
  """One line of a split's build summary (the motion capture builder's adds frames,
  subjects, cameras, skipped files and its time)."""
  skipped = summary.get('skipped_sequences') or []
  videos = summary.get('skipped_videos') or []
  files = summary.get('skipped_files') or []
  line = f'{summary["sequences"]} sequences'
  if 'frames_50fps' in summary:
    line += (f' ({summary["frames_50fps"]} frames at 50 fps) of {len(summary["subjects"])} '
             f'subjects ({", ".join(summary["subjects"])}), {summary["cameras"]} virtual '
             f'cameras, built in {summary["seconds"]:.0f} s')
  return (line + (f', skipped sequences {skipped}' if skipped else '')
          + (f', {len(videos)} unreadable videos skipped' if videos else '')
          + (f', {len(files)} files skipped (first: {files[0]})' if files else ''))


def _builder():
  """The builder of --dataset (with --config, of that config)."""
  if not _CONFIG.value:
    return builders.load(_DATASET.value, _DATA_DIR.value)
  if '/' in _DATASET.value:
    raise app.UsageError('With --config, --dataset names the builder alone (e.g. h36m).')
  builder_cls = tfds.builder_cls(_DATASET.value)
  try:
    config = builder_cls.builder_config_cls(**json.loads(_CONFIG.value))
  except (TypeError, ValueError) as e:
    raise app.UsageError(f'--config is not a {builder_cls.builder_config_cls.__name__} as '
                         f'JSON: {e}') from None
  return builder_cls(config=config, data_dir=_DATA_DIR.value)


def main(argv):
  del argv
  cli.stop_cleanly_on_sigterm()
  usage = (app.UsageError, tfds.core.registered.DatasetNotFoundError)
  data = (safe_pickle.DataFormatError, bvh.BvhError, builders.ForeignCode,
          records.DamagedRecords)
  with cli.errors_as_lines(usage=usage, data=data):
    builder = _builder()
    if builder.is_prepared():
      logging.info('Reusing the built dataset in %s', builder.data_dir)
    else:
      tfds.disable_progress_bar()  # the builders log their own progress (examples/s, ETA)
      config = tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
      builder.download_and_prepare(download_config=config)
    print(describe(builder), flush=True)


if __name__ == '__main__':
  app.run(main)
