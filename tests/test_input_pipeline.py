"""Reading the built datasets: pose arrays, stored statistics, the image batches."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from hpe_jax import augment
from hpe_jax import input_pipeline
import tfds_h36m.builders
from tfds_h36m import skeleton


@pytest.fixture(scope='module')
def builder(tiny_data_dir):
  return input_pipeline.get_builder('h36m_synthetic/tiny', tiny_data_dir)


def test_pose_arrays_shapes_units_and_labels(builder):
  train = input_pipeline.load_pose_arrays(builder, 'train')
  assert train['pose_3d'].shape == (480, 17, 3) and train['pose_2d'].shape == (480, 17, 2)
  np.testing.assert_array_equal(train['pose_3d'][:, 0], 0.0)  # root-relative
  # Millimetres: a body is hundreds of mm from its pelvis, metres from the camera.
  assert 300 < np.abs(train['pose_3d']).max() < 1500
  assert np.all(train['root_3d'][:, 2] > 1000)
  assert set(np.unique(train['camera_index'])) == {0, 1, 2, 3}
  assert set(np.unique(train['action'])) == set(range(len(skeleton.ACTIONS)))
  assert train['action'].dtype == np.int32


def test_stored_statistics_equal_numpy_over_the_train_split(builder):
  stats = input_pipeline.normalization_stats(builder)
  train = input_pipeline.load_pose_arrays(builder, 'train')
  for key in ('pose_3d', 'pose_2d'):
    values = train[key][:, 1:].astype(np.float64)
    np.testing.assert_allclose(stats[f'{key}_mean'], values.mean(axis=0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(stats[f'{key}_std'], values.std(axis=0), rtol=1e-4, atol=1e-3)
  assert builder.info.metadata['statistics']['num_examples'] == 480


def test_each_process_reads_its_own_part(builder):
  whole = input_pipeline.load_pose_arrays(builder, 'test')
  parts = [input_pipeline.load_pose_arrays(builder, 'test', process_index=i, process_count=2)
           for i in range(2)]
  assert [len(p['frame']) for p in parts] == [120, 120]
  np.testing.assert_array_equal(np.concatenate([p['pose_3d'] for p in parts]), whole['pose_3d'])


def _epoch(builder, split='train', **kwargs):
  kwargs = {'batch_size': 48, 'image_size': 16, 'train': True, **kwargs}
  stats = input_pipeline.normalization_stats(builder)
  return list(tfds.as_numpy(input_pipeline.image_batches(builder, split, stats=stats, **kwargs)))


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_image_batches_shapes_dtypes_and_consistent_poses(builder):
  batches = _epoch(builder, batch_size=64, augment_config=augment.default_config())
  assert len(batches) == input_pipeline.batches_per_epoch(builder, 'train', 64, True) == 7
  shapes = {k: (v.dtype, v.shape) for k, v in batches[0].items()}
  assert shapes == {
      'image': (np.uint8, (64, 16, 16, 3)), 'pose_2d': (np.float32, (64, 16, 2)),
      'pose_3d': (np.float32, (64, 16, 3)), 'pose_3d_mm': (np.float32, (64, 17, 3)),
      'action': (np.int32, (64,)), 'camera_index': (np.int32, (64,)), 'valid': (bool, (64,))}
  assert batches[0]['image'].std() > 5 and all(b['valid'].all() for b in batches)
  stats = input_pipeline.normalization_stats(builder)
  for b in batches:  # the normalised 3D pose is the (possibly flipped) mm pose's
    np.testing.assert_allclose(
        b['pose_3d'], (b['pose_3d_mm'][:, 1:] - stats['pose_3d_mean']) / stats['pose_3d_std'],
        rtol=1e-5, atol=1e-5)
  pose_3d = np.concatenate([b['pose_3d_mm'] for b in batches])
  np.testing.assert_array_equal(pose_3d[:, 0], 0.0)


def test_an_unaugmented_training_epoch_is_a_permutation_of_the_split(builder):
  batches = _epoch(builder, batch_size=48)  # 480 = 10 x 48: nothing dropped
  arrays = input_pipeline.load_pose_arrays(builder, 'train')
  ours = np.concatenate([b['pose_3d_mm'] for b in batches]).reshape(480, -1)
  theirs = arrays['pose_3d'].reshape(480, -1)
  assert not np.array_equal(ours, theirs)  # shuffled
  np.testing.assert_array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])


def test_eval_batches_are_in_file_order_padded_and_match_the_pose_arrays(builder):
  batches = _epoch(builder, 'test', batch_size=100, image_size=32, train=False)
  assert len(batches) == input_pipeline.batches_per_epoch(builder, 'test', 100, False) == 3
  valid = np.concatenate([b['valid'] for b in batches])
  np.testing.assert_array_equal(valid, np.arange(300) < 240)
  last = batches[-1]
  assert last['image'].shape == (100, 32, 32, 3)
  np.testing.assert_array_equal(last['image'][40:], 0)
  np.testing.assert_array_equal(last['pose_3d_mm'][40:], 0)
  arrays = input_pipeline.load_pose_arrays(builder, 'test')
  stats = input_pipeline.normalization_stats(builder)
  rows = {k: np.concatenate([b[k] for b in batches])[:240] for k in batches[0]}
  for key in ('pose_2d', 'pose_3d'):
    expected = (arrays[key][:, 1:] - stats[f'{key}_mean']) / stats[f'{key}_std']
    np.testing.assert_allclose(rows[key], expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(rows['pose_3d_mm'], arrays['pose_3d'])
  np.testing.assert_array_equal(rows['action'], arrays['action'])
  np.testing.assert_array_equal(rows['camera_index'], arrays['camera_index'])
  # Same crops as decoding the stored JPEGs and resizing them.
  stored = next(iter(tfds.as_numpy(builder.as_dataset(split='test', shuffle_files=False))))
  np.testing.assert_array_equal(rows['image'][0], stored['image'])
  with pytest.raises(ValueError, match='never augmented'):
    _epoch(builder, 'test', train=False, augment_config={})


def test_training_order_and_augmentation_depend_on_seed_and_epoch_only(builder):
  config = augment.default_config()
  first = _epoch(builder, seed=1, epoch=2, augment_config=config)
  _assert_same_batches(first, _epoch(builder, seed=1, epoch=2, augment_config=config))
  for other in (_epoch(builder, seed=1, epoch=3, augment_config=config),
                _epoch(builder, seed=2, epoch=2, augment_config=config)):
    assert not np.array_equal(first[0]['action'], other[0]['action'])
    assert not np.array_equal(first[0]['image'], other[0]['image'])
  # Resuming at batch 4 yields the rest of the same epoch.
  _assert_same_batches(_epoch(builder, seed=1, epoch=2, augment_config=config, start_batch=4),
                       first[4:])


def test_every_process_runs_the_same_number_of_batches(builder):
  # 480 training examples over 7 processes: parts of 69 and 68.
  assert input_pipeline.batches_per_epoch(builder, 'train', 10, True, process_count=7) == 6
  assert input_pipeline.batches_per_epoch(builder, 'train', 10, False, process_count=7) == 7
  for index in (0, 6):
    train = _epoch(builder, batch_size=10, process_index=index, process_count=7)
    evals = _epoch(builder, batch_size=10, train=False, process_index=index, process_count=7)
    assert (len(train), len(evals)) == (6, 7)
    assert sum(b['valid'].sum() for b in evals) == (69 if index == 0 else 68)


def test_synthetic_schema_equals_the_real_images_schema(builder):
  real = tfds_h36m.builders.H36m(config='images', data_dir='/nonexistent')
  assert builder.info.features.keys() == real.info.features.keys()
  assert (builder.info.features['pose_3d'].shape, builder.info.features['camera'].keys()) == (
      real.info.features['pose_3d'].shape, real.info.features['camera'].keys())


def test_sample_grid_is_written_with_the_dataset(builder):
  path = os.path.join(builder.data_dir, 'sample_grid.png')
  assert os.path.getsize(path) > 10_000


def test_unbuilt_real_dataset_names_the_build_command(tmp_path):
  with pytest.raises(FileNotFoundError, match='python -m tfds_h36m.prepare --dataset=h36m/poses'):
    input_pipeline.get_builder('h36m/poses', str(tmp_path))
