"""The camera 2D keypoints come from: given intrinsics, or one estimate when the user has none.

A lifter for any camera (config.input_space 'camera' or 'perspective_crop') reads keypoints on
the normalised image plane, (u - c) / f; a pixel lifter reads px of its reference camera
(Human3.6M's), the keypoints moved into it along the same rays. Either needs the keypoints'
camera: its focal length f and principal point c in px. Without them, `estimate` (the one estimate, for every
kind of lifter) takes the image size (given, or the smallest of the common frames
`FRAME_SIZES` holding every keypoint, shortest longer side first) and its camera: for
Human3.6M's 1000 x 1000 frame, Human3.6M's cameras' mean; otherwise the principal point at
the image's centre and f = max(width, height) px, a 53 degree field of view across the
longer side, between a phone's main camera (about 65-70 degrees) and a short telephoto. An
estimate scales the root's distance (the trajectory) with the true f / estimated f, and
changes the 3D pose less (perspective only); give --focal_length / --center when known.

Lens distortion, where the camera is calibrated: OpenCV's model (`DISTORTION_NAMES`, its
order), the calibration of OpenCV, COLMAP's OPENCV camera and Kalibr's radtan; `to_plane`
undoes it, so lifting, the root fit and the ray refinement all see a pinhole camera's
keypoints. Human3.6M's calibration writes its tangential terms another way
(`tfds_h36m.cameras.project`): give its radial k1, k2, k3 with p1 = p2 = 0.
"""

import dataclasses
from typing import Optional

from absl import logging
import numpy as np

from hpe_jax import camera_geometry
from hpe_jax import normalization
from hpe_jax.inference import keypoints as keypoints_lib

# Common frame sizes (width, height) px, landscape (each is tried in portrait too).
HUMAN36M_FRAME = (1000, 1000)
FRAME_SIZES = ((640, 480), HUMAN36M_FRAME, (1280, 720), (1920, 1080), (2560, 1440),
               (3840, 2160))
ESTIMATED_FOCAL_PER_SIDE = 1.0  # f / max(width, height)
DISTORTION_NAMES = ('k1', 'k2', 'p1', 'p2', 'k3')
UNDISTORT_ITERATIONS = 20
# The largest distance (normalised image plane) between a keypoint and its undistorted
# point distorted again that passes without a warning: 0.01 px at f = 1000 px.
UNDISTORT_TOLERANCE = 1e-5


def distortion_coefficients(values):
  """OpenCV's (k1, k2, p1, p2, k3) (5,) of 4 or 5 finite numbers (k3 = 0 when left out); a
  ValueError (one line) for anything else."""
  try:
    coefficients = np.asarray(values, np.float64).ravel()
  except (TypeError, ValueError):
    raise ValueError(f'distortion takes numbers k1, k2, p1, p2[, k3], got {values!r}.') from None
  if len(coefficients) not in (4, 5) or not np.all(np.isfinite(coefficients)):
    raise ValueError('distortion takes 4 or 5 finite numbers k1, k2, p1, p2[, k3] (OpenCV\'s '
                     f'order), got {len(coefficients)}: {values!r}.')
  return np.concatenate([coefficients, np.zeros(5 - len(coefficients))])


def distort(plane, distortion):
  """Points (..., 2) of the normalised image plane as the lens `distortion` (5,) shows them."""
  return camera_geometry.opencv_distort(np.asarray(plane, np.float64), distortion)


def undistort(plane, distortion):
  """The pinhole points (..., 2) of distorted ones on the normalised image plane
  (`camera_geometry.opencv_undistort`); points it cannot place within UNDISTORT_TOLERANCE (far
  outside the calibrated field) are logged."""
  plane = np.asarray(plane, np.float64)
  points = camera_geometry.opencv_undistort(plane, distortion, UNDISTORT_ITERATIONS)
  miss = np.linalg.norm(distort(points, distortion) - plane, axis=-1)
  off = np.sum(miss > UNDISTORT_TOLERANCE)  # NaN keypoints (missing) compare False
  if off:
    logging.warning('%d of %d keypoints lie where the lens model cannot be undone (far '
                    'outside the calibrated field); kept at its best guess.', off,
                    np.sum(np.isfinite(miss)))
  return points


