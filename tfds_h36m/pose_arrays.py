"""Every split's poses in one columnar side file beside the records, loaded in seconds.

Pose training puts whole splits on the devices. Reading them out of 1.7M
`tf.Example` records takes about 100 s on 2 cores; reading NumPy arrays takes
about a second. So a build also writes `<dataset dir>/pose_arrays/`: per split,
one `.npy` file per field (`FIELDS`), rows in the records' order, and a
`manifest.json` holding the fingerprint of the records they were read from (the
name, size and mtime of every record file, and a CRC32 of their contents) and the
CRC32 of every array file as written.

The records stay the one source of truth: a side file whose fingerprint does not
match them is stale and never used, and so is one whose arrays were altered or
cut short since they were written (checked at every load, about 1 s per GB);
`ensure` rewrites it from the records. Files
copied elsewhere (new mtimes, same contents) pass after one content check, and
the manifest is refreshed. Older builds get their side file on first use.
"""

import json
import os
import shutil
import time
import zlib

from absl import logging
import numpy as np

from tfds_h36m import records

DIRNAME = 'pose_arrays'
MANIFEST = 'manifest.json'
# 2: subject_number; 3: each row's camera intrinsics; 4: arrays' CRC32; 5: camera poses
FORMAT_VERSION = 5
FIELDS = {  # name: (per-row shape, dtype)
    'pose_2d': ((17, 2), np.float32), 'pose_3d': ((17, 3), np.float32),
    'root_3d': ((3,), np.float32), 'action': ((), np.int32), 'subaction': ((), np.int32),
    'frame': ((), np.int32), 'camera_index': ((), np.int32), 'subject_number': ((), np.int32),
    **{key: (shape, np.float32) for key, shape in records.INTRINSICS.items()},
    **{key: (shape, np.float32) for key, shape in records.EXTRINSICS.items()}}
_CHUNK = 1 << 24  # bytes read at a time for the content checksum


class StaleSideFile(ValueError):
  """The side file was not read from the records that are there now."""


class SplitError(ValueError):
  """A split spec that selects no examples, or no contiguous range of them."""


class DamagedSideFile(StaleSideFile):
  """The side file's arrays changed since they were written (edited, cut short)."""


def side_dir(builder):
  return os.path.join(str(builder.data_dir), DIRNAME)


def _record_files(builder):
  """{split: [record file paths in the records' order]}."""
  return {name: [str(p) for p in split.filepaths] for name, split in builder.info.splits.items()}


def _stat(paths):
  return [[os.path.basename(p), os.path.getsize(p), os.stat(p).st_mtime_ns] for p in paths]


def _content_crc(paths):
  crc = 0
  for path in paths:
    with open(path, 'rb') as f:
      while chunk := f.read(_CHUNK):
        crc = zlib.crc32(chunk, crc)
  return crc


def fingerprint(builder, *, with_content=True):
  """What the side file must match: per split, the record files' names, sizes and mtimes,
  the example count, and (with_content) the CRC32 of the files' bytes."""
  out = {'format': FORMAT_VERSION, 'file_format': str(builder.info.file_format.value)}
  for split, paths in sorted(_record_files(builder).items()):
    out[split] = {'num_examples': builder.info.splits[split].num_examples,
                  'files': _stat(paths)}
    if with_content:
      out[split]['crc32'] = _content_crc(paths)
  return out


