"""Builds a dataset if it is not built yet, then describes what was built.

  python -m tfds_h36m.prepare --dataset=h36m_synthetic/default --data_dir=data
  python -m tfds_h36m.prepare --dataset=h36m/poses --manual_dir=/path/to/h36m
"""

import os

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow_datasets as tfds

import tfds_h36m.builders  # pylint: disable=unused-import  # registers the builders

_DATASET = flags.DEFINE_string('dataset', 'h36m_synthetic/default', 'TFDS name/config.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Your Human3.6M files (h36m only).')


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
    skipped = summary.get('skipped_sequences') or []
    videos = summary.get('skipped_videos') or []
    lines.append(f'  {split}: {summary["sequences"]} sequences'
                 + (f', skipped sequences {skipped}' if skipped else '')
                 + (f', {len(videos)} unreadable videos skipped' if videos else ''))
  if 'image' in info.features:
    lines.append(f'  images: {info.features["image"].shape} JPEG crops')
  grid = os.path.join(builder.data_dir, 'sample_grid.png')
  if os.path.exists(grid):
    lines.append(f'  sample crops: {grid}')
  if info.full_name.startswith('h36m_synthetic'):
    lines.append('  (synthetic stand-in: numbers measured on it are not Human3.6M numbers)')
  return '\n'.join(lines)


def main(argv):
  del argv
  builder = tfds.builder(_DATASET.value, data_dir=_DATA_DIR.value)
  if builder.is_prepared():
    logging.info('Reusing the built dataset in %s', builder.data_dir)
  else:
    config = tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
    builder.download_and_prepare(download_config=config)
  print(describe(builder), flush=True)


if __name__ == '__main__':
  app.run(main)