@dataclasses.dataclass(frozen=True)
class Intrinsics:
  """focal_length and center, (2,) or (N, 2) px (`of` builds one from a scalar f too);
  source: where they come from ('given', or a sentence saying how they were estimated);
  distortion: OpenCV's (k1, k2, p1, p2, k3), or None for a pinhole camera."""
  focal_length: np.ndarray
  center: np.ndarray
  source: str
  distortion: Optional[np.ndarray] = None

  @property
  def estimated(self):
    return self.source != 'given'

  @classmethod
  def of(cls, focal_length, center, source, distortion=None):
    """Intrinsics of focal_length (a scalar, (2,) or (N, 2)) and center ((2,) or (N, 2)) px,
    and 4 or 5 distortion coefficients (`distortion_coefficients`) or None."""
    focal_length = np.asarray(focal_length, np.float64)
    if focal_length.ndim == 0:
      focal_length = np.full(2, float(focal_length))
    if distortion is not None:
      distortion = distortion_coefficients(distortion)
    return cls(focal_length, np.asarray(center, np.float64), source, distortion)

  def to_plane(self, keypoints_px):
    """Keypoints (N, J, 2) px -> the normalised image plane (u - c) / f, the lens distortion
    undone where there is one."""
    plane = normalization.camera_plane(np.asarray(keypoints_px, np.float64),
                                       self.focal_length, self.center)
    return plane if self.distortion is None else undistort(plane, self.distortion)

  def moved_into(self, keypoints_px, focal_length, center):
    """Keypoints (N, J, 2) px as a pinhole camera of focal_length and center (2,) px at the
    same place would see them: along the same rays."""
    return self.to_plane(keypoints_px) * focal_length + center

  def describe(self):
    """One short line: the intrinsics (their value, or min-max over the frames when they
    differ per frame), the lens distortion and their source."""
    lens = '' if self.distortion is None else ', lens distortion ' + ' '.join(
        f'{name} = {value:g}' for name, value in zip(DISTORTION_NAMES, self.distortion))
    return (f'f = {_summary(self.focal_length)}, c = {_summary(self.center)}{lens}, '
            f'{self.source}')


def _summary(values):
  """(2,) or (N, 2) px as '[x, y] px' (one value) or '[x0-x1, y0-y1] px (min-max over N
  frames)'."""
  rows = np.reshape(np.asarray(values, np.float64), (-1, 2))
  low, high = rows.min(axis=0), rows.max(axis=0)
  if np.all(low == high):
    return f'[{low[0]:.1f}, {low[1]:.1f}] px'
  return (f'[{low[0]:.1f}-{high[0]:.1f}, {low[1]:.1f}-{high[1]:.1f}] px (min-max over '
          f'{len(rows)} frames)')


def frame_size_of(keypoints_px):
  """The first of FRAME_SIZES (either orientation; by the longer side, then the area) that
  holds every finite keypoint."""
  kp = np.asarray(keypoints_px, np.float64).reshape(-1, 2)
  kp = kp[np.all(np.isfinite(kp), axis=-1)]
  extent = kp.max(axis=0) if len(kp) else np.zeros(2)
  candidates = sorted([s for s in FRAME_SIZES] + [s[::-1] for s in FRAME_SIZES],
                      key=lambda s: (max(s), s[0] * s[1]))
  for width, height in candidates:
    if extent[0] <= width and extent[1] <= height:
      return width, height
  return int(np.ceil(extent[0])), int(np.ceil(extent[1]))


def estimate(keypoints_px, image_size=None):
  """The one estimate of the Intrinsics of keypoints (N, J, 2) px from an unknown camera
  (module docstring), from image_size (width, height) px, or from the keypoints' extent."""
  if image_size is None:
    width, height = frame_size_of(keypoints_px)
    how = (f'estimated for a {width} x {height} frame holding the keypoints (give --image_size '
           'or the intrinsics)')
  else:
    width, height = (float(v) for v in image_size)
    how = f'estimated from the image size {width:g} x {height:g} px'
  if (width, height) == HUMAN36M_FRAME:
    return Intrinsics.of(*keypoints_lib.reference_intrinsics(),
                         how + ": Human3.6M's mean camera")
  focal = ESTIMATED_FOCAL_PER_SIDE * max(width, height)
  return Intrinsics(np.array([focal, focal]), np.array([width / 2, height / 2]),
                    how + ', f = max(width, height)')
