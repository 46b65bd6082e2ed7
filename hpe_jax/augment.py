"""Data augmentation of image batches on the accelerator: crop jitter, flip, colour jitter.

The host only decodes JPEGs and batches the stored crops; the augmentation runs
as jitted JAX ops on the whole batch inside the train step, on the accelerator,
keyed from the step's RNG (`jax.random` keys). So the input pipeline stays cheap
(no per-example image maths on the host CPUs), and an augmentation depends only
on its key: runs are reproducible and resume exactly.

A batch is a dict with 'image' (B, S, S, 3) crops (any real dtype, values in
[0, 255]), 'crop_box' (B, 3) (x0, y0, side) of each crop in full-image px,
'pose_2d' (B, 17, 2) full-image px and 'pose_3d' (B, 17, 3) root-relative
camera-frame mm; other keys pass through unchanged.

Resampling is bilinear with two small interpolation-weight matrices per image
and einsums (no gathers), which is fast on CPU and GPU alike.
"""

import functools

import dm_pix as pix
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tfds_h36m import skeleton

_LIMITS = {'flip_prob': 1.0, 'scale': 0.99, 'shift': 1.0, 'brightness': 1.0,
           'contrast': 1.0, 'saturation': 1.0, 'hue': 0.5, 'pose_2d_noise': 0.2,
           'missing_joints': 0.5, 'bone_scale': 0.5, 'leg_bend': 1.0}


def default_config():
  """Augmentation settings; a zero disables the corresponding augmentation.

  flip_prob: probability of a left-right mirror.
  scale: the crop side is multiplied by U[1 - scale, 1 + scale].
  shift: the crop centre moves by U[-shift, shift] x side, in x and y independently.
  brightness: additive delta U[-b, b] on [0, 1] intensities.
  contrast, saturation: factors U[1 - c, 1 + c].
  hue: rotation U[-h, h] of the hue circle (1 = a full turn).
  pose_2d_noise, missing_joints: pose configs' detector-like 2D noise (a fraction of the
    pose's size) and the probability of a missing limb joint (`hpe_jax.pose_noise`).
  bone_scale: perspective-crop pose configs: each pose on a new body, its bones scaled by
    exp(N(0, bone_scale)) (`hpe_jax.pose_bodies`).
  leg_bend: perspective-crop pose configs: the fraction of poses whose hips and knees are
    flexed more, for seated, crouched and kneeling legs (`hpe_jax.pose_bodies`).
  """
  return ml_collections.ConfigDict({
      'flip_prob': 0.5, 'scale': 0.1, 'shift': 0.05,
      'brightness': 0.2, 'contrast': 0.2, 'saturation': 0.2, 'hue': 0.02,
      'pose_2d_noise': 0.0, 'missing_joints': 0.0, 'bone_scale': 0.0, 'leg_bend': 0.0})


def check_config(config):
  """`config` resolved and validated: a ConfigDict with every field of `default_config`.

  Args:
    config: dict or ConfigDict (fields missing take their defaults), or None (every
      field zero: no augmentation).

  Raises:
    ValueError: an unknown field, or a value outside its range.
  """
  resolved = default_config()
  if config is None:
    return ml_collections.ConfigDict({k: 0.0 for k in resolved.keys()})
  unknown = set(config.keys()) - set(resolved.keys())
  if unknown:
    raise ValueError(f'Unknown augmentation fields {sorted(unknown)}; '
                     f'known: {sorted(resolved.keys())}.')
  resolved.update({k: float(v) for k, v in dict(config).items()})
  for key, upper in _LIMITS.items():
    if not 0.0 <= resolved[key] <= upper:
      raise ValueError(f'Augmentation {key}={resolved[key]} is outside [0, {upper}].')
  return resolved


def _interpolation_weights(size, out_size, centre, length):
  """(B, out_size, size) bilinear weights sampling [centre -+ length / 2] of an axis.

  Output pixel o samples the input at s_o = centre - length / 2 + (o + 0.5) step
  - 0.5 (pixel-index units, pixel k covers [k, k + 1)), step = length / out_size;
  W[o, k] = max(0, 1 - |s_o - k|), and 0 for the whole row when s_o is outside
  [0, size - 1] (black), as `tf.image.crop_and_resize` samples.
  """
  step = length / out_size  # (B,)
  o = jnp.arange(out_size, dtype=jnp.float32)
  s = (centre - length / 2 - 0.5)[:, None] + (o + 0.5) * step[:, None]  # (B, out)
  k = jnp.arange(size, dtype=jnp.float32)
  weights = jnp.maximum(0.0, 1.0 - jnp.abs(s[..., None] - k))
  inside = (s >= 0) & (s <= size - 1)
  return jnp.where(inside[..., None], weights, 0.0)


