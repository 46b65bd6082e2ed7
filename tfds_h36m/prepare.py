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

import dataclasses
import inspect
import json
import math
import os
import re

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from hpe_jax import cli
from hpe_jax import logs
from hpe_jax.inference import bvh
from tfds_h36m import builders
from tfds_h36m import records
from tfds_h36m import safe_pickle
from tfds_h36m.mocap import mocap_dataset_builder
from tfds_h36m.mocap import rigs

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


NAMES = builders.BUILDER_NAMES + builders.WILD_BUILDER_NAMES


def _builder_cls(name, data_dir=None, new_config=False):
  """The builder class of --dataset's builder name; UsageError naming ours for another, or
  a config that is neither registered, built in `data_dir` nor `new_config` (--config)."""
  builder_name = name.split('/')[0].split(':')[0]
  if builder_name not in NAMES:
    raise app.UsageError(f'Unknown dataset {name!r}: the builders are {", ".join(NAMES)} '
                         '(e.g. --dataset=h36m_synthetic/default).')
  builder_cls = tfds.builder_cls(builder_name)
  config_name = name.partition('/')[2].split(':')[0]
  known = [c.name for c in builder_cls.BUILDER_CONFIGS]
  if config_name and config_name not in known and not new_config and not os.path.isdir(
      os.path.join(os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR),
                   builder_name, config_name)):
    raise app.UsageError(f'Unknown config {config_name!r} of {builder_name}: use one of '
                         f'{", ".join(known)}, or --config to describe a new one.')
  return builder_cls


def _builder():
  """The builder of --dataset (with --config, of that config)."""
  builder_cls = _builder_cls(_DATASET.value, _DATA_DIR.value, bool(_CONFIG.value))
  if not _CONFIG.value:
    return builders.load(_DATASET.value, _DATA_DIR.value)
  if '/' in _DATASET.value:
    raise app.UsageError('With --config, --dataset names the builder alone (e.g. h36m).')
  config_cls = builder_cls.builder_config_cls
  try:
    config = config_cls(**_typed_fields(config_cls, json.loads(_CONFIG.value)))
  except (TypeError, ValueError) as e:
    raise app.UsageError(f'--config is not a {config_cls.__name__} as JSON: {e}') from None
  if isinstance(config, builders.MocapConfig):
    _check_mocap(config)
  return builder_cls(config=config, data_dir=_DATA_DIR.value)


def _check_mocap(config):
  """UsageError for a motion capture --config whose subjects rule or rig is not one this
  reads (a rig file is read now: what is wrong with it is one line)."""
  if config.subjects not in mocap_dataset_builder.SUBJECT_RULES:
    raise app.UsageError(f'--config: unknown subjects rule {config.subjects!r}; use one of '
                         f'{", ".join(mocap_dataset_builder.SUBJECT_RULES)}.')
  if config.rig.endswith('.json'):
    try:
      rigs.load_rig(config.rig)
    except ValueError as e:
      raise app.UsageError(f'--config: rig {e}') from None
  elif config.rig and config.rig not in rigs.RIGS:
    raise app.UsageError(f'--config: unknown rig {config.rig!r}; use one of '
                         f'{", ".join(rigs.RIGS)}, a mapping file (.json) or "" (recognised).')


_KINDS = {str: (str,), bool: (bool,), int: (int,), float: (int, float), tuple: (list,)}
_POSITIVE = ('frame_stride', 'frames_per_sequence', 'image_size', 'subactions',
             'cameras_per_sequence')  # sizes and counts; every other number is at least 0


def _typed_fields(config_cls, values):
  """--config's JSON object, each field of the builder's own (str, int, float, bool, tuple)
  of its type (a list for a tuple, made a tuple), numbers finite and not negative (sizes
  positive), or a ValueError naming the field."""
  if not isinstance(values, dict):
    raise ValueError(f'expected a JSON object of fields, got {type(values).__name__}')
  if not isinstance(values.get('name'), str) or not values['name']:
    raise ValueError('"name" must be a new config name (a string)')
  fields = {f.name: f.type for f in dataclasses.fields(config_cls)}
  out = dict(values)
  for key, value in values.items():
    kind = fields.get(key)
    if kind not in _KINDS:
      continue
    if not isinstance(value, _KINDS[kind]) or (kind is not bool and isinstance(value, bool)):
      raise ValueError(f'field {key!r} must be {kind.__name__}, got {value!r}')
    if kind in (int, float) and not (math.isfinite(value) and value >= (key in _POSITIVE)):
      bound = 'positive' if key in _POSITIVE else 'at least 0'
      raise ValueError(f'field {key!r} must be a finite number, {bound}, got {value!r}')
    if kind is tuple:
      out[key] = tuple(value)
  if 'train_subjects' in out and not out['train_subjects']:
    raise ValueError("field 'train_subjects' names no subject")
  return out


def _check_manual_dir(builder, manual_dir=None, data_dir=None):
  """UsageError, before anything is written, when a builder that reads the user's files
  (`MANUAL_DOWNLOAD_INSTRUCTIONS`) has no folder of them: `manual_dir` (--manual_dir), else
  TFDS's <data_dir>/downloads/manual."""
  instructions = getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
  if not instructions:
    return
  manual = manual_dir or os.path.join(
      os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR), 'downloads', 'manual')
  first = re.split(r'[:.](\s|$)', ' '.join(instructions.split()), maxsplit=1)[0]
  what = (f'{builder.name} is built from your own copy of its files ({first}; the layouts: '
          f'MANUAL_DOWNLOAD_INSTRUCTIONS in {inspect.getsourcefile(type(builder))})')
  if not manual_dir and not os.path.isdir(manual):
    raise app.UsageError(f'{what}: give --manual_dir=DIR.')
  if not os.path.isdir(manual):
    raise app.UsageError(f'--manual_dir {manual} is not a folder; {what}.')
  if not os.listdir(manual):
    raise app.UsageError(f'--manual_dir {manual} is empty; {what}.')


def main(argv):
  cli.stop_cleanly_on_sigterm()
  logs.quiet_library_logs()  # TFDS's notes on the folders it writes ask nothing of the user
  usage = (app.UsageError, tfds.core.registered.DatasetNotFoundError)
  data = (safe_pickle.DataFormatError, bvh.BvhError, builders.ForeignCode,
          records.DamagedRecords)
  with cli.errors_as_lines(usage=usage, data=data):
    cli.no_positional_arguments(argv)
    builder = _builder()
    if builder.is_prepared():
      logging.info('Reusing the built dataset in %s', builder.data_dir)
    else:
      _check_manual_dir(builder, _MANUAL_DIR.value, _DATA_DIR.value)
      tfds.disable_progress_bar()  # the builders log their own progress (examples/s, ETA)
      config = tfds.download.DownloadConfig(manual_dir=_MANUAL_DIR.value)
      builder.download_and_prepare(download_config=config)
    print(describe(builder), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
