"""Augmentation ops: flip geometry, jittered resampling, colour jitter, the combined op."""

import numpy as np
import pytest
import tensorflow as tf

from hpe_jax import augment

# skeleton.flip_permutation() written out: RHip<->LHip, RKnee<->LKnee,
# RAnkle<->LAnkle, LShoulder<->RShoulder, LElbow<->RElbow, LWrist<->RWrist.
FLIP = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)


def _example(image=None):
  rng = np.random.default_rng(0)
  joints = np.arange(17, dtype=np.float32)
  return {
      'image': rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if image is None else image,
      'crop_box': np.array([100.0, 40.0, 20.0], np.float32),  # vertical centre line x = 110
      'pose_2d': np.stack([100.0 + joints, 40.0 + 2 * joints], -1).astype(np.float32),
      'pose_3d': np.stack([10.0 * joints, -joints, 1000.0 + joints], -1).astype(np.float32),
      'subject': 'S1',
  }


def _numpy(example):
  return {k: np.asarray(v) for k, v in example.items()}


def test_flip_mirrors_the_pose_and_swaps_left_and_right():
  example = _example()
  flipped = _numpy(augment.flip_example(example))
  # New LHip (4) is the old RHip (1): 2D (101, 42) mirrored about x = 110 -> (119, 42);
  # 3D (10, -1, 1001) -> (-10, -1, 1001).
  np.testing.assert_allclose(flipped['pose_2d'][4], [119.0, 42.0])
  np.testing.assert_allclose(flipped['pose_3d'][4], [-10.0, -1.0, 1001.0])
  # New RWrist (16) is the old LWrist (13): 2D (113, 66) -> (107, 66); 3D (130, -13, 1013).
  np.testing.assert_allclose(flipped['pose_2d'][16], [107.0, 66.0])
  np.testing.assert_allclose(flipped['pose_3d'][16], [-130.0, -13.0, 1013.0])
  # Every joint: the mirrored partner; the spine keeps its place.
  j = np.array(FLIP, np.float32)
  np.testing.assert_allclose(flipped['pose_2d'], np.stack([220.0 - (100.0 + j), 40.0 + 2 * j], -1))
  np.testing.assert_allclose(flipped['pose_3d'], np.stack([-10.0 * j, -j, 1000.0 + j], -1))
  np.testing.assert_array_equal(flipped['image'], np.fliplr(example['image']))
  np.testing.assert_array_equal(flipped['crop_box'], example['crop_box'])
  assert flipped['subject'] == 'S1'  # other keys pass through


