"""Pose normalisation, the one place for it: training, evaluation, input pipelines and the lifter.

The model sees the 16 non-root joints, each coordinate standardised with the
training split's per-coordinate mean and std (stored in the dataset's metadata
at build time, and in `workdir/normalization.json` so a trained model lifts
keypoints without its dataset). 2D poses are absolute px, 3D poses
root-relative mm. The arithmetic is written with operators only, so it runs on
NumPy, JAX and TensorFlow tensors alike.
"""

import json
import os

import numpy as np

from hpe_jax import files

NORMALIZATION_FILE = 'normalization.json'
STATS_KEYS = ('pose_2d_mean', 'pose_2d_std', 'pose_3d_mean', 'pose_3d_std')


def normalize(pose, stats, modality):
  """(..., 17, D) pose (px for 'pose_2d', root-relative mm for 'pose_3d') -> the model's
  (..., 16, D): root dropped, standardised with the training split's `stats`."""
  return (pose[..., 1:, :] - stats[f'{modality}_mean']) / stats[f'{modality}_std']


def input_pose_2d(pose_px, input_layout):
  """The 2D pose (..., 17, 2) px as a model of `config.input_layout` reads it: as it is
  ('h36m'), or with the torso joints derived from the hips and shoulders as a detector's
  keypoints give them ('detector', `hpe_jax.inference.layouts.derive_torso`)."""
  if input_layout == 'h36m':
    return pose_px
  from hpe_jax.inference import layouts  # pylint: disable=g-import-not-at-top
  return layouts.derive_torso(pose_px)


def camera_plane(pose_px, focal_length, center):
  """2D poses (..., J, 2) px -> the normalised image plane, (u - c) / f per joint (the x / z
  and y / z of the joints' camera-frame positions, for a pinhole camera): focal_length and
  center (..., 2) px of each pose's camera. A lifter that reads them works with any camera."""
  return (pose_px - center[..., None, :]) / focal_length[..., None, :]


def input_space_pose_2d(arrays, input_space):
  """The 2D poses of a split's arrays (pose_2d (N, 17, 2) px, focal_length and center
  (N, 2) px) in a config's `input_space`: 'pixels' as they are, 'camera' and
  'perspective_crop' on the normalised image plane (`camera_plane`; the crop comes in
  `model_pose_2d`)."""
  if is_any_camera(input_space):
    return camera_plane(arrays['pose_2d'], arrays['focal_length'], arrays['center'])
  return arrays['pose_2d']


def is_any_camera(input_space):
  """Whether a config's 2D input is read on each camera's normalised image plane (a lifter
  for any camera) rather than in px of one camera."""
  return input_space in ('camera', 'perspective_crop')


def principal_x(arrays, input_space):
  """(N,) float32: the mirror's column of each row's 2D input (`hpe_jax.mirror`): its
  camera's c_x in px, or 0 on the normalised image plane (and in a perspective crop)."""
  if is_any_camera(input_space):
    return np.zeros(len(arrays['center']), np.float32)
  return np.asarray(arrays['center'][:, 0], np.float32)


def model_pose_2d(pose, stats, input_layout, input_space='pixels'):
  """The 2D encoder's input of 2D poses (..., 17, 2) in `input_space` (px, or the normalised
  image plane): the config's `input_layout`, the `perspective_crop` where the space is
  'perspective_crop', then standardised ((..., 16, 2)). Training, evaluation and the lifter
  share it."""
  pose = input_pose_2d(pose, input_layout)
  if input_space == 'perspective_crop':
    pose = perspective_crop(pose)
  return normalize(pose, stats, 'pose_2d')


def _look_at_root(pose_plane):
  """(c1, s1, c2, s2), each (...,): the rotation R = R_x R_y that turns a camera to look
  along the ray of each pose's root (joint 0, (..., 17, 2) on the normalised image plane):
  R_y (cos c1, sin s1) turns it about its y axis to the root's column, then R_x (c2, s2)
  about its new x axis to the root's row, so the image's rows stay level and a mirrored
  pose gets the mirrored rotation. R = [[c1, 0, -s1], [-s2 s1, c2, -s2 c1],
  [c2 s1, s2, c2 c1]] maps camera-frame vectors to the turned camera's frame."""
  x, y = pose_plane[..., 0, 0], pose_plane[..., 0, 1]
  a = (1.0 + x * x) ** 0.5
  b = (a * a + y * y) ** 0.5
  return 1.0 / a, x / a, a / b, y / b


def _rotate(vectors, rows):
  """(..., J, 3) vectors times the 3x3 matrix `rows` (3 tuples of 3 (...,) entries), each
  vector a column: operators only (NumPy, JAX and TensorFlow alike)."""
  out = 0.0
  for i, row in enumerate(rows):
    value = sum(entry[..., None] * vectors[..., j] for j, entry in enumerate(row))
    out = out + value[..., None] * np.eye(3)[i]
  return out


def _rotation_rows(pose_plane, inverse=False):
  c1, s1, c2, s2 = _look_at_root(pose_plane)
  zero = 0.0 * c1
  rows = ((c1, zero, -s1), (-s2 * s1, c2, -s2 * c1), (c2 * s1, s2, c2 * c1))
  return tuple(zip(*rows)) if inverse else rows


