"""Reading the built datasets: pose arrays, stored statistics, the grain image stream."""

import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from hpe_jax import augment
from hpe_jax import image_stream
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


def _train(builder, batch_size=48, image_size=16, seed=0, **kwargs):
  return input_pipeline.train_image_batches(builder, batch_size=batch_size,
                                            image_size=image_size, seed=seed, **kwargs)


def _eval(builder, split='test', batch_size=100, image_size=32, **kwargs):
  return list(image_stream.iterate(input_pipeline.eval_image_batches(
      builder, split, batch_size=batch_size, image_size=image_size, **kwargs)))


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_host_batches_hold_decoded_crops_and_raw_poses(builder):
  batch = _train(builder, batch_size=64)[0]
  shapes = {k: (v.dtype, v.shape) for k, v in batch.items()}
  assert shapes == {  # 32 px stored, decoded at 1/2 for 16 px
      'image': (np.uint8, (64, 16, 16, 3)), 'crop_box': (np.float32, (64, 3)),
      'pose_2d': (np.float32, (64, 17, 2)), 'pose_3d': (np.float32, (64, 17, 3)),
      'action': (np.int32, (64,)), 'camera_index': (np.int32, (64,)),
      'principal_x': (np.float32, (64,)), 'valid': (bool, (64,))}
  assert batch['image'].std() > 5 and batch['valid'].all()
  np.testing.assert_array_equal(batch['pose_3d'][:, 0], 0.0)


def test_device_batch_normalises_the_augmented_poses(builder):
  stats = input_pipeline.normalization_stats(builder)
  batch = _train(builder, batch_size=64, image_size=32)[0]
  config = {**augment.default_config(), 'flip_prob': 1.0}
  out = jax.jit(lambda b, k: image_stream.device_batch(b, stats, 16, config, k))(
      batch, jax.random.key(0))
  assert out['image'].shape == (64, 16, 16, 3) and out['image'].dtype == np.float32
  flipped = augment.flip(batch, np.ones(64, bool))
  np.testing.assert_allclose(out['pose_3d_mm'], flipped['pose_3d'])  # every row mirrored
  np.testing.assert_allclose(
      out['pose_3d'], (out['pose_3d_mm'][:, 1:] - stats['pose_3d_mean']) / stats['pose_3d_std'],
      rtol=1e-5, atol=1e-5)
  plain = image_stream.device_batch(batch, stats, 32)  # no augmentation: the crops as decoded
  np.testing.assert_array_equal(plain['image'], batch['image'].astype(np.float32))
  np.testing.assert_allclose(plain['pose_2d'], (batch['pose_2d'][:, 1:] - stats['pose_2d_mean'])
                             / stats['pose_2d_std'], rtol=1e-5, atol=1e-5)


def test_each_training_epoch_is_a_new_permutation_of_the_split(builder):
  batches = _train(builder)  # 480 = 10 x 48: an epoch is 10 batches
  arrays = input_pipeline.load_pose_arrays(builder, 'train')
  theirs = arrays['pose_3d'].reshape(480, -1)
  epochs = [np.concatenate([batches[i]['pose_3d'] for i in range(e * 10, e * 10 + 10)])
            .reshape(480, -1) for e in range(2)]
  for ours in epochs:
    assert not np.array_equal(ours, theirs)  # shuffled
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])
  assert not np.array_equal(*epochs)  # reshuffled


def test_the_stream_depends_on_seed_and_process_only(builder):
  first = [_train(builder, seed=1)[i] for i in (0, 13)]
  _assert_same_batches(first, [_train(builder, seed=1)[i] for i in (0, 13)])
  for other in (_train(builder, seed=2)[0], _train(builder, seed=1, process_index=1,
                                                     process_count=2)[0]):
    assert not np.array_equal(first[0]['pose_3d'], other['pose_3d'])


