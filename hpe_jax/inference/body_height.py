"""A person's known height: lifted poses scaled to it.

A 2D pose looks the same for a body scaled about the camera, so a lifter tells a person's size
only from their proportions: it answers about its training bodies' size, and its poses and the
root's distance are off by as much as the person's size differs from its guess (about 7% of
their size on CMU's test people: `experiments.known_height`). Where the person's height is
known, `scale_to_height` scales each pose about its root to it; the root fit then places the
person at the matching distance.

A pose's height is read off its 17 joints as the chain from the ankle to the head top (shin,
thigh, pelvis to spine, spine to thorax, thorax to neck, neck to head; the legs averaged; the
hips' sideways offset from the pelvis left out). On walking takes of both built-in rigs that
chain is 0.98-1.01 of the head top's height above the ankle, and the ankle sits 3.9% of a
person's height above the floor (Drillis and Contini's segment proportions, as tabulated by
Winter, Biomechanics and Motor Control of Human Movement): the chain is 0.96 of the height.
"""

import numpy as np

from tfds_h36m import skeleton

CHAIN_PER_HEIGHT = 0.96
# Heights accepted, mm: from a small child to above the tallest adults; a height in metres or
# feet is refused rather than read as a doll's.
MIN_HEIGHT_MM, MAX_HEIGHT_MM = 500.0, 2700.0
_J = skeleton.JOINT_NAMES.index
_LEGS = tuple((_J(side + 'Ankle'), _J(side + 'Knee'), _J(side + 'Hip')) for side in 'RL')
_TRUNK = tuple(_J(name) for name in ('Pelvis', 'Spine', 'Thorax', 'Neck', 'Head'))


def _length(poses_mm, joints):
  """Length (...,) mm of the path through `joints` of poses (..., 17, 3)."""
  points = poses_mm[..., joints, :]
  return np.linalg.norm(np.diff(points, axis=-2), axis=-1).sum(axis=-1)


def chain_mm(poses_mm):
  """The ankle-to-head-top chain (...,) mm of poses (..., 17, 3) mm (module docstring)."""
  poses_mm = np.asarray(poses_mm, np.float64)
  legs = np.mean([_length(poses_mm, list(leg)) for leg in _LEGS], axis=0)
  return legs + _length(poses_mm, list(_TRUNK))


def check_height(height_mm, num_poses):
  """Heights (num_poses,) mm of a scalar or one per pose; a ValueError (one line) for
  anything else or a height outside [MIN_HEIGHT_MM, MAX_HEIGHT_MM]."""
  try:
    heights = np.asarray(height_mm, np.float64)
  except (TypeError, ValueError):
    raise ValueError(f'height_mm must be a number or one per pose, got {height_mm!r}.') from None
  if heights.ndim > 1 or (heights.ndim == 1 and len(heights) != num_poses):
    raise ValueError(f'height_mm has shape {heights.shape}; expected a number or '
                     f'({num_poses},), one per pose.')
  outside = ~((heights >= MIN_HEIGHT_MM) & (heights <= MAX_HEIGHT_MM))
  if np.any(outside):
    first = float(np.ravel(heights)[np.argmax(np.ravel(outside))])
    raise ValueError(f'height_mm {first:g} is not a person\'s height in mm (expected '
                     f'{MIN_HEIGHT_MM:g}-{MAX_HEIGHT_MM:g}; 1.75 m is 1750).')
  return np.broadcast_to(heights, (num_poses,))


def scale_to_height(poses_mm, height_mm, hypotheses_mm=None):
  """(poses (N, 17, 3), hypotheses (N, K, 17, 3) or None) root-relative mm, each pose and its
  hypotheses scaled about the root by one factor so that the pose's chain is
  CHAIN_PER_HEIGHT x `height_mm` (a number or (N,) mm, `check_height`)."""
  poses_mm = np.asarray(poses_mm)
  heights = check_height(height_mm, len(poses_mm))
  chain = chain_mm(poses_mm)
  factor = np.where(chain > 0, CHAIN_PER_HEIGHT * heights / np.maximum(chain, 1e-9), 1.0)
  scale = lambda x, f: (x * f).astype(x.dtype, copy=False)
  poses = scale(poses_mm, factor[:, None, None])
  if hypotheses_mm is None:
    return poses, None
  return poses, scale(np.asarray(hypotheses_mm), factor[:, None, None, None])