def perspective_crop(pose_plane):
  """2D poses (..., 17, 2) on the normalised image plane, joint 0 the root -> the poses as a
  camera turned to look at each root sees them (`_look_at_root`), root at the origin,
  divided by their RMS distance from it: the same input wherever the person stands in the
  image and however far, with the perspective of the view kept (a perspective crop, after
  Yu et al., CVPR 2021). The 3D poses of such a lifter live in the turned camera's frame
  (`to_crop_frame`, `from_crop_frame`)."""
  ones = pose_plane[..., :1] * 0.0 + 1.0
  rays = (pose_plane[..., :1] * np.eye(3)[0] + pose_plane[..., 1:] * np.eye(3)[1] +
          ones * np.eye(3)[2])
  turned = _rotate(rays, _rotation_rows(pose_plane))
  plane = turned[..., :2] / turned[..., 2:]
  radius = ((plane * plane).sum(axis=-1).mean(axis=-1) + 1e-12) ** 0.5
  return plane / radius[..., None, None]


def to_crop_frame(pose_3d, pose_plane):
  """Camera-frame 3D poses (..., J, 3) -> the frame of the camera turned to look at the root
  of their 2D poses (..., 17, 2) on the normalised image plane (`perspective_crop`)."""
  return _rotate(pose_3d, _rotation_rows(pose_plane))


def from_crop_frame(pose_3d, pose_plane):
  """The inverse of `to_crop_frame`: a perspective-crop lifter's 3D poses (..., J, 3) back
  in the camera's frame."""
  return _rotate(pose_3d, _rotation_rows(pose_plane, inverse=True))


def camera_frame(pose_mm, plane, input_space):
  """A model's 3D answers or labels (N, ..., 17, 3) mm -> the camera's frame, given its 2D
  input `plane` (N, 17, 2) on the normalised image plane as the model reads it
  (`input_pose_2d`): a perspective crop's turned back (`from_crop_frame`), others as they
  are."""
  if input_space != 'perspective_crop':
    return pose_mm
  plane = plane.reshape(plane.shape[:1] + (1,) * (pose_mm.ndim - 3) + plane.shape[1:])
  return from_crop_frame(pose_mm, plane)


def denormalize(x, mean, std):
  """Undoes the per-coordinate standardisation."""
  return x * std + mean


def add_root(pose_16):
  """(..., 16, D) root-dropped pose -> (..., 17, D) with the root (pelvis) at the origin."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top  # TF input code needs no JAX
  zeros = jnp.zeros(pose_16.shape[:-2] + (1, pose_16.shape[-1]), pose_16.dtype)
  return jnp.concatenate([zeros, pose_16], axis=-2)


def pose_3d_mm(pred, stats):
  """A 3D decoder's normalised (..., 16, 3) output -> (..., 17, 3) root-relative mm."""
  return add_root(denormalize(pred, stats['pose_3d_mean'], stats['pose_3d_std']))


def pose_2d_px(pred, stats):
  """A 2D decoder's normalised (..., 16, 2) output -> (..., 16, 2) px."""
  return denormalize(pred, stats['pose_2d_mean'], stats['pose_2d_std'])


def model_input(batch, modality):
  """The model's input of a modality: normalised poses as they are (for a temporal model,
  the window of 2D poses, 'pose_2d_window', where the batch has one), images normalised
  like the encoder's ImageNet pretraining (the data carries uint8 to save transfers)."""
  if modality == 'image':
    from hpe_jax.models import resnet  # pylint: disable=g-import-not-at-top  # Flax: not for tf.data
    return resnet.normalize_image(batch['image'])
  if modality == 'pose_2d' and 'pose_2d_window' in batch:
    return batch['pose_2d_window']
  return batch[modality]


def save(workdir, stats):
  """Writes the stats (px, mm; 16 non-root joints) to `workdir/normalization.json`, atomically."""
  files.write_atomic(files.inside(workdir, NORMALIZATION_FILE),
                     json.dumps({k: np.asarray(stats[k]).tolist() for k in STATS_KEYS}))


def load(workdir):
  """The stats saved by `save`, as float32 arrays; None when the workdir has none."""
  path = os.path.join(os.path.abspath(workdir), NORMALIZATION_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      raw = json.load(f)
  except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, nested too deep
    raise ValueError(f'{path} is not a readable normalisation file: {e}') from None
  missing = [k for k in STATS_KEYS if not isinstance(raw, dict) or k not in raw]
  if missing:
    raise ValueError(f'{path} lacks {missing}.')
  return {k: _stat(raw[k], k, path) for k in STATS_KEYS}


def _stat(value, key, path):
  """One stat of normalization.json as float32 (16, D), finite; a std positive."""
  shape = (16, 2 if key.startswith('pose_2d') else 3)
  try:
    array = np.asarray(value, np.float32)
  except (TypeError, ValueError, OverflowError):
    array = None
  if array is None or array.shape != shape or not np.all(np.isfinite(array)) or (
      key.endswith('_std') and not np.all(array > 0)):
    raise ValueError(f'{path}: {key} is not {shape[0]} x {shape[1]} finite numbers'
                     f'{" above 0" if key.endswith("_std") else ""}.')
  return array
