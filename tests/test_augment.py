"""Augmentation ops on batches: flip geometry, jittered resampling, colour jitter, the whole."""

import jax
import ml_collections
import numpy as np
import pytest

from hpe_jax import augment

# skeleton.flip_permutation() written out: RHip<->LHip, RKnee<->LKnee,
# RAnkle<->LAnkle, LShoulder<->RShoulder, LElbow<->RElbow, LWrist<->RWrist.
FLIP = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
ZEROS = {k: 0.0 for k in augment.default_config().keys()}


def _batch(size=2, image=None):
  """`size` examples; example i has the box (100 + 10 i, 40, 20) and poses offset by i."""
  rng = np.random.default_rng(0)
  joints = np.arange(17, dtype=np.float32)
  offsets = np.arange(size, dtype=np.float32)[:, None]
  return {
      'image': (rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
                if image is None else image),
      'crop_box': np.stack([100.0 + 10 * offsets[:, 0], np.full(size, 40.0),
                            np.full(size, 20.0)], -1).astype(np.float32),
      'pose_2d': np.stack([100.0 + joints + offsets, 40.0 + 2 * joints + offsets],
                          -1).astype(np.float32),
      'pose_3d': np.stack([10.0 * joints + offsets, -joints + 0 * offsets,
                           1000.0 + joints + 0 * offsets], -1).astype(np.float32),
      'subject': np.array(['S1', 'S5'][:size]),
  }


def _numpy(batch):
  return {k: np.asarray(v) for k, v in batch.items()}


def test_flip_mirrors_the_masked_rows_and_swaps_left_and_right():
  batch = _batch()
  flipped = _numpy(augment.flip(batch, np.array([True, False])))
  # Row 0, box (100, 40, 20): vertical centre line x = 110. New LHip (4) is the old
  # RHip (1): 2D (101, 42) -> (119, 42); 3D (10, -1, 1001) -> (-10, -1, 1001).
  np.testing.assert_allclose(flipped['pose_2d'][0, 4], [119.0, 42.0])
  np.testing.assert_allclose(flipped['pose_3d'][0, 4], [-10.0, -1.0, 1001.0])
  # New RWrist (16) is the old LWrist (13): 2D (113, 66) -> (107, 66); 3D (130, -13, 1013).
  np.testing.assert_allclose(flipped['pose_2d'][0, 16], [107.0, 66.0])
  np.testing.assert_allclose(flipped['pose_3d'][0, 16], [-130.0, -13.0, 1013.0])
  # Every joint: the mirrored partner; the spine keeps its place.
  j = np.array(FLIP, np.float32)
  np.testing.assert_allclose(flipped['pose_2d'][0],
                             np.stack([220.0 - (100.0 + j), 40.0 + 2 * j], -1))
  np.testing.assert_allclose(flipped['pose_3d'][0],
                             np.stack([-10.0 * j, -j, 1000.0 + j], -1))
  np.testing.assert_array_equal(flipped['image'][0], batch['image'][0][:, ::-1])
  # Row 1 (mask False) is unchanged; crop boxes and other keys pass through.
  for key in ('image', 'pose_2d', 'pose_3d'):
    np.testing.assert_array_equal(flipped[key][1], batch[key][1])
  np.testing.assert_array_equal(flipped['crop_box'], batch['crop_box'])
  np.testing.assert_array_equal(flipped['subject'], batch['subject'])


def test_flip_uses_each_rows_own_crop_box():
  batch = _batch()
  flipped = _numpy(augment.flip(batch, np.array([False, True])))
  # Row 1: box (110, 40, 20), centre line x = 120; old RHip (1) at (102, 43) -> (138, 43).
  np.testing.assert_allclose(flipped['pose_2d'][1, 4], [138.0, 43.0])
  np.testing.assert_allclose(flipped['pose_3d'][1, 4], [-11.0, -1.0, 1001.0])


