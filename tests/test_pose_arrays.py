"""The pose side file: written with the build, equal to the records, never used when stale."""

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_h36m.builders  # pylint: disable=unused-import
from tfds_h36m import pose_arrays


@pytest.fixture
def builder(tiny_data_dir, tmp_path):
  """A private copy of the tiny build (tests here change its files)."""
  shutil.copytree(tiny_data_dir, tmp_path / 'tfds', copy_function=shutil.copy2)
  return tfds.builder('h36m_synthetic/tiny', data_dir=str(tmp_path / 'tfds'))


def _records(builder, split):
  """Every example of a split as TFDS's own decoder reads it."""
  source = builder.as_data_source(split=split, decoders={'image': tfds.decode.SkipDecoding()})
  return [source[i] for i in range(len(source))]


def test_the_build_writes_a_side_file_equal_to_the_records(builder):
  pose_arrays.check(builder)  # written by download_and_prepare
  for split in ('train', 'test'):
    arrays = pose_arrays.load(builder, split)
    examples = _records(builder, split)
    assert len(arrays['pose_3d']) == len(examples) == builder.info.splits[split].num_examples
    for key in ('pose_2d', 'pose_3d', 'root_3d', 'action', 'subaction', 'frame'):
      np.testing.assert_array_equal(arrays[key], np.stack([e[key] for e in examples]), key)
    np.testing.assert_array_equal(arrays['camera_index'], [
        ['54138969', '55011271', '58860488', '60457274'].index(e['camera_id'].decode())
        for e in examples])


def test_a_part_of_a_split_is_a_slice_of_it(builder):
  whole = pose_arrays.load(builder, 'train')
  part = tfds.split_for_jax_process('train', process_index=1, process_count=3)
  assert pose_arrays.example_range(builder, part) == ('train', 160, 320)
  np.testing.assert_array_equal(pose_arrays.load(builder, part)['frame'], whole['frame'][160:320])
  assert pose_arrays.example_range(builder, 'test[:25%]') == ('test', 0, 60)


def _train_file(builder):
  return str(builder.info.splits['train'].filepaths[0])


def test_records_of_another_size_make_the_side_file_stale_and_it_is_rewritten(builder):
  train, test = _train_file(builder), str(builder.info.splits['test'].filepaths[0])
  before = pose_arrays.load(builder, 'train')
  with open(train, 'ab') as f:
    f.write(b'\0')
  with pytest.raises(pose_arrays.StaleSideFile, match='train record files differ'):
    pose_arrays.check(builder)
  os.truncate(train, os.path.getsize(train) - 1)  # the records as built, but a new mtime
  os.utime(test, ns=(0, 0))
  pose_arrays.check(builder)  # same bytes: current, and the manifest takes the new times
  stored = pose_arrays._read_manifest(pose_arrays.side_dir(builder))  # pylint: disable=protected-access
  assert stored['test']['files'] == pose_arrays.fingerprint(builder, with_content=False)[
      'test']['files']
  shutil.rmtree(pose_arrays.side_dir(builder))  # a build of an earlier version: none yet
  with pytest.raises(pose_arrays.StaleSideFile, match='no readable'):
    pose_arrays.check(builder)
  after = pose_arrays.load(builder, 'train')  # writes it from the records
  pose_arrays.check(builder)
  np.testing.assert_array_equal(after['pose_3d'], before['pose_3d'])


def test_same_size_records_with_other_bytes_are_detected(builder):
  path = _train_file(builder)
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))
  with pytest.raises(pose_arrays.StaleSideFile, match='train record files were rewritten'):
    pose_arrays.check(builder)


def test_a_tfrecord_build_of_an_earlier_version_reads_the_same(builder, tfrecord_data_dir,
                                                               tmp_path):
  shutil.copytree(tfrecord_data_dir, tmp_path / 'legacy')
  legacy = tfds.builder('h36m_synthetic/tiny', data_dir=str(tmp_path / 'legacy'))
  assert legacy.info.file_format.value == 'tfrecord'
  shutil.rmtree(pose_arrays.side_dir(legacy))  # built before side files: written on first use
  for split in ('train', 'test'):
    ours, theirs = pose_arrays.load(legacy, split), pose_arrays.load(builder, split)
    for key in pose_arrays.FIELDS:
      np.testing.assert_array_equal(ours[key], theirs[key], key)


def test_an_altered_or_truncated_side_file_is_detected_and_rebuilt_from_the_records(builder):
  before = pose_arrays.load(builder, 'train')
  path = os.path.join(pose_arrays.side_dir(builder), 'train', 'pose_3d.npy')
  with open(path, 'r+b') as f:  # an edit in place: same size, one value changed
    f.seek(-4, os.SEEK_END)
    f.write(np.float32(1e6).tobytes())
  with pytest.raises(pose_arrays.DamagedSideFile, match='train/pose_3d.npy was altered'):
    pose_arrays.check(builder)
  np.testing.assert_array_equal(pose_arrays.load(builder, 'train')['pose_3d'],
                                before['pose_3d'])
  os.truncate(os.path.join(pose_arrays.side_dir(builder), 'test', 'pose_2d.npy'), 100)
  with pytest.raises(pose_arrays.DamagedSideFile, match='test/pose_2d.npy'):
    pose_arrays.check(builder)
  assert len(pose_arrays.load(builder, 'test')['pose_2d']) == builder.info.splits[
      'test'].num_examples
  pose_arrays.check(builder)
