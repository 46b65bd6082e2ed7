"""Data augmentation of image examples: crop jitter, left-right flip, colour jitter.

TensorFlow ops meant to run inside a `tf.data` map. All randomness is stateless
(`tf.random.stateless_*` driven by a shape [2] integer seed), so an example's
augmentation depends only on its seed: runs are reproducible and resume exactly.

An example is a dict with 'image' (S, S, 3) crop, 'crop_box' (x0, y0, side) of
that crop in full-image px, 'pose_2d' (17, 2) full-image px and 'pose_3d'
(17, 3) root-relative camera-frame mm; other keys pass through unchanged.
"""

import ml_collections
import tensorflow as tf

from tfds_h36m import skeleton


def default_config():
  """Augmentation settings; a zero disables the corresponding augmentation.

  flip_prob: probability of a left-right mirror.
  scale: the crop side is multiplied by U[1 - scale, 1 + scale].
  shift: the crop centre moves by U[-shift, shift] x side, in x and y independently.
  brightness: additive delta U[-b, b] on [0, 1] intensities.
  contrast, saturation: factors U[1 - c, 1 + c].
  hue: rotation U[-h, h] of the hue circle (1 = a full turn).
  """
  return ml_collections.ConfigDict({
      'flip_prob': 0.5, 'scale': 0.1, 'shift': 0.05,
      'brightness': 0.2, 'contrast': 0.2, 'saturation': 0.2, 'hue': 0.02})


def _resolve_config(config):
  """`config` (dict or ConfigDict, fields missing take their defaults), validated."""
  resolved = default_config()
  unknown = set(config.keys()) - set(resolved.keys())
  if unknown:
    raise ValueError(f'Unknown augmentation fields {sorted(unknown)}; '
                     f'known: {sorted(resolved.keys())}.')
  resolved.update(dict(config))
  limits = {'flip_prob': 1.0, 'scale': 0.99, 'shift': 1.0, 'brightness': 1.0,
            'contrast': 1.0, 'saturation': 1.0, 'hue': 0.5}
  for key, upper in limits.items():
    if not 0.0 <= resolved[key] <= upper:
      raise ValueError(f'Augmentation {key}={resolved[key]} is outside [0, {upper}].')
  return resolved


def resize_crop(image, out_size, scale=1.0, shift=(0.0, 0.0)):
  """Resamples a jittered square crop of `image` to out_size x out_size (bilinear).

  The crop has the image's centre moved by `shift` (dx, dy) x the image side and
  its side multiplied by `scale`; where it extends past the image it is black.
  Pixel k covers [k, k + 1), and the output's pixel grid covers the crop exactly
  (half-pixel centres), so scale 1 and no shift is a plain bilinear resize.
  Meant for downsizing or equal sizes: when upsizing, output pixels within half an
  input pixel of the border fall outside the sampled area and are black.

  Args:
    image: (H, W, C) image of any real dtype.
    out_size: output side, px (Python int).
    scale: crop side as a fraction of the image side (scalar float or tensor).
    shift: (dx, dy) crop-centre offset as a fraction of the image side.

  Returns:
    (out_size, out_size, C) float32, in the value range of `image`.
  """
  size = tf.cast(tf.shape(image)[:2], tf.float32)  # (H, W)
  scale = tf.cast(scale, tf.float32)
  centre = (0.5 + tf.reverse(tf.cast(shift, tf.float32), [0])) * size  # (y, x) px
  length = scale * size
  step = length / out_size
  # crop_and_resize samples from start to end inclusive, in pixel-index units
  # normalised by (size - 1): the first and last output pixel centres.
  start = (centre - length / 2 + step / 2 - 0.5) / (size - 1)
  end = (centre + length / 2 - step / 2 - 0.5) / (size - 1)
  box = tf.concat([start, end], axis=0)  # (y1, x1, y2, x2)
  return tf.image.crop_and_resize(image[tf.newaxis], box[tf.newaxis], [0],
                                  [out_size, out_size])[0]


def jitter_crop_box(crop_box, scale=1.0, shift=(0.0, 0.0)):
  """The full-image (x0, y0, side) px of the crop `resize_crop` takes with these values."""
  crop_box = tf.cast(crop_box, tf.float32)
  side = crop_box[2]
  scale = tf.cast(scale, tf.float32)
  corner = crop_box[:2] + (0.5 + tf.cast(shift, tf.float32) - scale / 2) * side
  return tf.concat([corner, [scale * side]], axis=0)


