"""Detector-like corruption of 2D poses: what a lifter for real keypoints trains and is
measured with, the one place for the noise model.

Per pose: every joint moves by isotropic Gaussian noise whose standard deviation is `noise`
times the pose's size (the larger side of its 2D bounding box), in the pose's own units
(px, or the normalised image plane); in training (`variable`) each pose draws its own level
uniformly in [0, 2 noise], so the lifter sees exact and noisier keypoints. Each limb joint
(`LIMB_JOINTS`: knees, ankles, elbows, wrists) is missing with probability `missing` and
takes the position of its parent (a wrist the elbow's), as `fill_missing` places the joints
a detector missed. For 'detector' input, Pelvis, Spine and Thorax stay derived from the
corrupted hips and shoulders. Traceable; runs on NumPy inputs too.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import normalization
from hpe_jax.inference import layouts
from tfds_h36m import skeleton

# Parents first, so a chain of missing joints (knee and ankle) ends at the hip.
LIMB_JOINTS = ('RKnee', 'RAnkle', 'LKnee', 'LAnkle', 'LElbow', 'LWrist', 'RElbow', 'RWrist')
_LIMB = np.asarray([skeleton.JOINT_NAMES.index(j) for j in LIMB_JOINTS])
_PARENT = np.asarray([skeleton.PARENTS[j] for j in _LIMB])


def _to_parents(pose, missing_mask, offset):
  """pose (..., J, 2) with each limb joint where `missing_mask` (..., 8) holds moved to its
  parent; offset 1 for the model's 16 joints (the root dropped), 0 for 17. NumPy arrays stay
  NumPy (no JAX dispatch on the host)."""
  on_host = isinstance(pose, np.ndarray)
  pose = pose.copy() if on_host else pose
  for i, (joint, parent) in enumerate(zip(_LIMB - offset, _PARENT - offset)):
    if on_host:
      pose[..., joint, :] = np.where(missing_mask[..., i, None], pose[..., parent, :],
                                     pose[..., joint, :])
    else:
      moved = jnp.where(missing_mask[..., i, None], pose[..., parent, :], pose[..., joint, :])
      pose = pose.at[..., joint, :].set(moved)
  return pose


def corrupt(key, pose_2d, noise, missing, *, variable=True):
  """Detector-like noise on 2D poses (..., J, 2), J = 17 (H36M-17) or 16 (root dropped), in
  any 2D units (module docstring); `variable` draws each pose's level in [0, 2 noise]."""
  pose_2d = jnp.asarray(pose_2d)
  offset = 17 - pose_2d.shape[-2]
  noise_key, level_key, missing_key = jax.random.split(key, 3)
  size = jnp.max(jnp.max(pose_2d, axis=-2) - jnp.min(pose_2d, axis=-2), axis=-1)
  level = noise * (jax.random.uniform(level_key, size.shape, pose_2d.dtype, 0.0, 2.0)
                   if variable else 1.0)
  out = pose_2d + (level * size)[..., None, None] * jax.random.normal(
      noise_key, pose_2d.shape, pose_2d.dtype)
  if missing > 0:
    mask = jax.random.bernoulli(missing_key, missing, pose_2d.shape[:-2] + (len(_LIMB),))
    out = _to_parents(out, mask, offset)
  return out


def fill_missing(pose_2d):
  """H36M-17 keypoints (..., 17, 2) (NumPy) with NaN limb joints placed at their parents (the
  training's missing joints); other NaN stay."""
  pose_2d = np.asarray(pose_2d)
  return _to_parents(pose_2d, np.isnan(pose_2d[..., _LIMB, 0]), 0)


def _rederive_torso(pose_16):
  """The model's 16 joints (..., 16, 2) with Spine and Thorax derived again from the hips and
  shoulders (`layouts.derive_torso`; the root, Pelvis, is mid-hips)."""
  hips = (pose_16[..., 0, :] + pose_16[..., 3, :]) / 2
  pose_17 = jnp.concatenate([hips[..., None, :], pose_16], axis=-2)
  return layouts.derive_torso(pose_17)[..., 1:, :]


def corrupt_batch(batch, stats, key, noise, missing, input_layout):
  """A training batch with `corrupt` applied to its normalised 2D poses ('pose_2d' and a
  temporal model's 'pose_2d_window'), in their units (the stats' mean and std undone)."""
  out = dict(batch)
  for i, name in enumerate(k for k in ('pose_2d', 'pose_2d_window') if k in batch):
    raw = normalization.denormalize(batch[name], stats['pose_2d_mean'], stats['pose_2d_std'])
    raw = corrupt(jax.random.fold_in(key, i), raw, noise, missing)
    if input_layout == 'detector':
      raw = _rederive_torso(raw)
    out[name] = (raw - stats['pose_2d_mean']) / stats['pose_2d_std']
  return out
