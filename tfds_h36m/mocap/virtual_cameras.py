"""Virtual cameras that film motion capture the way people film people.

Motion capture carries no images, so `sample_cameras` draws pinhole cameras from
`CameraDistribution` (phones to telephoto, landscape or portrait, eye level or above
or below it) and frames each one so that every joint of every frame stays in the image.
The cameras live in the poses' own y-up world (mm), so `cameras.world_to_camera` and
`cameras.project` apply to the poses directly. Numpy only.
"""

import dataclasses

import numpy as np

from tfds_h36m import cameras

_PROXY_FRAMES = 64  # frames in the reduced point set the aim pitch is solved on
_BISECTIONS = 20  # halvings of the aim pitch bracket (< 0.001 degrees)
_JITTER_SCALES = (1.0, 0.5, 0.25, 0.0)  # pitch perturbation tries, until one frames
_MAX_ATTEMPTS = 100  # draws per camera before giving up on an unframeable sequence


@dataclasses.dataclass(frozen=True)
class CameraDistribution:
  """How virtual cameras are drawn; every (low, high) range is sampled uniformly.

  Attributes:
    hfov_deg: horizontal field of view in degrees, from telephoto to wide phone lenses. Its
      upper end is lowered per camera to what keeps the whole image unclipped (see
      `sample_cameras`).
    resolutions: landscape (width, height) image sizes in px, one drawn uniformly.
    portrait_prob: probability of swapping width and height (a phone held upright).
    principal_offset: the principal point lies within +- this fraction of the width and
      height from the image centre.
    height_m: camera height above the floor, m.
    pitch_std_deg: std of the pitch perturbation away from aiming at the person, degrees;
      halved, then dropped, where it would push the person out of the frame.
    roll_std_deg: std of the roll about the optical axis, degrees.
    angle_clip_deg: the pitch perturbation and the roll are clipped to +- this, degrees.
    max_pitch_deg: steepest aim up or down, degrees; a camera too high or too low to reach
      its height at this pitch moves farther away instead.
    distance_factor: the distance is the smallest one that frames the sequence times a
      factor from this range, so people do not always fill the frame.
    margin: every joint stays this fraction of the width (height) inside each image side.
    min_depth_mm: every joint stays at least this far in front of the camera, mm.
  """
  hfov_deg: tuple = (25.0, 90.0)
  resolutions: tuple = ((1280, 720), (1920, 1080), (2560, 1440), (3840, 2160))
  portrait_prob: float = 0.3
  principal_offset: float = 0.02
  height_m: tuple = (0.2, 2.5)
  pitch_std_deg: float = 4.0
  roll_std_deg: float = 4.0
  angle_clip_deg: float = 10.0
  max_pitch_deg: float = 75.0
  distance_factor: tuple = (1.0, 1.8)
  margin: float = 0.05
  min_depth_mm: float = 500.0

  def __post_init__(self):
    ranges = (self.hfov_deg, self.height_m, self.distance_factor)
    if any(low > high for low, high in ranges) or self.distance_factor[0] < 1:
      raise ValueError(f'Bad ranges (low > high, or distance factor < 1) in {self}')
    if not 0 <= self.portrait_prob <= 1 or self.margin + self.principal_offset >= 0.5:
      raise ValueError(f'Need 0 <= portrait_prob <= 1, margin + offset < 0.5: {self}')
    if self.max_pitch_deg + self.angle_clip_deg >= 90:
      raise ValueError(f'Pitch can reach 90 degrees (looking straight down): {self}')
    # Every drawable resolution and orientation must allow the narrowest hfov unclipped.
    drawn = [s for s, p in ((False, 1 - self.portrait_prob), (True, self.portrait_prob)) if p]
    for size in self.resolutions:
      for portrait in drawn:
        width = size[1] if portrait else size[0]
        worst = max(size) * (0.5 + self.principal_offset)
        if np.degrees(2 * np.arctan(width / 2 / worst)) < self.hfov_deg[0]:
          raise ValueError(f'No hfov >= {self.hfov_deg[0]} keeps {size} unclipped')


@dataclasses.dataclass(frozen=True)
class _Sequence:
  """A sequence reduced to what framing needs, all points relative to `centre` (mm)."""
  points: np.ndarray  # (3, N) every joint of every frame, transposed for fast reductions
  proxy: np.ndarray  # (3, M) evenly spaced frames plus the extreme joints
  centre: np.ndarray  # (3,) centre of the bounding box, world mm
  floor: float  # lowest world y, mm


