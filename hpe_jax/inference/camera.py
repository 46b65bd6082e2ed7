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
"""

import dataclasses

import numpy as np

from hpe_jax import normalization
from hpe_jax.inference import keypoints as keypoints_lib

# Common frame sizes (width, height) px, landscape (each is tried in portrait too).
HUMAN36M_FRAME = (1000, 1000)
FRAME_SIZES = ((640, 480), HUMAN36M_FRAME, (1280, 720), (1920, 1080), (2560, 1440),
               (3840, 2160))
ESTIMATED_FOCAL_PER_SIDE = 1.0  # f / max(width, height)


@dataclasses.dataclass(frozen=True)
class Intrinsics:
  """focal_length and center, (2,) or (N, 2) px (`of` builds one from a scalar f too);
  source: where they come from ('given', or a sentence saying how they were estimated)."""
  focal_length: np.ndarray
  center: np.ndarray
  source: str

  @property
  def estimated(self):
    return self.source != 'given'

  @classmethod
  def of(cls, focal_length, center, source):
    """Intrinsics of focal_length (a scalar, (2,) or (N, 2)) and center ((2,) or (N, 2)) px."""
    focal_length = np.asarray(focal_length, np.float64)
    if focal_length.ndim == 0:
      focal_length = np.full(2, float(focal_length))
    return cls(focal_length, np.asarray(center, np.float64), source)

  def to_plane(self, keypoints_px):
    """Keypoints (N, J, 2) px -> the normalised image plane (u - c) / f."""
    return normalization.camera_plane(np.asarray(keypoints_px, np.float64), self.focal_length,
                                      self.center)

  def describe(self):
    """One short line: the intrinsics (their value, or min-max over the frames when they
    differ per frame) and their source."""
    return f'f = {_summary(self.focal_length)}, c = {_summary(self.center)}, {self.source}'


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
