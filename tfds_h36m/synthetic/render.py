"""Renders a synthetic body as shaded capsules directly into a person crop.

Each bone is a capsule (tfds_h36m/synthetic/motion.py), plus a small foot at
each ankle, projected with the camera's own model: the axis end points go
through cameras.project, and the radius in pixels is focal * radius_mm / depth.
Pixels are shaded like a lit cylinder, z-buffered against the other capsules
and anti-aliased at the rim. Only the crop's pixels are computed. The
background is a room around the capture volume (floor, wall and ceiling seen
along the camera's rays, a soft shadow under the body), so it is consistent
across crops of one camera.
"""

import matplotlib

matplotlib.use('Agg')

from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import skeleton
from tfds_h36m.synthetic import motion

# Base colours (RGB in [0, 1]) per bone: trunk, skin, left limbs (blue), right limbs (red).
_TRUNK = (0.42, 0.62, 0.45)
_SKIN = (0.93, 0.75, 0.6)
_LEFT_LEG, _LEFT_ARM = (0.16, 0.3, 0.78), (0.3, 0.55, 0.98)
_RIGHT_LEG, _RIGHT_ARM = (0.78, 0.2, 0.14), (0.98, 0.45, 0.25)
BONE_COLORS = np.array([
    _TRUNK, _RIGHT_LEG, _RIGHT_LEG,  # pelvis-RHip, right thigh, right shin
    _TRUNK, _LEFT_LEG, _LEFT_LEG,  # pelvis-LHip, left thigh, left shin
    _TRUNK, _TRUNK, _SKIN, _SKIN,  # abdomen, chest, neck, head
    _TRUNK, _LEFT_ARM, _LEFT_ARM,  # left shoulder, upper arm, forearm
    _TRUNK, _RIGHT_ARM, _RIGHT_ARM,  # right shoulder, upper arm, forearm
])
# The trunk-coloured capsules (hip and shoulder girdles, abdomen, chest) are
# pushed back by this much (mm) in the z-test, so that limbs win where surfaces
# coincide, e.g. the thigh's end cap inside the hip girdle's.
_TRUNK_DEPTH_BIAS_MM = 2.0
# Feet (not part of the skeleton) are drawn as capsules from the heel, under and
# behind the ankle, forward along the pelvis' facing direction, in the leg's colour
# darkened like shoes.
FOOT_RADIUS_MM = 35.0
_FOOT_LENGTH_MM = 170.0
_HEEL_OFFSET_MM = (-30.0, -35.0)  # forward, up from the ankle
_SHOE_SHADE = 0.55


def _unit_tuple(v):
  """Unit vector as Python floats, which keep float32 shading arrays float32."""
  v = np.asarray(v, np.float64)
  return tuple(float(x) for x in v / np.linalg.norm(v))


# Light direction (camera frame: x right, y down, z forward), towards the light,
# and the halfway vector between it and the view direction (-z), for highlights.
_LIGHT = _unit_tuple([-0.45, -0.6, -0.65])
_HALFWAY = _unit_tuple(np.add(_LIGHT, [0.0, 0.0, -1.0]))


# The background is smooth: it is evaluated every this many crop pixels and
# interpolated bilinearly in between.
_BACKGROUND_STEP = 4