@dataclasses.dataclass(frozen=True)
class _Shot:
  """The random extrinsic choices of one camera."""
  height: float  # camera centre world y, mm
  yaw: float  # direction of view about world up, radians
  pitch_jitter: float  # radians, added to the aim pitch
  roll: float  # radians
  factor: float  # distance over the smallest framing distance
  place: np.ndarray  # (2,) fractions of the horizontal / vertical slack the person sits at


@dataclasses.dataclass(frozen=True)
class _Extents:
  """Extremes of the sequence for one orientation (mm), which the framing is linear in.

  A camera backed off by d along its optical axis from the centre and shifted by s along
  its own x, y axes keeps every point inside the margins (normalised bounds lo, hi) iff
  s1 - hi d <= s <= s2 - lo d, and at least min depth in front iff zmin + d >= min depth.
  """
  s1: np.ndarray  # (2,) max of x - hi z, y - hi z over the points
  s2: np.ndarray  # (2,) min of x - lo z, y - lo z over the points
  zmin: float


def _prepare(pose_world_mm):
  """Centres the sequence and builds the proxy; validates shape and values."""
  pose = np.asarray(pose_world_mm, np.float64)
  if pose.ndim != 3 or pose.shape[-1] != 3 or not pose.size:
    raise ValueError(f'Expected a non-empty (T, J, 3) pose, got shape {pose.shape}')
  if not np.all(np.isfinite(pose)):
    raise ValueError('Pose has non-finite coordinates')
  points = pose.reshape(-1, 3).T.copy()
  low, high = points.min(axis=1), points.max(axis=1)
  centre = (low + high) / 2
  points -= centre[:, None]
  frames = np.linspace(0, len(pose) - 1, min(len(pose), _PROXY_FRAMES)).round().astype(int)
  extremes = np.concatenate([points.argmin(axis=1), points.argmax(axis=1)])
  proxy = np.concatenate([(pose[np.unique(frames)] - centre).reshape(-1, 3).T,
                          points[:, extremes]], axis=1)
  return _Sequence(points, proxy, centre, float(low[1]))


def _draw_intrinsics(rng, dist):
  """Focal length (px), principal point (2,) px and (width, height) px of one camera.

  The hfov range is truncated so that the image's farthest edge from the principal point
  has a normalised coordinate <= 1: nothing in the image reaches `cameras.project`'s clip.
  """
  width, height = dist.resolutions[rng.integers(len(dist.resolutions))]
  if rng.random() < dist.portrait_prob:
    width, height = height, width
  size = np.array([width, height], np.float64)
  offset = dist.principal_offset
  center = size * (0.5 + rng.uniform(-offset, offset, 2))
  extent = np.max(np.maximum(center, size - center))
  widest = np.degrees(2 * np.arctan(width / 2 / extent))
  hfov = rng.uniform(dist.hfov_deg[0], min(dist.hfov_deg[1], widest))
  focal = width / 2 / np.tan(np.radians(hfov) / 2)
  return focal, center, (int(width), int(height))


def _draw_shot(rng, dist, floor):
  """The extrinsic choices of one camera (see `_Shot`)."""
  clip = np.radians(dist.angle_clip_deg)
  pitch_std, roll_std = np.radians([dist.pitch_std_deg, dist.roll_std_deg])
  return _Shot(
      height=floor + 1000 * rng.uniform(*dist.height_m),
      yaw=rng.uniform(0, 2 * np.pi),
      pitch_jitter=float(np.clip(rng.normal(0, pitch_std), -clip, clip)),
      roll=float(np.clip(rng.normal(0, roll_std), -clip, clip)),
      factor=rng.uniform(*dist.distance_factor),
      place=rng.random(2))


def _rotation(yaw, pitch, roll):
  """Camera-to-world R, columns the camera's x (right), y (down), z (forward) in y-up world.

  Yaw turns the view about world up, pitch > 0 looks down, roll turns about the axis.
  """
  ahead = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
  up = np.array([0.0, 1.0, 0.0])
  forward = np.cos(pitch) * ahead - np.sin(pitch) * up
  down = -np.sin(pitch) * ahead - np.cos(pitch) * up
  right = np.array([-np.cos(yaw), 0.0, np.sin(yaw)])
  cos, sin = np.cos(roll), np.sin(roll)
  return np.stack([cos * right + sin * down, cos * down - sin * right, forward], axis=1)