def test_eval_batches_are_in_file_order_padded_and_match_the_pose_arrays(builder):
  batches = _eval(builder)
  assert len(batches) == input_pipeline.batches_per_epoch(builder, 'test', 100, False) == 3
  valid = np.concatenate([b['valid'] for b in batches])
  np.testing.assert_array_equal(valid, np.arange(300) < 240)
  last = batches[-1]
  assert last['image'].shape == (100, 32, 32, 3)
  np.testing.assert_array_equal(last['image'][40:], 0)
  np.testing.assert_array_equal(last['pose_3d'][40:], 0)
  arrays = input_pipeline.load_pose_arrays(builder, 'test')
  rows = {k: np.concatenate([b[k] for b in batches])[:240] for k in batches[0]}
  for key in ('pose_2d', 'pose_3d', 'action', 'camera_index'):
    np.testing.assert_array_equal(rows[key], arrays[key], err_msg=key)
  # The same crop as TFDS's own decoder gives.
  source = builder.as_data_source(split='test')
  np.testing.assert_array_equal(rows['image'][5], source[5]['image'])


def test_two_processes_read_disjoint_parts_whose_union_is_the_split(builder):
  whole = _eval(builder, batch_size=60)
  parts = [_eval(builder, batch_size=60, process_index=i, process_count=2) for i in range(2)]
  assert [len(p) for p in parts] == [2, 2]  # 120 each
  rows = [np.concatenate([b['pose_3d'] for b in p])[np.concatenate([b['valid'] for b in p])]
          for p in parts]
  np.testing.assert_array_equal(np.concatenate(rows), np.concatenate(
      [b['pose_3d'] for b in whole])[:240])
  train_parts = [_train(builder, batch_size=40, process_index=i, process_count=2)
                 for i in range(2)]  # 240 each: 6 batches an epoch
  seen = [np.concatenate([p[i]['pose_3d'] for i in range(6)]).reshape(240, -1)
          for p in train_parts]
  both = np.concatenate(seen)
  assert len(np.unique(both, axis=0)) == 480  # disjoint and, together, the whole split


def test_every_process_runs_the_same_number_of_batches(builder):
  # 480 training examples over 7 processes: parts of 69 and 68.
  assert input_pipeline.batches_per_epoch(builder, 'train', 10, True, process_count=7) == 6
  assert input_pipeline.batches_per_epoch(builder, 'train', 10, False, process_count=7) == 7
  for index in (0, 6):
    evals = _eval(builder, 'train', batch_size=10, process_index=index, process_count=7)
    assert len(evals) == 7
    assert sum(b['valid'].sum() for b in evals) == (69 if index == 0 else 68)


@pytest.mark.parametrize('workers', [0, 2])
def test_a_restored_stream_continues_with_the_same_batches(builder, workers):
  dataset = _train(builder, batch_size=32)
  straight = image_stream.TrainStream(dataset, workers)
  expected = [b for _, b in zip(range(9), straight.batches())]
  stream = image_stream.TrainStream(dataset, workers)
  batches = stream.batches()
  for _ in range(4):  # the steps consumed 3 batches; the stream ran one ahead
    next(batches)
  for _ in range(3):
    stream.consume()
  saved = stream.get_state()
  assert stream.state['next_batch'] == 3
  resumed = image_stream.TrainStream(dataset, workers)
  resumed.set_state(saved)
  _assert_same_batches([b for _, b in zip(range(6), resumed.batches())], expected[3:])
  other = image_stream.TrainStream(dataset, 1 - min(workers, 1))  # another worker count
  other.set_state(saved)
  _assert_same_batches([next(other.batches())], expected[3:4])


def test_a_tfrecord_image_build_names_how_to_rebuild(tmp_path):
  legacy = tfds.builder('h36m_synthetic/tiny', data_dir=str(tmp_path))
  legacy.info.set_file_format('tfrecord', override=True)
  with pytest.raises(image_stream.NotArrayRecord, match='tfrecord.*Rebuild it: remove that '
                     'folder, then run python -m tfds_h36m.prepare --dataset=h36m_synthetic/tiny'):
    image_stream.require_array_record(legacy, 'h36m_synthetic/tiny', str(tmp_path))


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
