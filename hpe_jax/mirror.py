"""Left-right mirroring of poses, the one place for it: pose augmentation in training and the
test-time flip.

The mirror is the reflection of the camera frame in its vertical plane x = 0: a
root-relative 3D pose (mm) maps x -> -x, and its image u -> 2 c_x - u about the
principal point's column c_x of the example's camera (px; exact for the pinhole part
of the projection, Human3.6M's lens distortion of a few px at the image border is not
mirrored). Batches carry each row's c_x as 'principal_x': the camera's in px, 0 for 2D
poses on the normalised image plane (`config.input_space` 'camera'). Left and right joints then exchange labels (`skeleton.flip_permutation`), so
a left wrist stays a left wrist. Every function is traceable and its own inverse.
"""

import jax.numpy as jnp
import numpy as np

from hpe_jax import normalization
from tfds_h36m import skeleton

PERMUTATION_17 = np.asarray(skeleton.flip_permutation())
PERMUTATION_16 = PERMUTATION_17[1:] - 1  # the model's poses drop the root, which maps to itself


def _permutation(num_joints):
  return {17: PERMUTATION_17, 16: PERMUTATION_16}[num_joints]


def mirror_pose_3d(pose_mm):
  """(..., J, 3) root-relative mm (J = 17, or 16 without the root) -> its mirror."""
  swapped = pose_mm[..., _permutation(pose_mm.shape[-2]), :]
  return swapped * jnp.asarray([-1.0, 1.0, 1.0], swapped.dtype)


def mirror_pose_2d(pose_px, principal_x):
  """(..., J, 2) px -> its mirror about the column `principal_x` (...,) px."""
  swapped = pose_px[..., _permutation(pose_px.shape[-2]), :]
  u = 2.0 * jnp.asarray(principal_x, swapped.dtype)[..., None] - swapped[..., 0]
  return jnp.stack([u, swapped[..., 1]], axis=-1)


def mirror_normalized(modality, pose, stats, principal_x=None):
  """The mirror of a model input or output pose (..., 16, D), standardised with `stats`;
  `principal_x` (B,) px for 2D poses (B, 16, 2) or windows of them (B, T, 16, 2)."""
  mean, std = stats[f'{modality}_mean'], stats[f'{modality}_std']
  raw = normalization.denormalize(pose, mean, std)
  if modality != 'pose_3d':
    principal_x = jnp.reshape(principal_x, np.shape(principal_x)
                              + (1,) * (raw.ndim - 2 - np.ndim(principal_x)))
  mirrored = (mirror_pose_3d(raw) if modality == 'pose_3d'
              else mirror_pose_2d(raw, principal_x))
  return (mirrored - mean) / std


def flip_average(answer_mm, answer_to_mirror_mm):
  """The test-time flip: the mean of the 3D answer (..., 17, 3) mm to an input and the
  mirror of the answer to the mirrored input. The result commutes with the mirror."""
  return 0.5 * (answer_mm + mirror_pose_3d(answer_to_mirror_mm))


def flip_pose_batch(batch, stats, mask):
  """A training batch of normalised poses with the examples where `mask` (B,) holds
  mirrored: pose_2d about their camera's c_x ('principal_x'), pose_3d in x = 0."""
  principal_x = batch['principal_x']
  out = dict(batch)
  for key in ('pose_2d', 'pose_3d', 'pose_2d_window'):
    if key in batch:
      modality = 'pose_3d' if key == 'pose_3d' else 'pose_2d'
      mirrored = mirror_normalized(modality, batch[key], stats, principal_x)
      rows = mask.reshape(mask.shape + (1,) * (batch[key].ndim - 1))
      out[key] = jnp.where(rows, mirrored, batch[key])
  return out