def _extents(points, rot, lo, hi):
  """The `_Extents` of centred points (3, N) mm seen with orientation `rot`."""
  right, down, forward = rot.T
  values = np.stack([right - hi[0] * forward, down - hi[1] * forward,
                     right - lo[0] * forward, down - lo[1] * forward, forward]) @ points
  return _Extents(values[:2].max(axis=1), values[2:4].min(axis=1), float(values[4].min()))


def _smallest_distance(ext, lo, hi, min_depth):
  """Shortest distance along the axis (mm) at which some shift frames every point."""
  return max(np.max((ext.s1 - ext.s2) / (hi - lo)), min_depth - ext.zmin)


def _height_error(pitch, seq, shot, lo, hi, dist):
  """Camera world y minus the drawn height (mm), framing the proxy at `pitch` radians."""
  rot = _rotation(shot.yaw, pitch, shot.roll)
  ext = _extents(seq.proxy, rot, lo, hi)
  d = shot.factor * _smallest_distance(ext, lo, hi, dist.min_depth_mm)
  shift = (1 - shot.place) * (ext.s1 - hi * d) + shot.place * (ext.s2 - lo * d)
  return seq.centre[1] - d * rot[1, 2] + shift @ rot[1, :2] - shot.height


def _aim_pitch(seq, shot, lo, hi, dist):
  """Pitch (radians) at which the framed camera sits at the drawn height, by bisection.

  The pitch is clamped to +- max_pitch_deg; the exact placement then corrects the distance.
  """
  low, high = np.radians([-dist.max_pitch_deg, dist.max_pitch_deg])
  if _height_error(low, seq, shot, lo, hi, dist) >= 0:
    return low
  if _height_error(high, seq, shot, lo, hi, dist) <= 0:
    return high
  for _ in range(_BISECTIONS):
    mid = (low + high) / 2
    if _height_error(mid, seq, shot, lo, hi, dist) < 0:
      low = mid
    else:
      high = mid
  return (low + high) / 2


def _place(seq, rot, shot, lo, hi, dist):
  """Camera centre (3,) world mm that frames every point from the drawn height.

  With the orientation fixed, the horizontal shift at fraction place[0] of its slack and the
  vertical shift that reaches the drawn height are linear in the distance d, so every
  framing constraint is c d >= e and the feasible d is an interval. The target d, the drawn
  factor times the smallest framing distance, is clipped into it.

  Returns:
    (centre, whether d is the target), or (None, False) when no d frames every point.
  """
  ext = _extents(seq.points, rot, lo, hi)
  u = shot.place[0]
  sx0, sx1 = (1 - u) * ext.s1[0] + u * ext.s2[0], -(1 - u) * hi[0] - u * lo[0]
  y_right, y_down, y_forward = rot[1]
  sy0 = (shot.height - seq.centre[1] - sx0 * y_right) / y_down
  sy1 = (y_forward - sx1 * y_right) / y_down
  c = np.array([1.0, 1.0, sy1 + hi[1], -sy1 - lo[1]])
  e = np.array([(ext.s1[0] - ext.s2[0]) / (hi[0] - lo[0]), dist.min_depth_mm - ext.zmin,
                ext.s1[1] - sy0, sy0 - ext.s2[1]])
  lower, upper = c > 1e-12, c < -1e-12
  if np.any(e[~(lower | upper)] > 0):
    return None, False
  d_low = np.max(e[lower] / c[lower])
  d_high = np.min(e[upper] / c[upper], initial=np.inf)
  if d_low > d_high:
    return None, False
  target = shot.factor * _smallest_distance(ext, lo, hi, dist.min_depth_mm)
  d = np.clip(target, d_low, d_high)
  return seq.centre + rot @ np.array([sx0 + sx1 * d, sy0 + sy1 * d, -d]), d == target


