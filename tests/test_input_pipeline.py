"""Reading the built datasets: pose arrays, stored statistics, the image pipeline."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

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


def test_image_pipeline_batches(builder):
  ds = input_pipeline.image_dataset(builder, 'train', batch_size=16, seed=3)
  batch = next(iter(tfds.as_numpy(ds)))
  assert batch['image'].shape == (16, 32, 32, 3) and batch['image'].dtype == np.uint8
  assert batch['pose_3d'].shape == (16, 17, 3)
  assert batch['image'].std() > 5  # rendered content, not blank
  again = next(iter(tfds.as_numpy(input_pipeline.image_dataset(builder, 'train', 16, seed=3))))
  np.testing.assert_array_equal(batch['frame'], again['frame'])
  finite = input_pipeline.image_dataset(builder, 'test', 100, shuffle=False, repeat=False)
  assert sum(len(b['frame']) for b in tfds.as_numpy(finite)) == 240


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