def flip_example(example):
  """Mirrors an example left-right, exchanging left and right joints.

  The image is flipped; pose_3d x -> -x (the camera's vertical plane through the
  root); pose_2d is mirrored about the crop's vertical centre line, x' = 2 (x0 +
  side / 2) - x, the mirror the flipped crop shows. Both poses are permuted with
  `skeleton.flip_permutation()` so a left wrist stays labelled as a left wrist.
  """
  perm = skeleton.flip_permutation()
  x0, _, side = tf.unstack(tf.cast(example['crop_box'], tf.float32))
  pose_2d = tf.gather(example['pose_2d'], perm)
  pose_3d = tf.gather(example['pose_3d'], perm)
  return {
      **example,
      'image': tf.image.flip_left_right(example['image']),
      'pose_2d': tf.stack([2 * x0 + side - pose_2d[:, 0], pose_2d[:, 1]], axis=-1),
      'pose_3d': pose_3d * tf.constant([-1.0, 1.0, 1.0], pose_3d.dtype),
  }


def color_jitter(image, seed, *, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
  """Random brightness, contrast, saturation and hue changes, in that order.

  Works on [0, 1] intensities (uint8 images are converted and back) and clips to
  [0, 1] after each step. Settings as in `default_config`; zeros skip a step.

  Args:
    image: (H, W, 3) RGB, uint8 or float in [0, 1].
    seed: shape [2] int32/int64 tensor.

  Returns:
    The jittered image, same shape and dtype.
  """
  image = tf.convert_to_tensor(image)
  if not (brightness or contrast or saturation or hue):
    return image
  dtype = image.dtype
  x = tf.image.convert_image_dtype(image, tf.float32)
  seeds = tf.random.split(seed, 4)
  if brightness:
    x = tf.clip_by_value(tf.image.stateless_random_brightness(x, brightness, seeds[0]), 0., 1.)
  if contrast:
    x = tf.clip_by_value(
        tf.image.stateless_random_contrast(x, 1 - contrast, 1 + contrast, seeds[1]), 0., 1.)
  if saturation:
    x = tf.clip_by_value(
        tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, seeds[2]),
        0., 1.)
  if hue:
    x = tf.clip_by_value(tf.image.stateless_random_hue(x, hue, seeds[3]), 0., 1.)
  return tf.image.convert_image_dtype(x, dtype, saturate=True)


def augment(example, seed, config, out_size):
  """Crop jitter with resizing to out_size, random flip, colour jitter.

  The jitter is applied to the stored crop in one resampling (`resize_crop`),
  'crop_box' becomes the jittered box, and the flip mirrors about that box's
  centre. Without scale and shift jitter the image is resized with
  `tf.image.resize` (the same result, faster; none when the size already
  matches); with every field of `config` zero this is all that happens.

  Args:
    example: dict as in the module docstring, 'image' uint8 of any size (give it
      a static shape to skip resizing when it is already out_size).
    seed: shape [2] int32/int64 tensor; the same seed gives the same result.
    config: dict or ConfigDict with fields of `default_config()` (missing ones
      take the defaults).
    out_size: side of the output image, px.

  Returns:
    The augmented example; 'image' uint8 (out_size, out_size, 3).
  """
  cfg = _resolve_config(config)
  seeds = tf.random.split(seed, 4)
  image, crop_box = tf.convert_to_tensor(example['image']), example['crop_box']
  if cfg.scale or cfg.shift:
    scale = (tf.random.stateless_uniform([], seeds[0], 1 - cfg.scale, 1 + cfg.scale)
             if cfg.scale else 1.0)
    shift = (tf.random.stateless_uniform([2], seeds[1], -cfg.shift, cfg.shift)
             if cfg.shift else tf.zeros([2]))
    image = resize_crop(image, out_size, scale, shift)
    crop_box = jitter_crop_box(crop_box, scale, shift)
  elif image.shape[:2] != (out_size, out_size):
    image = tf.image.resize(image, [out_size, out_size])  # equals resize_crop without jitter
  if image.dtype != tf.uint8:  # resampled: float32 in [0, 255]
    image = tf.saturate_cast(tf.round(image), tf.uint8)
  out = {**example, 'image': image, 'crop_box': crop_box}
  if cfg.flip_prob:
    flip = tf.random.stateless_uniform([], seeds[2]) < cfg.flip_prob
    out = tf.cond(flip, lambda: flip_example(out), lambda: out)
  out['image'] = color_jitter(out['image'], seeds[3], brightness=cfg.brightness,
                              contrast=cfg.contrast, saturation=cfg.saturation, hue=cfg.hue)
  return out