def _sample_camera(seq, rng, dist, camera_id):
  """One framed camera; redraws the rare shots whose geometry cannot frame the sequence.

  The pitch perturbation turns the camera away from the aim, moving the person up or down
  in the image; it is halved, then dropped, while it would push them out of the frame at
  the drawn distance. Without it the distance may leave its target (clamped aim pitch).
  """
  for _ in range(_MAX_ATTEMPTS):
    focal, center, size = _draw_intrinsics(rng, dist)
    size_px = np.array(size, np.float64)
    lo = (dist.margin * size_px - center) / focal
    hi = ((1 - dist.margin) * size_px - center) / focal
    shot = _draw_shot(rng, dist, seq.floor)
    aim = _aim_pitch(seq, shot, lo, hi, dist)
    for scale in _JITTER_SCALES:
      rot = _rotation(shot.yaw, aim + scale * shot.pitch_jitter, shot.roll)
      position, on_target = _place(seq, rot, shot, lo, hi, dist)
      if position is not None and (on_target or not scale):
        return cameras.Camera(
            camera_id=camera_id, focal_length=np.array([focal, focal]), center=center,
            radial_distortion=np.zeros(3), tangential_distortion=np.zeros(2),
            image_size=size, rotation=rot, translation=position)
  raise RuntimeError(f'No camera framed the sequence in {_MAX_ATTEMPTS} draws')


def sample_cameras(pose_world_mm, num_cameras, rng, distribution=CameraDistribution()):
  """Draws `num_cameras` virtual cameras that each film the whole sequence.

  Per camera: a resolution (portrait with probability portrait_prob), principal point
  and hfov give f = (width / 2) / tan(hfov / 2) px, square pixels, no distortion. Then a
  height above the floor (the sequence's lowest y), a yaw, a roll and a placement of the
  person within the frame's slack. The pitch is the one at which the camera, aimed at the
  person so placed and backed off to distance_factor times the smallest distance that
  keeps every joint inside the margins and min_depth_mm in front, sits at the drawn
  height (clamped to +- max_pitch_deg). The pitch perturbation is added on top (halved,
  then dropped, where it would push the person out of the frame at that distance) and an
  exact solve on all joints settles the distance and the vertical shift that keep the drawn
  height; the rare draws it cannot frame are redrawn.

  Clipping: `cameras.project` clips normalised coordinates to [-1, 1], so in-frame points
  are never clipped only if tan of each half field of view (measured from the principal
  point to the farthest image edge) stays <= 1. This holds for every returned camera: the
  hfov is drawn uniformly from its range truncated to that limit (exactly equivalent to
  resampling it), which caps portrait cameras at 56.8 to 58.7 degrees and landscape ones
  at 87.7 to 90 degrees, depending on the principal point.

  Args:
    pose_world_mm: (T, J, 3) one sequence's joints in world mm, y up; any T >= 1, J >= 1.
    num_cameras: how many cameras to draw.
    rng: np.random.Generator; the result is a deterministic function of its state.
    distribution: the `CameraDistribution` to draw from.

  Returns:
    A list of `cameras.Camera`, ids 'virtual_0', 'virtual_1', ..., in the poses' world.
  """
  seq = _prepare(pose_world_mm)
  return [_sample_camera(seq, rng, distribution, f'virtual_{k}') for k in range(num_cameras)]


def describe(distribution=CameraDistribution()):
  """A few lines describing the camera distribution, for the dataset's documentation."""
  d = distribution
  sizes = ', '.join(f'{w}x{h}' for w, h in d.resolutions)
  return '\n'.join([
      'Virtual cameras, drawn per sequence from a seeded distribution (ranges uniform):',
      f'- hfov {d.hfov_deg[0]:g}-{d.hfov_deg[1]:g} deg (capped so the whole image stays '
      'within normalised coordinates of +-1); square pixels, no distortion;',
      f'- {sizes} px, portrait with probability {d.portrait_prob:g}; principal point '
      f'within +-{100 * d.principal_offset:g}% of the image centre;',
      f'- {d.height_m[0]:g}-{d.height_m[1]:g} m above the floor, any yaw, aimed at the '
      f'person; pitch perturbation ~ N(0, {d.pitch_std_deg:g} deg) and roll ~ '
      f'N(0, {d.roll_std_deg:g} deg), both clipped to +-{d.angle_clip_deg:g} deg;',
      f'- every joint of every frame >= {100 * d.margin:g}% inside each image side and '
      f'>= {d.min_depth_mm:g} mm in front; distance {d.distance_factor[0]:g}-'
      f'{d.distance_factor[1]:g} x the smallest such, person anywhere the slack allows.',
  ])