def _pixel_grid(box, out_size, step=1):
  """Full-image coordinates (px) of every `step`-th crop pixel centre, up to the last."""
  x0, y0, side = (float(v) for v in box)
  index = np.arange(-(-(out_size - 1) // step) + 1) * step
  centres = (index + 0.5) * (side / out_size)
  return x0 + centres, y0 + centres


def _upsample(samples, out_size, step):
  """Bilinear interpolation of samples (h, w, c) taken every `step` pixels to the crop."""
  weight = np.arange(step, dtype=np.float32) / step
  w = weight[:, None, None]
  rows = samples[:-1, None] * (1 - w) + samples[1:, None] * w  # (h - 1, step, w, c)
  rows = rows.reshape(-1, *samples.shape[1:])[:out_size]
  w = weight[:, None]
  cols = rows[:, :-1, None] * (1 - w) + rows[:, 1:, None] * w  # (out, w - 1, step, c)
  return cols.reshape(out_size, -1, samples.shape[-1])[:, :out_size]


def _background(camera, box, out_size, rng, pelvis_world):
  """A room seen by `camera` through the crop: floor, wall, ceiling (float32 RGB).

  Rays ignore lens distortion. The floor and wall carry low-frequency shading
  fixed in the world, so crops of one camera with the same rng agree, and the
  floor is darkened under the body.
  """
  xs, ys = _pixel_grid(box, out_size, _BACKGROUND_STEP)
  u = (xs - camera.center[0]) / camera.focal_length[0]
  v = (ys - camera.center[1]) / camera.focal_length[1]
  rot = camera.rotation
  # World direction of each sample's ray, (h, w) per component.
  ray = [rot[i, 0] * u[None, :] + rot[i, 1] * v[:, None] + rot[i, 2] for i in range(3)]
  origin = camera.translation
  centre = motion.VOLUME_CENTER_MM
  room_radius = rng.uniform(5500.0, 7500.0)
  wall_height = rng.uniform(3000.0, 4000.0)
  # Ray-cylinder (the wall) intersection: |o + s r - c|_xy = R, s > 0. The
  # camera is inside, so a ray meets the floor first iff it meets the wall below 0.
  ox, oy = origin[0] - centre[0], origin[1] - centre[1]
  a = ray[0] ** 2 + ray[1] ** 2
  b = ox * ray[0] + oy * ray[1]
  c = ox * ox + oy * oy - room_radius ** 2
  s_wall = (-b + np.sqrt(b * b - a * c)) / a
  wx, wy, wz = (origin[i] + s_wall * ray[i] for i in range(3))
  # Floor hits, continued past the wall; rays at or above the horizon get a far point.
  s_floor = -origin[2] / np.minimum(ray[2], -1e-3)
  fx, fy = (origin[i] + s_floor * ray[i] for i in range(2))

  def noise(p, q, scale_mm):
    """Sum of three random plane waves over world coordinates (p, q)."""
    out = 0.0
    for _ in range(3):
      angle, phase = rng.uniform(0, 2 * np.pi, 2)
      k = 2 * np.pi / (scale_mm * rng.uniform(0.6, 1.6))
      out = out + np.sin(k * (np.cos(angle) * p + np.sin(angle) * q) + phase)
    return out / 3

  floor_rgb = (rng.uniform(0.25, 0.65) * _tint(rng, 0.15)).astype(np.float32)
  wall_rgb = (rng.uniform(0.45, 0.85) * _tint(rng, 0.2)).astype(np.float32)
  floor_shade = 1 + 0.18 * noise(fx, fy, 2500.0)
  dist = np.hypot(fx - pelvis_world[0], fy - pelvis_world[1])
  floor_shade *= 1 - 0.35 * np.exp(-0.5 * (dist / 350.0) ** 2)
  azimuth_mm = np.arctan2(wy - centre[1], wx - centre[0]) * room_radius
  wall_shade = (1 + 0.12 * noise(azimuth_mm, wz, 3000.0)) * (
      0.8 + 0.25 * np.clip(wz / wall_height, 0, 1))
  # Height (mm) of the wall hit per output pixel, for anti-aliased region edges.
  wz_step = np.hypot(*np.gradient(wz)) / _BACKGROUND_STEP + 1e-3
  samples = np.stack([floor_shade, wall_shade, wz, wz_step], axis=-1).astype(np.float32)
  full = _upsample(samples, out_size, _BACKGROUND_STEP)
  floor_shade, wall_shade, height, step = (full[..., i:i + 1] for i in range(4))
  floor = np.clip(0.5 - height / step, 0, 1)
  wall = (1 - floor) * (1 - 0.4 * np.clip(0.5 + (height - wall_height) / step, 0, 1))
  return (floor * floor_shade) * floor_rgb + (wall * wall_shade) * wall_rgb


def _tint(rng, amount):
  """A random colour near grey."""
  return 1 + rng.uniform(-amount, amount, 3)


def _draw_capsule(image, zbuf, a, b, ra, rb, za, zb, radius_mm, color):
  """Draws one capsule in place: shaded, z-tested and anti-aliased.

  a, b: (2,) end points in crop px; ra, rb: radii (px) there; za, zb: depths (mm)
  of the axis there (biased for the z-test); radius_mm: the capsule radius for
  the surface depth.
  """
  height, width = zbuf.shape
  x_lo = int(max(np.floor(min(a[0] - ra, b[0] - rb)) - 1, 0))
  x_hi = int(min(np.ceil(max(a[0] + ra, b[0] + rb)) + 2, width))
  y_lo = int(max(np.floor(min(a[1] - ra, b[1] - rb)) - 1, 0))
  y_hi = int(min(np.ceil(max(a[1] + ra, b[1] + rb)) + 2, height))
  if x_lo >= x_hi or y_lo >= y_hi:
    return
  px = np.arange(x_lo, x_hi, dtype=np.float32) + 0.5
  py = np.arange(y_lo, y_hi, dtype=np.float32)[:, None] + 0.5
  axis = b - a
  length2 = max(float(axis @ axis), 1e-6)
  t = np.clip(((px - a[0]) * axis[0] + (py - a[1]) * axis[1]) / length2, 0, 1)
  dx = px - (a[0] + t * axis[0])
  dy = py - (a[1] + t * axis[1])
  dist = np.sqrt(dx * dx + dy * dy)
  radius = ra + t * (rb - ra)
  coverage = np.clip(radius - dist + 0.5, 0, 1)
  inside = coverage > 0
  if not inside.any():
    return
  rho = np.minimum(dist / radius, 1)
  facing = np.sqrt(1 - rho * rho)  # z component of the (camera-facing) normal
  inv = rho / np.maximum(dist, 1e-6)
  nx, ny = dx * inv, dy * inv
  depth = za + t * (zb - za) - radius_mm * facing
  region = np.s_[y_lo:y_hi, x_lo:x_hi]
  visible = inside & (depth < zbuf[region])
  diffuse = np.maximum(nx * _LIGHT[0] + ny * _LIGHT[1] - facing * _LIGHT[2], 0)
  specular = np.maximum(nx * _HALFWAY[0] + ny * _HALFWAY[1] - facing * _HALFWAY[2], 0) ** 24
  light = (0.3 + 0.7 * diffuse) * (0.7 + 0.3 * facing)
  shaded = light[..., None] * color + 0.25 * specular[..., None]
  alpha = (coverage * visible)[..., None]
  image[region] = image[region] * (1 - alpha) + shaded * alpha
  zbuf[region] = np.where(visible & (coverage > 0.5), depth, zbuf[region])


def _feet(pose_3d_cam, camera):
  """Foot capsule axes (2, 2, 3) mm in the camera frame: right, then left."""
  up = camera.rotation[2]  # the world's z axis in the camera frame
  p = pose_3d_cam
  forward = np.cross(p[4] - p[1], p[7] - p[0])
  forward -= (forward @ up) * up
  forward /= np.linalg.norm(forward)
  heels = p[[3, 6]] + _HEEL_OFFSET_MM[0] * forward + _HEEL_OFFSET_MM[1] * up
  return np.stack([heels, heels + _FOOT_LENGTH_MM * forward], axis=1)


def render_crop(pose_3d_cam, camera, box, out_size, rng, bone_radii_mm=motion.BONE_RADII_MM):
  """Renders the body seen by `camera` in the crop `box`, as uint8 (out_size, out_size, 3).

  Equivalent to rendering the full frame and cropping it like
  tfds_h36m/crop.py (parts of the box outside the frame are black).

  Args:
    pose_3d_cam: (17, 3) joints in the camera frame, mm.
    camera: cameras.Camera that sees them.
    box: (x0, y0, side) crop in full-image pixels (crop.crop_box).
    out_size: side (px) of the output.
    rng: np.random.Generator for the scene (room, wall and floor colours, body
      brightness); the same seed gives the same scene.
    bone_radii_mm: (16,) capsule radii in skeleton.BONES order.
  """
  pose_3d_cam = np.asarray(pose_3d_cam, np.float64)
  pelvis_world = cameras.camera_to_world(pose_3d_cam[skeleton.ROOT], camera)
  image = _background(camera, box, out_size, rng, pelvis_world)
  # The 16 bones, then the right and left feet in their shins' colours, shaded.
  colors = BONE_COLORS[list(range(len(BONE_COLORS))) + [2, 5]] * rng.uniform(0.85, 1.1)
  colors[-2:] *= _SHOE_SHADE
  segments = np.concatenate([motion.capsule_segments(pose_3d_cam),
                             _feet(pose_3d_cam, camera)])  # (18, 2, 3) mm
  ends = crop.crop_to_pixels(cameras.project(segments, camera), box, out_size)
  scale = out_size / float(box[2])
  focal = float(np.mean(camera.focal_length))
  radii_mm = np.append(np.asarray(bone_radii_mm, np.float64), [FOOT_RADIUS_MM] * 2)
  radii_px = focal * radii_mm[:, None] / segments[..., 2] * scale
  trunk = np.append(np.all(BONE_COLORS == _TRUNK, axis=-1), [False, False])
  depths = segments[..., 2] + _TRUNK_DEPTH_BIAS_MM * trunk[:, None]
  zbuf = np.full((out_size, out_size), np.inf, np.float32)
  for bone in np.argsort(-segments[..., 2].mean(-1)):  # far to near
    _draw_capsule(image, zbuf, ends[bone, 0].astype(np.float32),
                  ends[bone, 1].astype(np.float32), *map(float, radii_px[bone]),
                  *map(float, depths[bone]), float(radii_mm[bone]),
                  colors[bone].astype(np.float32))
  # Outside the camera's frame the crop is black, as when cropping a real frame.
  xs, ys = _pixel_grid(box, out_size)
  width, height = camera.image_size
  inside = ((ys >= 0) & (ys < height))[:, None] & ((xs >= 0) & (xs < width))[None, :]
  image *= inside[..., None]
  return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_sample_grid(images, path, titles=None, columns=6):
  """Writes uint8 images (N, H, W, 3) as a grid PNG at `path`, with optional titles."""
  images = list(images)
  rows = max(1, -(-len(images) // columns))
  cols = min(columns, max(1, len(images)))
  fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
  for index, ax in enumerate(axes.flat):
    ax.axis('off')
    if index < len(images):
      ax.imshow(images[index])
      if titles is not None:
        ax.set_title(titles[index], fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