@functools.partial(jax.jit, static_argnums=1)
def resize_crop(images, out_size, scale=None, shift=None):
  """Resamples a jittered square crop of each image to out_size x out_size (bilinear).

  The crop has the image's centre moved by `shift` (dx, dy) x the image side and
  its side multiplied by `scale`; where it extends past the image it is black.
  Pixel k covers [k, k + 1), and the output's pixel grid covers the crop exactly
  (half-pixel centres), so scale 1 and no shift is a plain bilinear resize (no
  antialiasing), and the identity at the same size. Meant for downsizing or equal
  sizes: when upsizing, output pixels within half an input pixel of the border
  fall outside the sampled area and are black (as with `tf.image.crop_and_resize`).

  Args:
    images: (B, H, W, C) images of any real dtype.
    out_size: output side, px (Python int).
    scale: (B,) crop side as a fraction of the image side; None: 1.
    shift: (B, 2) (dx, dy) crop-centre offset as a fraction of the image side
      (dx of the width, dy of the height); None: no shift.

  Returns:
    (B, out_size, out_size, C) float32, in the value range of `images`.
  """
  images = jnp.asarray(images).astype(jnp.float32)
  batch, height, width = images.shape[:3]
  scale = jnp.ones([batch]) if scale is None else jnp.asarray(scale, jnp.float32)
  shift = jnp.zeros([batch, 2]) if shift is None else jnp.asarray(shift, jnp.float32)
  rows = _interpolation_weights(height, out_size, (0.5 + shift[:, 1]) * height,
                                scale * height)
  cols = _interpolation_weights(width, out_size, (0.5 + shift[:, 0]) * width,
                                scale * width)
  highest = jax.lax.Precision.HIGHEST  # no TF32: exact identity, [0, 255] values
  out = jnp.einsum('boh,bhwc->bowc', rows, images, precision=highest)
  return jnp.einsum('bpw,bowc->bopc', cols, out, precision=highest)


@jax.jit
def jitter_crop_box(crop_box, scale, shift):
  """The full-image (x0, y0, side) px of the crops `resize_crop` takes with these values.

  Args:
    crop_box: (B, 3) (x0, y0, side) of the stored crops, full-image px.
    scale: (B,) as for `resize_crop`.
    shift: (B, 2) as for `resize_crop`.

  Returns:
    (B, 3) float32 boxes.
  """
  crop_box = jnp.asarray(crop_box, jnp.float32)
  scale = jnp.asarray(scale, jnp.float32)[:, None]
  side = crop_box[:, 2:]
  corner = crop_box[:, :2] + (0.5 + jnp.asarray(shift, jnp.float32) - scale / 2) * side
  return jnp.concatenate([corner, scale * side], axis=-1)


def flip(batch, mask):
  """Mirrors left-right the examples where `mask` is True, exchanging left and right joints.

  The image's columns are reversed; pose_3d x -> -x (the camera's vertical plane
  through the root); pose_2d is mirrored about the crop box's vertical centre
  line, x' = 2 x0 + side - x, the mirror the flipped crop shows. Both poses are
  permuted with `skeleton.flip_permutation()` so a left wrist stays labelled as a
  left wrist. 'crop_box' and other keys are unchanged.

  Args:
    batch: dict with 'image' (B, S, S, C), 'crop_box' (B, 3), 'pose_2d' (B, J, 2),
      'pose_3d' (B, J, 3).
    mask: (B,) bool.

  Returns:
    The batch with 'image', 'pose_2d' and 'pose_3d' flipped where `mask` holds.
  """
  keys = ('image', 'crop_box', 'pose_2d', 'pose_3d')
  image, pose_2d, pose_3d = _flip_arrays(*(batch[k] for k in keys), mask)
  return {**batch, 'image': image, 'pose_2d': pose_2d, 'pose_3d': pose_3d}


@jax.jit
def _flip_arrays(image, crop_box, pose_2d, pose_3d, mask):
  """`flip` on the arrays it changes: (image, pose_2d, pose_3d)."""
  perm = np.asarray(skeleton.flip_permutation())
  mask = jnp.asarray(mask, bool)
  crop_box = jnp.asarray(crop_box, pose_2d.dtype)
  centre_x2 = (2 * crop_box[:, 0] + crop_box[:, 2])[:, None]  # (B, 1)
  swapped_2d = pose_2d[:, perm]
  mirrored_2d = jnp.stack([centre_x2 - swapped_2d[..., 0], swapped_2d[..., 1]], axis=-1)
  mirrored_3d = pose_3d[:, perm] * jnp.asarray([-1, 1, 1], pose_3d.dtype)
  return (jnp.where(mask[:, None, None, None], image[:, :, ::-1], image),
          jnp.where(mask[:, None, None], mirrored_2d, pose_2d),
          jnp.where(mask[:, None, None], mirrored_3d, pose_3d))