def test_flip_twice_is_the_identity():
  example = _example()
  twice = _numpy(augment.flip_example(augment.flip_example(example)))
  for key in ('image', 'crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_array_equal(twice[key], example[key])


@pytest.mark.parametrize('in_size,out_size', [(32, 32), (32, 16), (32, 8), (30, 20)])
def test_resize_crop_without_jitter_is_a_plain_resize(in_size, out_size):
  image = np.random.default_rng(1).uniform(0, 255, (in_size, in_size, 3)).astype(np.float32)
  ours = augment.resize_crop(image, out_size).numpy()
  plain = tf.image.resize(image, [out_size, out_size]).numpy()  # bilinear, half-pixel centres
  assert ours.shape == (out_size, out_size, 3) and ours.dtype == np.float32
  np.testing.assert_allclose(ours, plain, atol=1e-2)


def _stripes(size=32):
  """A bright vertical line at column 16 and a dimmer horizontal line at row 16."""
  image = np.zeros((size, size, 3), np.float32)
  image[:, 16, 0] = 1.0
  image[16, :, 1] = 1.0
  return image


def test_shift_moves_the_crop_so_the_content_moves_the_other_way():
  # Crop centre 8 px (a quarter side) right: the column-16 line lands on column 8.
  right = augment.resize_crop(_stripes(), 32, shift=(0.25, 0.0)).numpy()
  assert np.argmax(right[5, :, 0]) == 8
  np.testing.assert_array_equal(right[:, 24:], 0.0)  # past the image's right edge: black
  # Crop centre 4 px up: the row-16 line lands on row 20.
  up = augment.resize_crop(_stripes(), 32, shift=(0.0, -0.125)).numpy()
  assert np.argmax(up[:, 5, 1]) == 20 and np.argmax(up[5, :, 0]) == 16
  np.testing.assert_array_equal(up[:4], 0.0)


def test_scale_zooms_about_the_crop_centre():
  image = np.zeros((32, 32, 3), np.float32)
  image[:, 20, 0] = 1.0  # 4.5 px right of the centre (x = 16)
  zoomed = augment.resize_crop(image, 32, scale=0.5).numpy()  # 2x: 9 px right
  assert np.argmax(zoomed[5, :, 0]) in (24, 25)


def test_jittered_box_predicts_where_a_point_lands():
  # A bright dot at full-image px (130, 220), inside the crop (100, 200, 64).
  image = np.zeros((64, 64, 3), np.float32)
  image[17:23, 27:33] = 1.0  # a 6 px square centred on crop px (30, 20)
  box = np.array([100.0, 200.0, 64.0], np.float32)
  scale, shift, out = 0.8, (0.1, -0.05), 64
  resized = augment.resize_crop(image, out, scale, shift).numpy()[..., 0]
  new_box = augment.jitter_crop_box(box, scale, shift).numpy()
  np.testing.assert_allclose(new_box, [100 + (0.6 - 0.4) * 64, 200 + (0.45 - 0.4) * 64, 51.2],
                             rtol=1e-6)
  expected = (np.array([130.0, 220.0]) - new_box[:2]) * out / new_box[2]
  ys, xs = np.mgrid[:out, :out] + 0.5  # pixel centres
  centroid = np.array([(xs * resized).sum(), (ys * resized).sum()]) / resized.sum()
  np.testing.assert_allclose(centroid, expected, atol=0.05)


def test_color_jitter_is_uint8_reproducible_and_seeded():
  image = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
  settings = dict(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)
  first = augment.color_jitter(image, tf.constant([1, 2]), **settings).numpy()
  again = augment.color_jitter(image, tf.constant([1, 2]), **settings).numpy()
  other = augment.color_jitter(image, tf.constant([1, 3]), **settings).numpy()
  assert first.dtype == np.uint8 and first.shape == image.shape
  np.testing.assert_array_equal(first, again)
  assert np.abs(first.astype(int) - other).mean() > 1
  assert np.abs(first.astype(int) - image).mean() > 1
  unchanged = augment.color_jitter(image, tf.constant([1, 2])).numpy()
  np.testing.assert_array_equal(unchanged, image)
  as_float = augment.color_jitter(image / np.float32(255), tf.constant([1, 2]), **settings)
  assert as_float.dtype == tf.float32
  assert 0.0 <= float(tf.reduce_min(as_float)) and float(tf.reduce_max(as_float)) <= 1.0


def test_augment_is_a_function_of_the_seed():
  example = _example()
  seed = tf.constant([3, 4])
  first = _numpy(augment.augment(example, seed, augment.default_config(), 16))
  again = _numpy(augment.augment(example, seed, augment.default_config(), 16))
  assert first['image'].dtype == np.uint8 and first['image'].shape == (16, 16, 3)
  for key in ('image', 'crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first['crop_box'], example['crop_box'])  # jittered
  outcomes = {tuple(_numpy(augment.augment(example, tf.constant([s, 0]), {}, 16))['crop_box'])
              for s in range(4)}
  assert len(outcomes) == 4


def test_augment_parts_switch_off_with_zeros():
  example = _example()
  zeros = {k: 0.0 for k in augment.default_config()}
  plain = _numpy(augment.augment(example, tf.constant([0, 0]), zeros, 16))
  resized = augment.resize_crop(example['image'] / np.float32(255), 16).numpy()
  np.testing.assert_allclose(plain['image'] / 255, resized, atol=1 / 255)
  for key in ('crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_allclose(plain[key], example[key])
  flipped = _numpy(augment.augment(example, tf.constant([0, 0]), {**zeros, 'flip_prob': 1.0}, 16))
  np.testing.assert_array_equal(flipped['image'], np.fliplr(plain['image']))
  np.testing.assert_allclose(flipped['pose_2d'], _numpy(augment.flip_example(example))['pose_2d'])
  # flip_prob 0.5: some seeds flip, others do not.
  half = {**zeros, 'flip_prob': 0.5}
  xs = {float(augment.augment(example, tf.constant([s, 1]), half, 16)['pose_3d'][1, 0])
        for s in range(16)}
  assert xs == {10.0, -40.0}


def test_augmented_flip_mirrors_about_the_jittered_crop():
  example = _example()
  seed = tf.constant([5, 6])
  jitter = {'scale': 0.2, 'shift': 0.1, 'hue': 0.0, 'saturation': 0.0, 'contrast': 0.0,
            'brightness': 0.0}
  kept = _numpy(augment.augment(example, seed, {**jitter, 'flip_prob': 0.0}, 16))
  flipped = _numpy(augment.augment(example, seed, {**jitter, 'flip_prob': 1.0}, 16))
  np.testing.assert_array_equal(flipped['crop_box'], kept['crop_box'])
  np.testing.assert_array_equal(flipped['image'], np.fliplr(kept['image']))
  x0, _, side = kept['crop_box']
  np.testing.assert_allclose(flipped['pose_2d'][:, 0],
                             2 * x0 + side - kept['pose_2d'][list(FLIP), 0], rtol=1e-6)


def test_augment_rejects_unknown_or_out_of_range_settings():
  with pytest.raises(ValueError, match='Unknown augmentation fields'):
    augment.augment(_example(), tf.constant([0, 0]), {'rotate': 0.1}, 16)
  with pytest.raises(ValueError, match='hue'):
    augment.augment(_example(), tf.constant([0, 0]), {'hue': 0.7}, 16)