def _read_manifest(directory):
  try:
    with open(os.path.join(directory, MANIFEST)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def check(builder):
  """Raises StaleSideFile (one line, saying why) unless the side file matches the records;
  refreshes the stored mtimes when only they differ (files copied with new times)."""
  if not builder.is_prepared():
    raise ValueError(f'{builder.info.full_name} is not built in {builder.data_dir}.')
  directory = side_dir(builder)
  manifest = _read_manifest(directory)
  if manifest is None:
    raise StaleSideFile(f'no readable {DIRNAME}/{MANIFEST} in {builder.data_dir}')
  current = fingerprint(builder, with_content=False)
  for key, value in current.items():
    stored = manifest.get(key)
    if key in ('format', 'file_format') or not isinstance(stored, dict):
      if stored != value:
        raise StaleSideFile(f'{key} is {stored!r} in the side file, {value!r} in the records')
      continue
    names_sizes = [f[:2] for f in value['files']]
    if [f[:2] for f in stored['files']] != names_sizes or stored['num_examples'] != value[
        'num_examples']:
      raise StaleSideFile(f'the {key} record files differ in names, sizes or example count')
  _check_arrays(directory, manifest, _record_files(builder))
  if all(manifest[s]['files'] == current[s]['files'] for s in _record_files(builder)):
    return
  content = fingerprint(builder)  # same sizes, new mtimes: compare the bytes
  for split in _record_files(builder):
    if content[split]['crc32'] != manifest[split]['crc32']:
      raise StaleSideFile(f'the {split} record files were rewritten since the side file')
    content[split]['arrays'] = manifest[split]['arrays']
  _write_json(os.path.join(directory, MANIFEST), content)
  logging.info('The record files of %s have new times but the same bytes: %s is current.',
               builder.data_dir, DIRNAME)


def _array_crcs(directory):
  """{field: CRC32 of `directory/<field>.npy`} for every field of FIELDS."""
  return {key: _content_crc([os.path.join(directory, f'{key}.npy')]) for key in FIELDS}


def _check_arrays(directory, manifest, splits):
  """Raises StaleSideFile unless every array file has the CRC32 it was written with."""
  for split in splits:
    stored = manifest[split].get('arrays')
    try:
      current = _array_crcs(os.path.join(directory, split))
    except OSError as e:
      raise DamagedSideFile(f'the {split} arrays cannot be read ({e.strerror})') from None
    changed = sorted(k for k in FIELDS if not stored or stored.get(k) != current[k])
    if changed:
      raise DamagedSideFile(f'{split}/{changed[0]}.npy was altered or damaged since it was '
                          'written')


def _write_json(path, value):
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(value, f)
  os.replace(tmp, path)


def _read_split(builder, split):
  """The FIELDS of every example of `split` in the records' order (one pass, no TF for
  ArrayRecord builds)."""
  n = builder.info.splits[split].num_examples
  columns = {k: np.empty((n,) + shape, dtype) for k, (shape, dtype) in FIELDS.items()}
  for i, example in enumerate(_iter_records(builder, split)):
    for key, column in columns.items():
      column[i] = example[key]
  if i + 1 != n:  # pylint: disable=undefined-loop-variable
    raise ValueError(f'{builder.info.full_name} {split}: read {i + 1} examples, the dataset '
                     f'info says {n}.')
  return columns


def _iter_records(builder, split):
  """Serialised examples of a split parsed with `records.parse_pose`, in file order."""
  paths = _record_files(builder)[split]
  if builder.info.file_format.value == 'array_record':
    try:
      for serialized in records.serialized_examples(paths):
        yield records.parse_pose(serialized)
    except records.DamagedRecords as e:
      name = builder.info.full_name.rsplit('/', 1)[0]
      root = os.path.abspath(os.path.join(str(builder.data_dir), *[os.pardir] * 3))
      raise records.DamagedRecords(
          f'{e}; rebuild {name}: delete {builder.data_dir} and run python -m tfds_h36m.prepare '
          f'--dataset={name} --data_dir={root} (with --manual_dir for real data)') from None
  else:  # TFRecord builds of earlier versions
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for serialized in tf.data.TFRecordDataset(paths).as_numpy_iterator():
      yield records.parse_pose(serialized)


def write(builder):
  """Reads every split's poses from the records and writes the side file atomically."""
  start = time.time()
  directory = side_dir(builder)
  tmp = f'{directory}.tmp-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    manifest = fingerprint(builder)
    for split in builder.info.splits:
      os.makedirs(os.path.join(tmp, split))
      for key, column in _read_split(builder, split).items():
        np.save(os.path.join(tmp, split, f'{key}.npy'), column)
      manifest[split]['arrays'] = _array_crcs(os.path.join(tmp, split))
    _write_json(os.path.join(tmp, MANIFEST), manifest)
    old = f'{directory}.old-{os.getpid()}'
    if os.path.isdir(directory):
      os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  logging.info('Wrote the pose side file %s (%d examples) in %.0f s.', directory,
               sum(s.num_examples for s in builder.info.splits.values()), time.time() - start)


def ensure(builder):
  """Checks the side file, writing it from the records when missing or stale; returns
  False (with a warning) when it is neither current nor writable."""
  try:
    check(builder)
    return True
  except StaleSideFile as e:
    reason = e
  log = logging.warning if isinstance(reason, DamagedSideFile) else logging.info
  log('Writing the pose side file of %s from its records (%s); once per build.',
               builder.data_dir, reason)
  try:
    write(builder)
  except OSError as e:
    logging.warning('Cannot write the pose side file in %s (%s): reading the records, which '
                    'is slower.', builder.data_dir, e)
    return False
  return True


def example_range(builder, split):
  """(split name, first, stop) of the examples a split spec selects ('train',
  'test[:50%]', a `tfds.split_for_jax_process` part), in the records' order; raises
  ValueError unless they are contiguous."""
  offsets = {}  # record file name: (split, index of its first example)
  for name, whole in builder.info.splits.items():
    starts = np.concatenate([[0], np.cumsum(whole.shard_lengths)[:-1]]).tolist()
    offsets.update({os.path.basename(str(p)): (name, s) for p, s in zip(whole.filepaths, starts)})
  name = first = stop = None
  for instruction in builder.info.splits[split].file_instructions:
    name, offset = offsets[os.path.basename(str(instruction.filename))]
    begin = offset + instruction.skip
    if stop is not None and begin != stop:
      raise SplitError(f'{split} is not one contiguous range of the {name} split.')
    first = begin if first is None else first
    stop = begin + instruction.take
  if name is None:
    raise SplitError(f'{split} selects no examples of {builder.info.full_name}.')
  return name, first, stop


def load(builder, split, fields=tuple(FIELDS)):
  """{field: array} of the examples `split` selects, rows in the records' order: from the
  side file (written first if missing or stale), or from the records where it cannot be
  written."""
  name, first, stop = example_range(builder, split)
  if not ensure(builder):
    columns = _read_split(builder, name)
    return {k: columns[k][first:stop] for k in fields}
  directory = os.path.join(side_dir(builder), name)
  return {k: np.array(np.load(os.path.join(directory, f'{k}.npy'), mmap_mode='r')[first:stop])
          for k in fields}


class BuildsPoseArrays:
  """Builder mixin: new builds are ArrayRecord files (random access, what grain reads) and
  get their pose side file; a prepared dataset keeps its format and gets a side file if
  it has none."""

  FILE_FORMAT = 'array_record'

  def download_and_prepare(self, *, file_format=None, **kwargs):
    super().download_and_prepare(file_format=file_format or self.FILE_FORMAT, **kwargs)
    ensure(self)
