"""Pinhole-with-distortion camera geometry on batches, traceable: projection, undistortion,
the root that places a root-relative pose on its 2D pose, and the pose moved toward its
keypoints' rays. Human3.6M's camera model (`tfds_h36m.cameras.project`); the weak
supervision, the 2D-consistent hypotheses (`hpe_jax.ray_spread`) and the ray refinement
(`hpe_jax.ray_refinement`) share it. OpenCV's lens model (`opencv_distort`, k1, k2, p1, p2,
k3: its tangential terms are written otherwise than Human3.6M's) for calibrated cameras in
`hpe_jax.inference.camera`."""

import jax.numpy as jnp
import numpy as np

MIN_DEPTH_MM = 100.0  # projections clamp depths below this (a pose behind the camera)


def project(points_cam_mm, focal_length, center, radial, tangential):
  """`tfds_h36m.cameras.project` for batches (B, J, 3) mm -> (B, J, 2) px, traceable; depths
  below MIN_DEPTH_MM are clamped."""
  depth = jnp.maximum(points_cam_mm[..., 2:3], MIN_DEPTH_MM)
  u = jnp.clip(points_cam_mm[..., :2] / depth, -1.0, 1.0)
  r2 = jnp.sum(u * u, axis=-1, keepdims=True)
  k = radial[:, None, :]
  p = tangential[:, None, :]
  radial_factor = 1 + k[..., 0:1] * r2 + k[..., 1:2] * r2**2 + k[..., 2:3] * r2**3
  tangential_term = jnp.sum(p * u, axis=-1, keepdims=True)
  u_distorted = u * (radial_factor + tangential_term) + p * r2
  return focal_length[:, None, :] * u_distorted + center[:, None, :]


def undistort(pose_2d_px, focal_length, center, radial, tangential, iterations=8):
  """Inverts `project`'s lens distortion (B, J, 2) px -> px of a pinhole camera with the same
  focal length and centre, by fixed-point iteration (as OpenCV's undistortPoints)."""
  distorted = (pose_2d_px - center[:, None, :]) / focal_length[:, None, :]
  k = radial[:, None, :]
  p = tangential[:, None, :]
  u = distorted
  for _ in range(iterations):
    r2 = jnp.sum(u * u, axis=-1, keepdims=True)
    radial_factor = 1 + k[..., 0:1] * r2 + k[..., 1:2] * r2**2 + k[..., 2:3] * r2**3
    tangential_term = jnp.sum(p * u, axis=-1, keepdims=True)
    u = (distorted - p * r2) / (radial_factor + tangential_term)
  return focal_length[:, None, :] * u + center[:, None, :]


def _opencv_lens(plane, distortion):
  """(radial factor (..., 1), tangential shift (..., 2)) of OpenCV's lens model, coefficients
  (k1, k2, p1, p2, k3), at undistorted points (..., 2) of the normalised image plane."""
  k1, k2, p1, p2, k3 = distortion
  x, y = plane[..., :1], plane[..., 1:]
  r2 = x * x + y * y
  radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
  shift = [2 * p1 * x * y + p2 * (r2 + 2 * x * x), p1 * (r2 + 2 * y * y) + 2 * p2 * x * y]
  return radial, (np if isinstance(plane, np.ndarray) else jnp).concatenate(shift, axis=-1)


def opencv_distort(plane, distortion):
  """Points (..., 2) of the normalised image plane as OpenCV's lens model shows them."""
  radial, shift = _opencv_lens(plane, distortion)
  return plane * radial + shift


def opencv_undistort(plane, distortion, iterations):
  """`opencv_distort` inverted (..., 2) by OpenCV's fixed-point iteration (what
  cv2.undistortPoints does; OpenCV is not a dependency, a large package for these lines)."""
  points = plane
  for _ in range(iterations):
    radial, shift = _opencv_lens(points, distortion)
    points = (plane - shift) / radial
  return points


def fit_root(pose_rel_mm, pose_2d_px, focal_length, center):
  """The translation t (B, 3) mm that best places a root-relative pose (B, J, 3) in front of
  a pinhole camera so that it projects onto `pose_2d_px` (B, J, 2): linear least squares on
  f (X + t_x) = (u - c)(Z + t_z) and the same in y (`pose_2d_px` without lens distortion:
  see `undistort`). Traceable; NumPy inputs are solved with NumPy (no JAX dispatch)."""
  xp = np if all(isinstance(a, np.ndarray) for a in (pose_rel_mm, pose_2d_px, focal_length,
                                                       center)) else jnp
  offset = pose_2d_px - center[:, None, :]  # (B, J, 2)
  zeros = xp.zeros_like(offset[..., 0])
  fx, fy = focal_length[:, None, 0], focal_length[:, None, 1]
  rows_x = xp.stack([xp.broadcast_to(fx, zeros.shape), zeros, -offset[..., 0]], axis=-1)
  rows_y = xp.stack([zeros, xp.broadcast_to(fy, zeros.shape), -offset[..., 1]], axis=-1)
  a = xp.concatenate([rows_x, rows_y], axis=1)  # (B, 2J, 3)
  b = xp.concatenate([offset[..., 0] * pose_rel_mm[..., 2] - fx * pose_rel_mm[..., 0],
                      offset[..., 1] * pose_rel_mm[..., 2] - fy * pose_rel_mm[..., 1]], axis=1)
  normal = xp.einsum('bji,bjk->bik', a, a)
  return xp.linalg.solve(normal, xp.einsum('bji,bj->bi', a, b)[..., None])[..., 0]


def toward_rays(pose_rel_mm, pose_2d_px, focal_length, center, weight=1.0):
  """(pose (B, J, 3) root-relative mm, unit rays (B, J, 3)): a root-relative pose placed by
  `fit_root` on its pinhole 2D pose (B, J, 2) px, each non-root joint then moved `weight`
  ((B, J) or a number; 1: all the way) of the way to the nearest point of its keypoint's ray,
  and made root-relative again. Traceable; NumPy inputs stay NumPy."""
  xp = np if isinstance(pose_rel_mm, np.ndarray) and isinstance(pose_2d_px, np.ndarray) else jnp
  root = fit_root(pose_rel_mm, pose_2d_px, focal_length, center)[:, None]
  direction = (pose_2d_px - center[:, None]) / focal_length[:, None]
  rays = xp.concatenate([direction, xp.ones_like(direction[..., :1])], axis=-1)
  rays = rays / xp.linalg.norm(rays, axis=-1, keepdims=True)
  placed = pose_rel_mm + root
  on_rays = xp.sum(placed * rays, axis=-1, keepdims=True) * rays
  moved = placed + xp.asarray(weight)[..., None] * (on_rays - placed) - root
  return xp.concatenate([xp.zeros_like(moved[:, :1]), moved[:, 1:]], axis=1), rays