@functools.partial(jax.jit, static_argnames=('brightness', 'contrast', 'saturation', 'hue'))
def color_jitter(images, key, *, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
  """Random brightness, contrast, saturation and hue changes, in that order, per image.

  Works on [0, 1] intensities and clips to [0, 1] after each step, as TF's
  `stateless_random_*` ops did. Each image draws its own brightness delta
  U[-b, b], contrast and saturation factors U[1 - c, 1 + c] and hue rotation
  U[-h, h] (of a full turn); the key is split in four the same way whichever
  settings are on. A zero setting skips its step (all zero: `images` unchanged).

  Args:
    images: (B, H, W, 3) float32 RGB in [0, 255].
    key: a `jax.random` key; the same key gives the same result (None: no augmentation).
    brightness, contrast, saturation, hue: Python floats, as in `default_config`.

  Returns:
    (B, H, W, 3) float32 in [0, 255].
  """
  images = jnp.asarray(images, jnp.float32)
  if not (brightness or contrast or saturation or hue):
    return images
  batch = images.shape[0]
  keys = jax.random.split(key, 4)
  x = images / 255.0
  if brightness:
    delta = jax.random.uniform(keys[0], (batch,), minval=-brightness, maxval=brightness)
    x = jnp.clip(jax.vmap(pix.adjust_brightness)(x, delta), 0.0, 1.0)
  if contrast:
    factor = jax.random.uniform(keys[1], (batch,), minval=1 - contrast, maxval=1 + contrast)
    x = jnp.clip(jax.vmap(pix.adjust_contrast)(x, factor), 0.0, 1.0)
  if saturation:
    factor = jax.random.uniform(keys[2], (batch,), minval=1 - saturation,
                                maxval=1 + saturation)
    x = jnp.clip(jax.vmap(pix.adjust_saturation)(x, factor), 0.0, 1.0)
  if hue:
    delta = jax.random.uniform(keys[3], (batch,), minval=-hue, maxval=hue)
    x = jnp.clip(jax.vmap(pix.adjust_hue)(x, delta), 0.0, 1.0)
  return x * 255.0


def augment_batch(batch, key, config, out_size):
  """Crop jitter with resizing to out_size, random flip, colour jitter, on a batch.

  Each image draws its own scale, shift, flip and colour changes from `key`. The
  jitter is applied to the stored crop in one resampling (`resize_crop`),
  'crop_box' becomes the jittered box, and the flip mirrors about that box's
  centre. With `config` None or all zeros this is just `resize_crop` to out_size
  (a cast to float32 when the size already matches).

  The array work is one jitted function of the four arrays, the key, the
  resolved config's values and out_size (static), so it is compiled once per
  shape and setting whether called eagerly or inside the train step's jit (close
  over `config` and `out_size` there, or make them static: an
  `ml_collections.FrozenConfigDict` is hashable). The config's Python floats
  decide at trace time which steps run; other keys never enter the trace.

  Args:
    batch: dict as in the module docstring.
    key: a `jax.random` key; the same key gives the same result (None: no augmentation).
    config: dict or ConfigDict with fields of `default_config()` (missing ones
      take the defaults), or None: no augmentation.
    out_size: side of the output images, px (Python int).

  Returns:
    The augmented batch: 'image' float32 (B, out_size, out_size, 3) in [0, 255],
    'crop_box', 'pose_2d' and 'pose_3d' updated; other keys unchanged.
  """
  cfg = check_config(config)
  settings = tuple(float(cfg[k]) for k in _LIMITS)
  keys = ('image', 'crop_box', 'pose_2d', 'pose_3d')
  if not any(settings):  # no randomness: no key needed
    return {**batch, 'image': _resize(batch['image'], out_size)}
  out = _augment_arrays(*(batch[k] for k in keys), key, settings, out_size)
  return {**batch, **dict(zip(keys, out))}


def _resize(images, out_size):
  """`resize_crop` without jitter: float32 images of out_size px (only a cast when they
  already have that size)."""
  if images.shape[1:3] == (out_size, out_size):
    return jnp.asarray(images, jnp.float32)
  return resize_crop(images, out_size)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _augment_arrays(images, crop_box, pose_2d, pose_3d, key, settings, out_size):
  """`augment_batch` on its arrays; settings: the config's values in `_LIMITS` order."""
  cfg = dict(zip(_LIMITS, settings))
  scale_key, shift_key, flip_key, colour_key = jax.random.split(key, 4)
  size = images.shape[0]
  if cfg['scale'] or cfg['shift']:
    scale = (jax.random.uniform(scale_key, (size,), minval=1 - cfg['scale'],
                                maxval=1 + cfg['scale']) if cfg['scale'] else jnp.ones([size]))
    shift = (jax.random.uniform(shift_key, (size, 2), minval=-cfg['shift'],
                                maxval=cfg['shift']) if cfg['shift'] else jnp.zeros([size, 2]))
    images = resize_crop(images, out_size, scale, shift)
    crop_box = jitter_crop_box(crop_box, scale, shift)
  else:
    images = _resize(images, out_size)
  if cfg['flip_prob']:
    mask = jax.random.uniform(flip_key, (size,)) < cfg['flip_prob']
    images, pose_2d, pose_3d = _flip_arrays(images, crop_box, pose_2d, pose_3d, mask)
  images = color_jitter(images, colour_key, brightness=cfg['brightness'],
                        contrast=cfg['contrast'], saturation=cfg['saturation'], hue=cfg['hue'])
  return images, crop_box, pose_2d, pose_3d
