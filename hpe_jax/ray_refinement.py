"""The ray refinement of an any-camera lifter's answer (`config.ray_refinement`).

A lifter's answer need not project onto the keypoints it was given; the keypoints say where
each joint lies across its ray much better than the lifter does, unless they are noisy. So
the answer is placed by the root fit and each joint moved toward the nearest point of its
keypoint's ray (`camera_geometry.toward_rays`), by the weight that combines two Gaussian
errors across the ray: the lifter's, about LIFTER_RAY_ERROR of the person's size, and the
keypoints', `keypoint_noise` of it (the noise model of `hpe_jax.pose_noise`): exact
keypoints move the joints onto their rays, keypoints as noisy as the lifter's own error half
way. A missing joint stays where the lifter put it. The evaluation and `Lifter.lift` share
it.
"""

import numpy as np

from hpe_jax import camera_geometry

# The lifter's RMS error across the rays, as a fraction of the person's size (the 2D bounding
# box's larger side), on its training people: the packaged CMU lifter's errors moved the
# least on its training poses at weights 0.55 and 0.2 for keypoint noise of 1% and 2%.
LIFTER_RAY_ERROR = 0.01
# The keypoint noise `Lifter.lift` assumes unless told: detector-like, the mean of training's.
DEFAULT_KEYPOINT_NOISE = 0.01


def weight(keypoint_noise):
  """How far (0-1) the joints move toward their rays for keypoints with Gaussian noise of
  `keypoint_noise` (a fraction of the person's 2D size): 1 / (1 + (noise / lifter's)^2)."""
  if not 0 <= keypoint_noise < np.inf:
    raise ValueError(f'keypoint_noise must be a number >= 0, got {keypoint_noise}.')
  return 1.0 / (1.0 + (keypoint_noise / LIFTER_RAY_ERROR) ** 2)


def joint_weights(missing, keypoint_noise):
  """(N, 17) float32: each joint's `weight`, 0 where `missing` (N, 17) holds (a joint the
  detector missed, which the lifter placed at its parent)."""
  return np.where(missing, 0.0, weight(keypoint_noise)).astype(np.float32)


def refine(pose_rel_mm, plane, weights):
  """Root-relative poses (B, 17, 3) mm moved toward the rays of their keypoints `plane`
  (B, 17, 2) on the normalised image plane, (u - c) / f, by `weights` (B, 17)."""
  ones = plane[..., 0, :] * 0.0 + 1.0
  moved, _ = camera_geometry.toward_rays(pose_rel_mm, plane, ones, ones * 0.0, weights)
  return moved
