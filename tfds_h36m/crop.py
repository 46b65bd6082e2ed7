"""Square person crops around a 2D pose, shared by the real and synthetic image configs."""

import numpy as np
from PIL import Image

DEFAULT_MARGIN = 1.2  # crop side = margin x the longer side of the 2D-pose bounding box


def crop_box(pose_2d, margin=DEFAULT_MARGIN, min_size_px=32.0):
  """Square crop (x0, y0, side) in pixels centred on the 2D pose's bounding box.

  The side is `margin` times the longer side of the box (at least
  `min_size_px`); the box may extend past the image border (padded black).
  """
  pose_2d = np.asarray(pose_2d, np.float64)
  lo, hi = pose_2d.min(axis=0), pose_2d.max(axis=0)
  center = (lo + hi) / 2
  side = max(float(np.max(hi - lo)) * margin, min_size_px)
  return np.array([center[0] - side / 2, center[1] - side / 2, side])


def crop_to_pixels(points_2d, box, out_size):
  """Maps full-image pixel coordinates into the crop's `out_size` pixel grid."""
  x0, y0, side = box
  return (np.asarray(points_2d, np.float64) - (x0, y0)) * (out_size / side)


def crop_image(image, box, out_size):
  """Crops the square `box` out of an RGB frame and resizes it to out_size x out_size.

  Parts of the box outside the frame are black. Bilinear resampling (PIL).
  """
  x0, y0, side = (float(v) for v in box)
  cropped = Image.fromarray(image).transform(
      (out_size, out_size), Image.Transform.EXTENT,
      data=(x0, y0, x0 + side, y0 + side), resample=Image.Resampling.BILINEAR)
  return np.asarray(cropped)