def test_flip_twice_is_the_identity():
  batch = _batch()
  mask = np.array([True, False])
  twice = _numpy(augment.flip(augment.flip(batch, mask), mask))
  for key in ('image', 'crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_array_equal(twice[key], batch[key])


@pytest.mark.parametrize('size', [32, 30])
def test_resize_crop_without_jitter_at_the_same_size_is_the_identity(size):
  images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype(np.float32)
  out = np.asarray(augment.resize_crop(images, size))
  assert out.shape == images.shape and out.dtype == np.float32
  np.testing.assert_allclose(out, images, atol=1e-4)
  uint8 = images.astype(np.uint8)
  np.testing.assert_array_equal(augment.resize_crop(uint8, size), uint8.astype(np.float32))


def test_halving_averages_two_by_two_blocks():
  images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
  out = np.asarray(augment.resize_crop(images, 16))
  # Output pixel o samples at 2 o + 0.5: half of pixel 2 o, half of 2 o + 1, per axis.
  blocks = images.reshape(2, 16, 2, 16, 2, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(out, blocks, atol=1e-3)
  # Any downsizing without jitter is plain bilinear (half-pixel centres, no antialiasing).
  images = images[:, :30, :30]
  plain = jax.image.resize(images, (2, 20, 20, 3), 'bilinear', antialias=False)
  np.testing.assert_allclose(augment.resize_crop(images, 20), plain, atol=1e-3)


def _stripes(size=32):
  """A bright vertical line at column 16 (red) and a horizontal line at row 16 (green)."""
  image = np.zeros((size, size, 3), np.float32)
  image[:, 16, 0] = 1.0
  image[16, :, 1] = 1.0
  return image


def test_shift_moves_the_crop_so_the_content_moves_the_other_way():
  images = np.stack([_stripes(), _stripes()])
  out = np.asarray(augment.resize_crop(images, 32, shift=np.array([[0.25, 0.0],
                                                                     [0.0, -0.125]])))
  # Image 0: crop centre 8 px (a quarter side) right: column 16 lands on column 8.
  right = out[0]
  assert np.argmax(right[5, :, 0]) == 8 and np.argmax(right[:, 5, 1]) == 16
  np.testing.assert_allclose(right[5, 8, 0], 1.0)
  np.testing.assert_array_equal(right[:, 24:], 0.0)  # past the image's right edge: black
  assert right[:, :24].max() > 0
  # Image 1 (its own shift): crop centre 4 px up: row 16 lands on row 20.
  up = out[1]
  assert np.argmax(up[:, 5, 1]) == 20 and np.argmax(up[5, :, 0]) == 16
  np.testing.assert_array_equal(up[:4], 0.0)  # above the image's top edge: black


def test_scale_zooms_about_the_crop_centre():
  image = np.zeros((1, 32, 32, 3), np.float32)
  image[0, :, 20, 0] = 1.0  # pixel 20 covers [20, 21): 4.5 px right of the centre x = 16
  zoomed = np.asarray(augment.resize_crop(image, 32, scale=np.array([0.5])))[0, 5, :, 0]
  # 2x: 9 px right of the centre, x = 25, between the centres of pixels 24 and 25.
  # Output pixel p samples x = 7.75 + p / 2 (pixel-index units): the weight of input
  # pixel 20 is 1 - |7.75 + p / 2 - 20|, a tent 0.25, 0.75, 0.75, 0.25 over p = 23..26.
  np.testing.assert_allclose(zoomed[23:27], [0.25, 0.75, 0.75, 0.25])
  np.testing.assert_array_equal(zoomed[:23], 0.0)
  np.testing.assert_array_equal(zoomed[27:], 0.0)
  # Scale 2 (zoom out, centred): the whole image in the middle half, black around it.
  wide = np.asarray(augment.resize_crop(np.ones((1, 32, 32, 1)), 32, scale=np.array([2.0])))
  np.testing.assert_array_equal(wide[0, :8], 0.0)
  np.testing.assert_array_equal(wide[0, :, 24:], 0.0)
  np.testing.assert_allclose(wide[0, 8:24, 8:24], 1.0)


def test_jitter_crop_box_is_the_crop_resize_crop_takes():
  box = np.array([[100.0, 200.0, 64.0], [0.0, 0.0, 10.0]], np.float32)
  new_box = augment.jitter_crop_box(box, np.array([0.8, 1.0]), np.array([[0.1, -0.05],
                                                                         [0.0, 0.0]]))
  np.testing.assert_allclose(new_box, [[100 + (0.6 - 0.4) * 64, 200 + (0.45 - 0.4) * 64,
                                        51.2], [0.0, 0.0, 10.0]], rtol=1e-6)


def _dot_batch(size, joint=(130.0, 220.0)):
  """Images of a 64 px crop (100, 200, 64) with a 4 px white square centred on `joint`."""
  image = np.zeros((size, 64, 64, 3), np.float32)
  x, y = int(joint[0] - 100), int(joint[1] - 200)
  image[:, y - 2:y + 2, x - 2:x + 2] = 255.0
  pose_2d = np.zeros((size, 17, 2), np.float32)
  pose_2d[:, 13] = joint  # LWrist
  return {'image': image, 'crop_box': np.tile([[100.0, 200.0, 64.0]], (size, 1)),
          'pose_2d': pose_2d, 'pose_3d': np.zeros((size, 17, 3), np.float32)}


def _centroid(image):
  weights = image[..., 0]
  ys, xs = np.mgrid[:weights.shape[0], :weights.shape[1]] + 0.5  # pixel centres
  return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize('flip_prob,joint', [(0.0, 13), (1.0, 16)])
def test_crop_jitter_moves_the_2d_joints_with_the_crop(flip_prob, joint):
  batch = _dot_batch(4)
  config = {**ZEROS, 'scale': 0.25, 'shift': 0.15, 'flip_prob': flip_prob}
  out = _numpy(augment.augment_batch(batch, jax.random.key(7), config, 48))
  assert out['image'].shape == (4, 48, 48, 3)
  assert len({tuple(b) for b in out['crop_box']}) == 4  # each image its own jitter
  for image, box, pose in zip(out['image'], out['crop_box'], out['pose_2d']):
    # The dot is where its joint (the LWrist, or the RWrist after the flip) lands.
    expected = (pose[joint] - box[:2]) / box[2] * 48
    np.testing.assert_allclose(_centroid(image), expected, atol=1.0)


def test_color_jitter_is_a_function_of_the_key():
  images = np.random.default_rng(3).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
  settings = dict(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)
  first = np.asarray(augment.color_jitter(images, jax.random.key(1), **settings))
  again = np.asarray(augment.color_jitter(images, jax.random.key(1), **settings))
  other = np.asarray(augment.color_jitter(images, jax.random.key(2), **settings))
  assert first.dtype == np.float32 and first.shape == images.shape
  np.testing.assert_array_equal(first, again)
  assert np.abs(first - other).mean() > 1
  assert np.abs(first - images).mean() > 1
  assert 0.0 <= first.min() and first.max() <= 255.0
  unchanged = np.asarray(augment.color_jitter(images, jax.random.key(1)))
  np.testing.assert_array_equal(unchanged, images)
  zeros = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
  np.testing.assert_array_equal(augment.color_jitter(images, jax.random.key(1), **zeros),
                                images)


def _mid_grey_images(size=8):
  """Images with values in [100, 155]: no step of a moderate jitter clips them."""
  return np.random.default_rng(4).uniform(100, 155, (size, 16, 16, 3)).astype(np.float32)


def test_brightness_adds_one_bounded_delta_per_image():
  images = _mid_grey_images()
  out = np.asarray(augment.color_jitter(images, jax.random.key(3), brightness=0.3))
  delta = (out - images).reshape(len(images), -1)
  np.testing.assert_allclose(delta, delta[:, :1].repeat(delta.shape[1], 1), atol=1e-3)
  assert np.all(np.abs(delta[:, 0]) <= 255 * 0.3)
  assert len(np.unique(np.round(delta[:, 0], 3))) == len(images)  # per-image draws
  # With clipping the mean still moves by at most 255 b.
  images = np.random.default_rng(5).uniform(0, 255, (8, 16, 16, 3)).astype(np.float32)
  out = np.asarray(augment.color_jitter(images, jax.random.key(3), brightness=0.3))
  shift = np.abs(out.mean(axis=(1, 2, 3)) - images.mean(axis=(1, 2, 3)))
  assert np.all(shift <= 255 * 0.3 + 1e-3) and shift.max() > 1


def test_contrast_scales_the_spread_about_each_channels_mean():
  images = _mid_grey_images()
  out = np.asarray(augment.color_jitter(images, jax.random.key(4), contrast=0.5))
  np.testing.assert_allclose(out.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-2)
  ratio = out.std(axis=(1, 2)) / images.std(axis=(1, 2))  # (B, 3)
  np.testing.assert_allclose(ratio, ratio[:, :1].repeat(3, 1), rtol=1e-4)  # one factor
  assert np.all((0.5 - 1e-4 <= ratio) & (ratio <= 1.5 + 1e-4))
  assert np.ptp(ratio[:, 0]) > 0.1


def test_saturation_scales_the_channel_spread():
  images = _mid_grey_images()
  out = np.asarray(augment.color_jitter(images, jax.random.key(5), saturation=0.5))
  # HSV: the channel spread max - min is S V; V = max is kept, S is multiplied.
  np.testing.assert_allclose(out.max(-1), images.max(-1), atol=1e-2)
  ratio = np.ptp(out, axis=-1) / np.ptp(images, axis=-1)  # (B, 16, 16)
  factor = np.median(ratio, axis=(1, 2))
  np.testing.assert_allclose(ratio, factor[:, None, None] * np.ones_like(ratio), rtol=1e-3)
  assert np.all((0.5 - 1e-4 <= factor) & (factor <= 1.5 + 1e-4))
  assert np.ptp(factor) > 0.1


def test_hue_keeps_value_and_saturation():
  images = _mid_grey_images()
  out = np.asarray(augment.color_jitter(images, jax.random.key(6), hue=0.2))
  np.testing.assert_allclose(out.max(-1), images.max(-1), atol=1e-2)
  np.testing.assert_allclose(np.ptp(out, -1), np.ptp(images, -1), atol=1e-2)
  assert np.abs(out - images).mean() > 1


def test_augment_batch_is_a_function_of_the_key():
  batch = _batch(4, np.random.default_rng(6).integers(0, 256, (4, 32, 32, 3), np.uint8))
  first = _numpy(augment.augment_batch(batch, jax.random.key(3), augment.default_config(), 16))
  again = _numpy(augment.augment_batch(batch, jax.random.key(3), augment.default_config(), 16))
  other = _numpy(augment.augment_batch(batch, jax.random.key(4), augment.default_config(), 16))
  assert first['image'].dtype == np.float32 and first['image'].shape == (4, 16, 16, 3)
  assert 0.0 <= first['image'].min() and first['image'].max() <= 255.0
  for key in ('image', 'crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first['crop_box'], other['crop_box'])
  assert not np.array_equal(first['crop_box'], batch['crop_box'])  # jittered
  np.testing.assert_array_equal(first['subject'], batch['subject'])  # passes through


def test_augment_batch_without_augmentation_only_resizes():
  batch = _batch()
  for config in (None, ZEROS, ml_collections.ConfigDict(ZEROS)):
    plain = _numpy(augment.augment_batch(batch, jax.random.key(0), config, 16))
    np.testing.assert_allclose(plain['image'], augment.resize_crop(batch['image'], 16))
    for key in ('crop_box', 'pose_2d', 'pose_3d'):
      np.testing.assert_array_equal(plain[key], batch[key])
  same = _numpy(augment.augment_batch(batch, jax.random.key(0), None, 32))
  np.testing.assert_array_equal(same['image'], batch['image'].astype(np.float32))


def test_augment_batch_flips_by_probability():
  batch = _batch()
  keep = _numpy(augment.augment_batch(batch, jax.random.key(0), None, 16))
  flipped = _numpy(augment.augment_batch(batch, jax.random.key(0),
                                         {**ZEROS, 'flip_prob': 1.0}, 16))
  by_hand = _numpy(augment.flip(batch, np.array([True, True])))
  np.testing.assert_array_equal(flipped['image'], keep['image'][:, :, ::-1])
  for key in ('pose_2d', 'pose_3d', 'crop_box'):
    np.testing.assert_array_equal(flipped[key], by_hand[key])
  # flip_prob 0.5: some examples flip, others do not (pose_3d[:, 1, 0] is 10 or -40).
  batch = _batch(1)
  batch = {k: np.repeat(v, 32, 0) for k, v in batch.items()}
  half = augment.augment_batch(batch, jax.random.key(1), {**ZEROS, 'flip_prob': 0.5}, 16)
  assert set(np.asarray(half['pose_3d'][:, 1, 0]).tolist()) == {10.0, -40.0}


def test_augment_batch_flips_about_the_jittered_crop():
  batch = _batch(4, np.random.default_rng(7).integers(0, 256, (4, 32, 32, 3), np.uint8))
  jitter = {**ZEROS, 'scale': 0.2, 'shift': 0.1}
  kept = _numpy(augment.augment_batch(batch, jax.random.key(5), jitter, 16))
  flipped = _numpy(augment.augment_batch(batch, jax.random.key(5),
                                         {**jitter, 'flip_prob': 1.0}, 16))
  np.testing.assert_array_equal(flipped['crop_box'], kept['crop_box'])
  np.testing.assert_array_equal(flipped['image'], kept['image'][:, :, ::-1])
  x0, side = kept['crop_box'][:, :1], kept['crop_box'][:, 2:]
  np.testing.assert_allclose(flipped['pose_2d'][..., 0],
                             2 * x0 + side - kept['pose_2d'][:, list(FLIP), 0], rtol=1e-6)


def test_augment_batch_runs_under_jit():
  batch = _batch(4, np.random.default_rng(8).integers(0, 256, (4, 32, 32, 3), np.uint8))
  del batch['subject']  # strings are not JAX types
  config = ml_collections.FrozenConfigDict(augment.default_config())
  jitted = jax.jit(augment.augment_batch, static_argnums=(2, 3))
  out = _numpy(jitted(batch, jax.random.key(9), config, 16))
  eager = _numpy(augment.augment_batch(batch, jax.random.key(9), config, 16))
  assert out['image'].shape == (4, 16, 16, 3)
  for key in ('image', 'crop_box', 'pose_2d', 'pose_3d'):
    np.testing.assert_allclose(out[key], eager[key], atol=1e-2)


def test_check_config_resolves_and_validates():
  assert augment.check_config({'hue': 0.1}).to_dict() == {**augment.default_config().to_dict(),
                                                          'hue': 0.1}
  assert augment.check_config(None).to_dict() == ZEROS
  assert augment.check_config({'flip_prob': 1}).flip_prob == 1.0
  with pytest.raises(ValueError, match='Unknown augmentation fields'):
    augment.augment_batch(_batch(), jax.random.key(0), {'rotate': 0.1}, 16)
  with pytest.raises(ValueError, match='hue'):
    augment.augment_batch(_batch(), jax.random.key(0), {'hue': 0.7}, 16)
  with pytest.raises(ValueError, match='scale'):
    augment.check_config(ml_collections.ConfigDict({'scale': -0.1}))
