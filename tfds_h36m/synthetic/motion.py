"""Synthetic Human3.6M motion: per-subject skeletons moving through action archetypes.

A pose is a set of joint angles (degrees) of a small kinematic model: a pelvis
root frame (heading, tilt, roll), a two-bone spine with a twist, a neck, and
limbs with a ball joint (flexion, abduction, axial rotation) and a hinge (knee,
elbow). Angles are smooth functions of time around an archetype's mean pose,
clamped smoothly into JOINT_LIMITS and blended back towards the archetype's rest
pose wherever limb capsules would interpenetrate. Forward kinematics then gives
world-frame joints (mm, z up) with the feet on the floor, placed where all the
calibrated cameras see the whole body.
"""

import dataclasses
import functools
from typing import Callable
import zlib

import numpy as np

from tfds_h36m import cameras
from tfds_h36m import skeleton

# Mean adult bone lengths (mm) in skeleton.BONES order: the usual Human3.6M proportions.
MEAN_BONE_LENGTHS_MM = np.array([
    133.0, 443.0, 454.0,  # pelvis-RHip, RHip-RKnee, RKnee-RAnkle
    133.0, 443.0, 454.0,  # pelvis-LHip, LHip-LKnee, LKnee-LAnkle
    233.0, 257.0, 121.0, 115.0,  # pelvis-Spine, Spine-Thorax, Thorax-Neck, Neck-Head
    151.0, 279.0, 252.0,  # Thorax-LShoulder, LShoulder-LElbow, LElbow-LWrist
    151.0, 279.0, 252.0,  # Thorax-RShoulder, RShoulder-RElbow, RElbow-RWrist
])
# Bones whose lengths vary together between subjects; left and right share a group.
_BONE_GROUPS = (0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9)

# Capsule radius (mm) of each bone, in skeleton.BONES order.
BONE_RADII_MM = np.array([
    62.0, 72.0, 50.0,  # right hip girdle, thigh, shin
    62.0, 72.0, 50.0,  # left hip girdle, thigh, shin
    115.0, 100.0, 50.0, 95.0,  # abdomen, chest, neck, head
    55.0, 42.0, 36.0,  # left shoulder girdle, upper arm, forearm
    55.0, 42.0, 36.0,  # right shoulder girdle, upper arm, forearm
])
HEAD_BONE = 9
# The head capsule's axis spans this fraction of the Neck(nose)-Head(top) bone, so
# that with its radius it covers chin to crown instead of overhanging the crown.
HEAD_CAPSULE_SPAN = (0.2, 0.5)

# Non-adjacent capsule pairs that touch by construction, whatever the angles, and
# so are not checked for clearance (bone indices in skeleton.BONES order):
_TOUCHING_PAIRS = (
    # The head capsule rests on the chest and both shoulder girdles: the neck
    # bone is shorter than their radii together.
    (7, 9), (9, 10), (9, 13),
    # A thigh's root sits in the hip socket, inside the abdomen capsule and
    # against the other side's hip girdle (hips 133 mm from the pelvis centre).
    (1, 3), (1, 6), (0, 4), (4, 6),
)


def _clearance_pairs():
  """Bone pairs (i, j), i < j, checked for clearance: no shared joint, not touching."""
  pairs = []
  for i, bone_i in enumerate(skeleton.BONES):
    for j in range(i + 1, len(skeleton.BONES)):
      if not set(bone_i) & set(skeleton.BONES[j]) and (i, j) not in _TOUCHING_PAIRS:
        pairs.append((i, j))
  return np.array(pairs)


CLEARANCE_PAIRS = _clearance_pairs()

# Height (mm) of the ankle joints above the floor when both feet are down. The
# body rests on a soft minimum of the two ankles (softness FOOT_SOFTNESS_MM), so
# that weight passes smoothly from foot to foot: a lone supporting ankle sits up
# to FOOT_SOFTNESS_MM * ln 2 (28 mm) lower.
ANKLE_HEIGHT_MM = 90.0
FOOT_SOFTNESS_MM = 40.0
# Floor point (world mm) around which bodies are placed: the centre of the largest
# floor disc from which a 2 m tall body stays inside all 28 calibrated views (the
# 4 cameras of the 7 subjects, 20 px margin), found by a search on a 100 mm grid.
VOLUME_CENTER_MM = np.array([250.0, 900.0])
IMAGE_MARGIN_PX = 20.0

# Neutral direction of the Thorax-Neck(nose) bone and the Neck-Head(top) bone,
# forward of the chest's up axis (degrees): the nose is in front of the neck.
NECK_OFFSET_DEG = 25.0
HEAD_OFFSET_DEG = -15.0

_SIDE_LIMITS = {
    'hip_flexion': (-25.0, 125.0),  # thigh forward of the pelvis' down axis
    'hip_abduction': (-3.0, 40.0),  # thigh outward; little adduction keeps legs apart
    'hip_rotation': (-30.0, 35.0),  # internal (+) / external (-), about the thigh
    'knee_flexion': (0.0, 150.0),  # no hyperextension
    'shoulder_flexion': (-45.0, 165.0),  # upper arm forward of the chest's down axis
    'shoulder_abduction': (10.0, 80.0),  # upper arm outward; keeps the arm off the body
    'shoulder_rotation': (-75.0, 90.0),  # internal (+) / external (-), about the arm
    'elbow_flexion': (0.0, 150.0),  # no hyperextension
}
# Limits (degrees) of every angle of the kinematic model; `l_`/`r_` name the side.
JOINT_LIMITS = {
    'pelvis_tilt': (-15.0, 45.0),  # forward lean of the pelvis from upright
    'pelvis_roll': (-10.0, 10.0),  # sideways tilt of the hip line
    'spine_flexion': (-15.0, 45.0),  # chest forward of the pelvis' up axis
    'spine_lateral': (-20.0, 20.0),  # chest sideways (+ left)
    'spine_twist': (-35.0, 35.0),  # chest rotation about the spine (+ to the left)
    'neck_flexion': (-35.0, 45.0),  # head forward of its neutral carriage
    'neck_lateral': (-25.0, 25.0),  # head sideways (+ left)
    **{f'{side}_{name}': limits for side in 'lr' for name, limits in _SIDE_LIMITS.items()},
}

# Neutral standing pose (degrees) and the spread (std, degrees) of the slow random
# wander every archetype adds to it.
_NEUTRAL = {
    'pelvis_tilt': 3.0, 'pelvis_roll': 0.0, 'spine_flexion': 0.0, 'spine_lateral': 0.0,
    'spine_twist': 0.0, 'neck_flexion': 5.0, 'neck_lateral': 0.0,
    'hip_flexion': 5.0, 'hip_abduction': 4.0, 'hip_rotation': 5.0, 'knee_flexion': 4.0,
    'shoulder_flexion': 5.0, 'shoulder_abduction': 18.0, 'shoulder_rotation': 15.0,
    'elbow_flexion': 12.0,
}
_WANDER = {
    'pelvis_tilt': 2.0, 'pelvis_roll': 1.5, 'spine_flexion': 3.0, 'spine_lateral': 2.0,
    'spine_twist': 5.0, 'neck_flexion': 6.0, 'neck_lateral': 4.0,
    'hip_flexion': 2.0, 'hip_abduction': 1.5, 'hip_rotation': 4.0, 'knee_flexion': 2.0,
    'shoulder_flexion': 4.0, 'shoulder_abduction': 3.0, 'shoulder_rotation': 6.0,
    'elbow_flexion': 5.0,
}


def subject_bone_lengths(subject):
  """Bone lengths (16,) mm of `subject`, in skeleton.BONES order.

  Deterministic per subject name: an overall scale (+-6%) times per-segment
  factors (+-3%), the same for left and right.
  """
  rng = np.random.default_rng(zlib.crc32(subject.encode('utf-8')))
  scale = rng.uniform(0.94, 1.06)
  segment = rng.uniform(0.97, 1.03, size=max(_BONE_GROUPS) + 1)
  return MEAN_BONE_LENGTHS_MM * scale * segment[list(_BONE_GROUPS)]


# ---------------------------------------------------------------------------
# Vector helpers. Vectors are (..., 3); angles are radians of shape (..., 1).


def _unit(v):
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a, b):
  return np.sum(a * b, axis=-1, keepdims=True)


def _rotate(v, axis, angle):
  """Rotates `v` about the unit `axis` by `angle` (Rodrigues)."""
  cos, sin = np.cos(angle), np.sin(angle)
  return v * cos + np.cross(axis, v) * sin + axis * _dot(axis, v) * (1 - cos)


def _swing(a, b, v):
  """Applies to `v` the smallest rotation that takes unit `a` to unit `b`."""
  k = np.cross(a, b)
  return v + np.cross(k, v) + np.cross(k, np.cross(k, v)) / (1 + _dot(a, b))


def _signed_angle(a, b, axis):
  """Angle (rad) from `a` to `b` about `axis`."""
  return np.arctan2(_dot(axis, np.cross(a, b)), _dot(a, b))


def _direction(forward, side, neutral, flexion, abduction):
  """Unit vector `flexion` towards `forward` and `abduction` towards `side` from `neutral`."""
  return (np.sin(flexion) * np.cos(abduction) * forward + np.sin(abduction) * side
          + np.cos(flexion) * np.cos(abduction) * neutral)


# ---------------------------------------------------------------------------
# Forward kinematics and its inverse.


def _limb(root, forward, side, neutral, hinge0, sign, ball, twist, hinge, lengths):
  """Middle and end joints of a ball-joint + hinge limb (hip-knee or shoulder-elbow).

  `ball` = (flexion, abduction) place the first bone; the hinge axis is `hinge0`
  carried along by the swing and turned by `sign * twist` about the first bone;
  the second bone is the first one turned by `hinge` about that axis.
  """
  d1 = _direction(forward, side, neutral, *ball)
  axis = _rotate(_swing(neutral, d1, hinge0), d1, sign * twist)
  d2 = _rotate(d1, axis, hinge)
  mid = root + lengths[0] * d1
  return mid, mid + lengths[1] * d2


def _forward_kinematics(angles, bone_lengths):
  """Joints (T, 17, 3) mm of poses given by `angles` (name -> (T,) degrees).

  The pelvis is at the origin and the heading is +x (z up).
  """
  rad = {name: np.radians(np.asarray(value, np.float64))[:, None]
         for name, value in angles.items()}
  lengths = np.asarray(bone_lengths, np.float64)
  num_frames = len(rad['pelvis_tilt'])
  ex, ey, ez = (np.broadcast_to(e, (num_frames, 3)) for e in np.eye(3))
  # Pelvis frame (forward, left, up): tilt about y, then roll about x.
  f, l, u = (_rotate(_rotate(e, ey, rad['pelvis_tilt']), ex, rad['pelvis_roll'])
             for e in (ex, ey, ez))
  joints = np.zeros((num_frames, skeleton.NUM_JOINTS, 3))
  joints[:, 1] = -lengths[0] * l
  joints[:, 4] = lengths[3] * l
  joints[:, 7] = lengths[6] * u
  # Chest frame: the Spine-Thorax bone bends from the pelvis' up axis, then twists.
  u_t = _direction(f, l, u, rad['spine_flexion'], rad['spine_lateral'])
  f_t = _rotate(_swing(u, u_t, f), u_t, rad['spine_twist'])
  l_t = _rotate(_swing(u, u_t, l), u_t, rad['spine_twist'])
  joints[:, 8] = joints[:, 7] + lengths[7] * u_t
  neck_lateral = rad['neck_lateral']
  neck_flexion = rad['neck_flexion']
  joints[:, 9] = joints[:, 8] + lengths[8] * _direction(
      f_t, l_t, u_t, neck_flexion + np.radians(NECK_OFFSET_DEG), neck_lateral)
  joints[:, 10] = joints[:, 9] + lengths[9] * _direction(
      f_t, l_t, u_t, neck_flexion + np.radians(HEAD_OFFSET_DEG), neck_lateral)
  joints[:, 11] = joints[:, 8] + lengths[10] * l_t
  joints[:, 14] = joints[:, 8] - lengths[13] * l_t
  for side, sign, (hip, knee, ankle), (shoulder, elbow, wrist) in (
      ('l', 1.0, (4, 5, 6), (11, 12, 13)), ('r', -1.0, (1, 2, 3), (14, 15, 16))):
    joints[:, knee], joints[:, ankle] = _limb(
        joints[:, hip], f, sign * l, -u, l, sign,
        (rad[f'{side}_hip_flexion'], rad[f'{side}_hip_abduction']),
        rad[f'{side}_hip_rotation'], rad[f'{side}_knee_flexion'],
        lengths[[knee - 1, ankle - 1]])
    joints[:, elbow], joints[:, wrist] = _limb(
        joints[:, shoulder], f_t, sign * l_t, -u_t, -l_t, sign,
        (rad[f'{side}_shoulder_flexion'], rad[f'{side}_shoulder_abduction']),
        rad[f'{side}_shoulder_rotation'], rad[f'{side}_elbow_flexion'],
        lengths[[elbow - 1, wrist - 1]])
  return joints


# A hinge bent less than this leaves the axial rotation of its limb unmeasurable.
_MIN_BEND_FOR_TWIST_DEG = 15.0


def _measure_limb(root, mid, end, forward, side, neutral, hinge0, sign):
  """(flexion, abduction, rotation, hinge flexion) in rad; inverse of `_limb`."""
  d1 = _unit(mid - root)
  d2 = _unit(end - mid)
  flexion = np.arctan2(_dot(d1, forward), _dot(d1, neutral))
  abduction = np.arcsin(np.clip(_dot(d1, side), -1, 1))
  axis_ref = _swing(neutral, d1, hinge0)
  normal = np.cross(d1, d2)
  sin_bend = np.linalg.norm(normal, axis=-1, keepdims=True)
  bend = np.arctan2(sin_bend, _dot(d1, d2))
  bend = np.where(_dot(normal, axis_ref) >= 0, bend, -bend)
  with np.errstate(invalid='ignore', divide='ignore'):
    twist = sign * _signed_angle(axis_ref, normal / sin_bend, d1)
  twist = np.where(np.abs(bend) > np.radians(_MIN_BEND_FOR_TWIST_DEG), twist, np.nan)
  return flexion, abduction, twist, bend


def measure_joint_angles(pose_3d):
  """The model's joint angles (degrees) measured back from joint positions.

  Args:
    pose_3d: (T, 17, 3) or (17, 3) joints in mm, z up.

  Returns:
    name -> (T,) (or scalar) degrees, one entry per JOINT_LIMITS name. An axial
    limb rotation is NaN where its hinge is nearly straight (unobservable).
  """
  p = np.asarray(pose_3d, np.float64)
  ez = np.array([0.0, 0.0, 1.0])
  l = _unit(p[..., 4, :] - p[..., 1, :])
  u = _unit(p[..., 7, :] - p[..., 0, :])
  f = np.cross(l, u)
  heading_forward = np.cross(_unit(l * [1.0, 1.0, 0.0]), ez)
  out = {
      'pelvis_tilt': np.arcsin(np.clip(_dot(u, heading_forward), -1, 1)),
      'pelvis_roll': np.arcsin(np.clip(l[..., 2:], -1, 1)),
  }
  u_t = _unit(p[..., 8, :] - p[..., 7, :])
  l_t = _unit(p[..., 11, :] - p[..., 14, :])
  f_t = np.cross(l_t, u_t)
  out['spine_flexion'] = np.arctan2(_dot(u_t, f), _dot(u_t, u))
  out['spine_lateral'] = np.arcsin(np.clip(_dot(u_t, l), -1, 1))
  out['spine_twist'] = _signed_angle(_swing(u, u_t, l), l_t, u_t)
  d_neck = _unit(p[..., 9, :] - p[..., 8, :])
  out['neck_flexion'] = (np.arctan2(_dot(d_neck, f_t), _dot(d_neck, u_t))
                         - np.radians(NECK_OFFSET_DEG))
  out['neck_lateral'] = np.arcsin(np.clip(_dot(d_neck, l_t), -1, 1))
  for side, sign, (hip, knee, ankle), (shoulder, elbow, wrist) in (
      ('l', 1.0, (4, 5, 6), (11, 12, 13)), ('r', -1.0, (1, 2, 3), (14, 15, 16))):
    leg = _measure_limb(p[..., hip, :], p[..., knee, :], p[..., ankle, :],
                        f, sign * l, -u, l, sign)
    arm = _measure_limb(p[..., shoulder, :], p[..., elbow, :], p[..., wrist, :],
                        f_t, sign * l_t, -u_t, -l_t, sign)
    for names, values in ((('hip_flexion', 'hip_abduction', 'hip_rotation',
                            'knee_flexion'), leg),
                          (('shoulder_flexion', 'shoulder_abduction',
                            'shoulder_rotation', 'elbow_flexion'), arm)):
      for name, value in zip(names, values):
        out[f'{side}_{name}'] = value
  return {name: np.degrees(value[..., 0]) for name, value in out.items()}


# ---------------------------------------------------------------------------
# Capsules and clearance.


def capsule_segments(pose_3d):
  """Capsule axes (..., 16, 2, 3) mm, one per bone in skeleton.BONES order.

  Each axis is its bone, except the head's, which spans HEAD_CAPSULE_SPAN of it.
  """
  p = np.asarray(pose_3d, np.float64)
  start = p[..., [parent for parent, _ in skeleton.BONES], :]
  end = p[..., [child for _, child in skeleton.BONES], :]
  neck, head = start[..., HEAD_BONE, :], end[..., HEAD_BONE, :]
  lo, hi = HEAD_CAPSULE_SPAN
  start[..., HEAD_BONE, :] = neck + lo * (head - neck)
  end[..., HEAD_BONE, :] = neck + hi * (head - neck)
  return np.stack([start, end], axis=-2)


def segment_distance(p1, q1, p2, q2):
  """Distance between 3D segments p1-q1 and p2-q2 (broadcast over leading axes)."""
  p1, q1, p2, q2 = (np.asarray(v, np.float64) for v in (p1, q1, p2, q2))
  d1, d2, r = q1 - p1, q2 - p2, p1 - p2
  a, e = np.sum(d1 * d1, -1), np.sum(d2 * d2, -1)
  b, c, f = np.sum(d1 * d2, -1), np.sum(d1 * r, -1), np.sum(d2 * r, -1)
  denom = a * e - b * b
  parallel = denom < 1e-9 * a * e
  s = np.clip((b * f - c * e) / np.where(parallel, 1.0, denom), 0.0, 1.0)
  s = np.where(parallel, 0.0, s)
  t = (b * s + f) / e
  # Where the closest point on the second segment falls off it, clamp and redo s.
  s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
  t = np.clip(t, 0.0, 1.0)
  closest = (p1 + d1 * s[..., None]) - (p2 + d2 * t[..., None])
  return np.linalg.norm(closest, axis=-1)


def capsule_clearance_mm(pose_3d, bone_radii_mm=BONE_RADII_MM):
  """Clearance (..., num pairs) mm of each CLEARANCE_PAIRS capsule pair; < 0 overlaps."""
  seg = capsule_segments(pose_3d)
  i, j = CLEARANCE_PAIRS[:, 0], CLEARANCE_PAIRS[:, 1]
  dist = segment_distance(seg[..., i, 0, :], seg[..., i, 1, :],
                          seg[..., j, 0, :], seg[..., j, 1, :])
  radii = np.asarray(bone_radii_mm, np.float64)
  return dist - radii[i] - radii[j]


def min_capsule_clearance_mm(pose_3d, bone_radii_mm=BONE_RADII_MM):
  """Smallest clearance (mm) between non-adjacent capsules over all frames.

  Bones sharing a joint are adjacent and never checked; neither are the few
  pairs that touch by construction (head on the chest and shoulders, thigh
  roots in the pelvis; see _TOUCHING_PAIRS). Negative means interpenetration.
  """
  return float(np.min(capsule_clearance_mm(pose_3d, bone_radii_mm)))


# ---------------------------------------------------------------------------
# Smooth signals.


class _Clock:
  """Frame times of one sequence and the random signals built on them."""

  def __init__(self, num_frames, fps, rng, bone_lengths):
    self.t = np.arange(num_frames) / fps  # s
    self.fps = fps
    self.rng = rng
    self.leg_mm = float(bone_lengths[1] + bone_lengths[2])

  def wander(self, std, freq_hz=(0.05, 0.3), terms=3):
    """Zero-mean smooth random signal: `terms` sinusoids of random frequency and phase."""
    freq = self.rng.uniform(*freq_hz, size=(terms, 1))
    phase = self.rng.uniform(0, 2 * np.pi, size=(terms, 1))
    return std * np.sqrt(2 / terms) * np.sin(2 * np.pi * freq * self.t + phase).sum(0)

  def pulses(self, period_s, duty, ramp_s=1.3, start=None):
    """Smooth on/off signal in [0, 1]: on for `duty` of each (jittered) period.

    Each switch is a smoothstep taking about `ramp_s` seconds; `start` is the
    phase (in periods) at t = 0, random by default.
    """
    start = self.rng.uniform() if start is None else start
    cycles = self.t / period_s + start + self.wander(0.05, (0.02, 0.06))
    ramp = min(ramp_s / period_s, duty, 1 - duty)
    frac = cycles % 1.0
    return _smoothstep(np.minimum(frac / ramp, (duty + ramp - frac) / ramp))


def _smoothstep(x):
  """0 below 0, 1 above 1, a C1 cubic in between."""
  x = np.clip(x, 0, 1)
  return x * x * (3 - 2 * x)


def _soft_clamp(x, lo, hi):
  """Smooth, monotonic squashing of `x` into (lo, hi); identity well inside."""
  k = min(4.0, (hi - lo) / 10)
  return lo + k * (np.logaddexp(0, (x - lo) / k) - np.logaddexp(0, (x - hi) / k))


def _soft_min(values, softness, axis=-1):
  """A smooth lower bound of the minimum of `values` along `axis`."""
  return -softness * np.logaddexp.reduce(-values / softness, axis=axis)


def _smooth_max(x, softness=0.1):
  """A smooth max(x, 0)."""
  return 0.5 * (x + np.sqrt(x * x + softness * softness))


# ---------------------------------------------------------------------------
# Archetypes: postures (legs, trunk, placement) with arm programmes on top.

_ARM_KEYS = ('shoulder_flexion', 'shoulder_abduction', 'shoulder_rotation', 'elbow_flexion')
# Arm poses (shoulder flexion, abduction, rotation, elbow flexion), degrees; the
# hand-to-head ones were solved for the wrist target with the capsules clear.
_ARM_POSES = {
    'hang': (5.0, 18.0, 15.0, 12.0),
    'ear': (99.0, 38.0, -27.0, 145.0),  # phone at the ear
    'mouth': (68.0, 14.0, 38.0, 120.0),  # hand in front of the mouth
    'camera': (77.0, 27.0, 22.0, 118.0),  # both hands in front of the face
    'wave': (135.0, 50.0, -50.0, 85.0),  # upper arm raised, forearm up
    'point': (80.0, 22.0, 10.0, 8.0),  # arm stretched forward
    'leash': (25.0, 14.0, 10.0, 40.0),  # hand forward at hip height
    'reach_down': (90.0, 16.0, 35.0, 30.0),  # crouched, hands low between the knees
    'carry': (10.0, 28.0, 40.0, 62.0),  # forearm forward, holding something
    'lap': (5.0, 18.0, 12.0, 90.0),  # seated, hands above the thighs
    'gesture': (30.0, 22.0, 20.0, 70.0),  # forearm forward, mid-air
    'pose': (50.0, 45.0, 10.0, 40.0),  # raised sideways for a posed stance
}
_SEATED = {
    'pelvis_tilt': -5.0, 'hip_flexion': 88.0, 'hip_abduction': 10.0, 'hip_rotation': 0.0,
    'knee_flexion': 92.0, 'spine_flexion': 12.0,
}
# Hip flexion is relative to the pelvis: a thigh's angle forward of the vertical
# is hip_flexion - pelvis_tilt (here 70 degrees, the shins 25 degrees forward).
_CROUCHED = {
    'pelvis_tilt': 35.0, 'hip_flexion': 105.0, 'hip_abduction': 20.0, 'knee_flexion': 95.0,
    'spine_flexion': 30.0, 'neck_flexion': 10.0,
}


@dataclasses.dataclass
class _Motion:
  """What an archetype drives: angles over time plus heading and placement.

  Attributes:
    angles: JOINT_LIMITS name -> (T,) degrees (not yet clamped).
    rest: name -> degrees, a pose with clear capsules to fall back to.
    heading: (T,) rad, rotation of the body about z (0 faces +x).
    xy: (T, 2) mm, floor position relative to VOLUME_CENTER_MM.
    anchor: 'pelvis' (xy is the pelvis) or 'feet' (xy is the ankles' midpoint).
  """
  angles: dict
  rest: dict
  heading: np.ndarray
  xy: np.ndarray
  anchor: str


def _expand(pose):
  """Per-side names (`l_`, `r_`) for the side-less keys of `pose`."""
  out = {}
  for name, value in pose.items():
    if name in JOINT_LIMITS:
      out[name] = value
    else:
      out[f'l_{name}'] = out[f'r_{name}'] = value
  return out


_REST_STANDING = _expand(_NEUTRAL)


def _neutral(clock):
  """Neutral standing angles with a per-sequence offset and a slow wander.

  The pelvis tilting forward or back turns the hips along, so that the thighs
  stay upright, and the spine half against it, so that the body keeps balance.
  """
  angles = {}
  for name, value in _REST_STANDING.items():
    std = _WANDER[name[2:] if name[:2] in ('l_', 'r_') else name]
    angles[name] = value + clock.rng.normal(0, std / 2) + clock.wander(std)
  tilt = angles['pelvis_tilt'] - _NEUTRAL['pelvis_tilt']
  angles['l_hip_flexion'] = angles['l_hip_flexion'] + tilt
  angles['r_hip_flexion'] = angles['r_hip_flexion'] + tilt
  angles['spine_flexion'] = angles['spine_flexion'] - 0.5 * tilt
  return angles


def _set(angles, pose, weight=1.0, clock=None, spread=0.0):
  """Blends `angles` towards `pose` (side-less names allowed), with optional wander."""
  for name, value in _expand(pose).items():
    target = value + (clock.wander(spread) if spread else 0.0)
    angles[name] = (1 - weight) * angles[name] + weight * target


def _set_arm(angles, side, pose, weight=1.0, clock=None, spread=0.0):
  """Blends one arm towards an arm pose (name in _ARM_POSES or 4 angles)."""
  values = _ARM_POSES[pose] if isinstance(pose, str) else pose
  _set(angles, {f'{side}_{key}': v for key, v in zip(_ARM_KEYS, values)}, weight, clock, spread)


def _with_arms(pose, arm_pose):
  """A copy of `pose` with both arms in _ARM_POSES[arm_pose]."""
  out = dict(pose)
  for side in 'lr':
    out.update({f'{side}_{key}': v for key, v in zip(_ARM_KEYS, _ARM_POSES[arm_pose])})
  return out


def _dominant_side(clock):
  """The hand doing a one-handed action: usually the right."""
  return 'r' if clock.rng.uniform() < 0.75 else 'l'


def _stationary_placement(clock, turn_deg):
  """Heading (rad) turning slowly about a random direction, feet near the centre."""
  heading = clock.rng.uniform(0, 2 * np.pi) + np.radians(clock.wander(turn_deg, (0.02, 0.08)))
  centre = clock.rng.uniform(-1, 1, 2) * 300.0
  xy = centre + np.stack([clock.wander(80.0, (0.02, 0.08)) for _ in range(2)], axis=-1)
  return heading, xy


def _standing(clock, var):
  """Standing with weight shifts between the legs."""
  a = _neutral(clock)
  shift = np.tanh(clock.wander(1.2, (0.04, 0.15)))  # + weight on the left leg
  a['pelvis_roll'] += 3.0 * shift
  a['l_hip_abduction'] += 2.0 * shift
  a['r_hip_abduction'] -= 2.0 * shift
  a['r_knee_flexion'] += 10.0 * _smooth_max(shift)
  a['l_knee_flexion'] += 10.0 * _smooth_max(-shift)
  _set(a, {'hip_abduction': var.get('stance_abduction', 4.0)}, 0.5)
  heading, xy = _stationary_placement(clock, var.get('turn_deg', 20.0))
  return _Motion(a, dict(_REST_STANDING), heading, xy, 'feet')


def _seated(clock, var):
  """Sitting on an (invisible) chair, leaning and shifting."""
  a = _neutral(clock)
  _set(a, _SEATED)
  for name, std in (('pelvis_tilt', 4.0), ('spine_flexion', 6.0), ('l_knee_flexion', 8.0),
                    ('r_knee_flexion', 8.0), ('l_hip_abduction', 4.0),
                    ('r_hip_abduction', 4.0)):
    a[name] = a[name] + clock.wander(std, (0.03, 0.15))
  for side in 'lr':
    _set_arm(a, side, 'lap', clock=clock, spread=4.0)
  rest = _with_arms(dict(_REST_STANDING, **_expand(_SEATED)), 'lap')
  heading, xy = _stationary_placement(clock, var.get('turn_deg', 8.0))
  return _Motion(a, rest, heading, xy, 'feet')


def _loop_path(clock, speed):
  """A random closed loop around the centre walked at `speed` (T,) mm/s.

  Returns the heading (T,) rad along the path and the pelvis (T, 2) mm.
  """
  rng = clock.rng
  radius = rng.uniform(650.0, 850.0)
  eccentricity = rng.uniform(0.0, 0.15)
  axis = rng.uniform(0, np.pi)
  direction = rng.choice([-1.0, 1.0])
  theta0 = rng.uniform(0, 2 * np.pi)
  offset = rng.uniform(-1, 1, 2) * 150.0
  distance = np.cumsum(speed) / clock.fps  # mm walked
  max_turns = distance[-1] / (2 * np.pi * radius * (1 - eccentricity)) + 1
  theta = theta0 + direction * np.linspace(0, 2 * np.pi * max_turns, int(2000 * max_turns))
  r = radius * (1 + eccentricity * np.cos(2 * (theta - axis)))
  path = offset + np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)
  arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=-1))])
  step = np.diff(path, axis=0, append=2 * path[-1:] - path[-2:-1])
  heading = np.unwrap(np.arctan2(step[:, 1], step[:, 0]))
  xy = np.stack([np.interp(distance, arc, path[:, i]) for i in range(2)], axis=-1)
  return np.interp(distance, arc, heading), xy


def _walking(clock, var):
  """A gait cycle along a loop; speed and cadence vary together."""
  a = _neutral(clock)
  pace = _soft_clamp(1 + clock.wander(var.get('speed_wobble', 0.1), (0.03, 0.12)), 0.5, 1.1)
  cadence = var.get('cadence_hz', 0.8) * clock.rng.uniform(0.92, 1.08) * np.sqrt(pace)  # Hz
  amplitude = var.get('hip_amplitude_deg', 18.0) * np.sqrt(pace)
  phase = 2 * np.pi * (np.cumsum(cadence) / clock.fps + clock.rng.uniform())
  # A hip swinging sinusoidally moves its planted foot back by 2 leg sin(amplitude)
  # per half cycle: walking at that speed keeps the feet from sliding.
  speed = 4 * cadence * clock.leg_mm * np.sin(np.radians(amplitude))
  arm_swing = var.get('arm_swing_deg', 15.0) * np.sqrt(pace)
  for side, shift in (('l', 0.0), ('r', np.pi)):
    leg_phase = phase + shift
    a[f'{side}_hip_flexion'] += amplitude * np.sin(leg_phase)
    swing = ((1 + np.cos(leg_phase + 0.7)) / 2) ** 2
    loading = ((1 + np.cos(leg_phase - np.pi / 2 - 0.7)) / 2) ** 6
    a[f'{side}_knee_flexion'] += 2.5 * amplitude * swing + 8.0 * loading
    # Each arm swings with the opposite leg.
    arm_phase = leg_phase + np.pi
    a[f'{side}_shoulder_flexion'] += arm_swing * np.sin(arm_phase)
    a[f'{side}_elbow_flexion'] += 0.6 * arm_swing * (1 + np.sin(arm_phase)) / 2
  a['pelvis_roll'] += 3.0 * np.sin(2 * phase)
  a['spine_twist'] += 6.0 * np.sin(phase) + var.get('look_deg', 0.0)
  a['neck_lateral'] += 0.3 * var.get('look_deg', 0.0)
  for name in ('pelvis_tilt', 'l_hip_flexion', 'r_hip_flexion'):  # lean, legs unchanged
    a[name] += var.get('lean_deg', 0.0)
  heading, xy = _loop_path(clock, speed)
  heading = heading - np.radians(4.0) * np.sin(phase)
  return _Motion(a, dict(_REST_STANDING), heading, xy, 'pelvis')


def _posture(clock, var):
  """The posture named by var['posture'] (stand, walk or sit)."""
  return {'stand': _standing, 'walk': _walking, 'sit': _seated}[var.get('posture', 'stand')](
      clock, var)


def _walk(clock, var):
  """Walking loops; optionally one hand holds a leash."""
  motion = _walking(clock, var)
  if var.get('leash'):
    side = _dominant_side(clock)
    _set_arm(motion.angles, side, 'leash', weight=0.8, clock=clock, spread=6.0)
  return motion


def _gesture(clock, var):
  """Standing and talking with the arms: slow random arm raises, optional pointing."""
  motion = _standing(clock, var)
  spread = var.get('arm_spread_deg', 15.0)
  freq = var.get('arm_freq_hz', (0.08, 0.4))
  for side in 'lr':
    weight = _smoothstep(var.get('arm_activity', 0.5) + clock.wander(0.35, freq))
    pose = [v + clock.wander(spread, freq) for v in _ARM_POSES[var.get('arm_pose', 'gesture')]]
    _set_arm(motion.angles, side, pose, weight)
  if var.get('point'):
    side = _dominant_side(clock)
    pointing = clock.pulses(clock.rng.uniform(5.0, 8.0), 0.45)
    pose = [v + clock.wander(12.0, (0.03, 0.1)) for v in _ARM_POSES['point']]
    _set_arm(motion.angles, side, pose, pointing)
    motion.angles['neck_flexion'] -= 8.0 * pointing
  return motion


def _hand_to_head(clock, var):
  """One hand (or each in turn) to the ear or mouth: phoning, smoking, eating."""
  motion = _posture(clock, var)
  side = _dominant_side(clock)
  period = clock.rng.uniform(*var.get('period_s', (5.0, 9.0)))
  duty = var.get('duty', 0.4)
  start = clock.rng.uniform()
  up = clock.pulses(period, duty, ramp_s=1.6, start=start)
  _set_arm(motion.angles, side, var['target'], up, clock, spread=3.0)
  if var.get('alternate'):
    other = 'l' if side == 'r' else 'r'
    # The other hand goes up half a period later, in the first hand's pause.
    other_up = clock.pulses(period, duty, ramp_s=1.6, start=start + 0.5) * (1 - up)
    _set_arm(motion.angles, other, var['target'], other_up, clock, spread=3.0)
  motion.angles['neck_flexion'] += 8.0 * up
  return motion


def _photo(clock, var):
  """Both hands hold a camera to the face, turning and now and then crouching."""
  motion = _standing(clock, dict(var, turn_deg=35.0))
  shooting = clock.pulses(clock.rng.uniform(6.0, 10.0), 0.6)
  for side in 'lr':
    _set_arm(motion.angles, side, 'camera', shooting, clock, spread=3.0)
  # Crouching only while shooting: lowered hands would meet the raised thighs.
  crouch = clock.pulses(clock.rng.uniform(9.0, 14.0), 0.3, ramp_s=1.8) * 0.6 * shooting
  _set(motion.angles, _CROUCHED | {'spine_flexion': 5.0, 'neck_flexion': 0.0}, crouch)
  motion.angles['spine_twist'] += clock.wander(12.0, (0.05, 0.2))
  motion.rest = _with_arms(motion.rest, 'camera')
  return motion


def _wave(clock, var):
  """Greeting: waving one raised hand, and small bows."""
  motion = _standing(clock, var)
  side = _dominant_side(clock)
  waving = clock.pulses(clock.rng.uniform(5.0, 8.0), 0.5)
  _set_arm(motion.angles, side, 'wave', waving, clock, spread=6.0)
  wave_hz = clock.rng.uniform(1.2, 2.0)
  motion.angles[f'{side}_shoulder_rotation'] += 18.0 * waving * np.sin(
      2 * np.pi * wave_hz * clock.t + clock.rng.uniform(0, 2 * np.pi))
  bow = clock.pulses(clock.rng.uniform(7.0, 11.0), 0.2)
  motion.angles['spine_flexion'] += 20.0 * bow
  motion.angles['neck_flexion'] += 10.0 * bow
  return motion


def _sit(clock, var):
  """Seated, hands on the lap or gesturing."""
  motion = _seated(clock, var)
  for side in 'lr':
    talking = clock.pulses(clock.rng.uniform(6.0, 12.0), 0.3)
    _set_arm(motion.angles, side, 'gesture', talking, clock, spread=10.0)
  return motion


def _sit_down(clock, var):
  """Sitting down on a chair and standing up again, leaning forward on the way."""
  standing = _standing(clock, dict(var, turn_deg=8.0))
  seated = _sit(clock, var)
  down = clock.pulses(clock.rng.uniform(7.0, 10.0), 0.5, ramp_s=1.6)
  angles = {name: (1 - down) * standing.angles[name] + down * seated.angles[name]
            for name in standing.angles}
  # Leaning forward from the hips on the way, the thighs keeping their angle.
  transition = 4 * down * (1 - down)
  for name in ('pelvis_tilt', 'l_hip_flexion', 'r_hip_flexion'):
    angles[name] += 30.0 * transition
  angles['spine_flexion'] += 10.0 * transition
  for side in 'lr':
    _set_arm(angles, side, 'lap', transition)
  return _Motion(angles, _with_arms(standing.rest, 'lap'), standing.heading, standing.xy,
                 'feet')


def _crouch(clock, var):
  """Purchases: bending down to pick things up, carrying them in between."""
  motion = _standing(clock, dict(var, turn_deg=40.0))
  side = _dominant_side(clock)
  bent = clock.pulses(clock.rng.uniform(5.0, 9.0), 0.35, ramp_s=1.2)
  carrying = clock.pulses(clock.rng.uniform(6.0, 10.0), 0.5) * (1 - bent)
  _set_arm(motion.angles, side, 'carry', carrying)
  _set(motion.angles, _CROUCHED, bent, clock, spread=5.0)
  for arm in 'lr':
    _set_arm(motion.angles, arm, 'reach_down', bent, clock, spread=4.0)
  motion.rest = _with_arms(motion.rest, 'reach_down')
  return motion


@dataclasses.dataclass(frozen=True)
class Archetype:
  """A family of motions; `drive(clock, variation)` returns its _Motion."""
  description: str
  drive: Callable[[_Clock, dict], _Motion]


ARCHETYPES = {
    'walk': Archetype('Walking loops around the capture volume.', _walk),
    'gesture': Archetype('Standing, weight shifts, arm gestures or pointing.', _gesture),
    'hand_to_head': Archetype('A hand to the ear or mouth, standing, walking or seated.',
                              _hand_to_head),
    'photo': Archetype('Arms raised forward holding a camera, turning, crouching.', _photo),
    'wave': Archetype('Waving a raised hand, small bows.', _wave),
    'sit': Archetype('Seated on a chair, hands on the lap or gesturing.', _sit),
    'sit_down': Archetype('Sitting down on a chair and standing up again.', _sit_down),
    'crouch': Archetype('Bending down to pick things up and carrying them.', _crouch),
}

ACTION_ARCHETYPE = {
    'Directions': 'gesture',
    'Discussion': 'gesture',
    'Eating': 'hand_to_head',
    'Greeting': 'wave',
    'Phoning': 'hand_to_head',
    'Photo': 'photo',
    'Posing': 'gesture',
    'Purchases': 'crouch',
    'Sitting': 'sit',
    'SittingDown': 'sit_down',
    'Smoking': 'hand_to_head',
    'Waiting': 'gesture',
    'WalkDog': 'walk',
    'Walking': 'walk',
    'WalkTogether': 'walk',
}

# Per-action parameters of the archetype, so that actions sharing one differ.
ACTION_VARIATIONS = {
    'Directions': {'point': True, 'arm_activity': 0.2, 'turn_deg': 35.0},
    'Discussion': {'arm_activity': 0.7, 'arm_spread_deg': 20.0, 'arm_freq_hz': (0.1, 0.5)},
    'Eating': {'posture': 'sit', 'target': 'mouth', 'alternate': True, 'duty': 0.3},
    'Greeting': {},
    'Phoning': {'posture': 'walk', 'target': 'ear', 'duty': 0.85, 'period_s': (10.0, 16.0),
                'cadence_hz': 0.7, 'hip_amplitude_deg': 12.0, 'arm_swing_deg': 6.0,
                'speed_wobble': 0.25},
    'Photo': {},
    'Posing': {'arm_pose': 'pose', 'arm_activity': 0.7, 'arm_spread_deg': 25.0,
               'arm_freq_hz': (0.03, 0.12), 'stance_abduction': 12.0},
    'Purchases': {},
    'Sitting': {},
    'SittingDown': {},
    'Smoking': {'target': 'mouth', 'duty': 0.3, 'period_s': (6.0, 10.0)},
    'Waiting': {'arm_activity': 0.0, 'arm_spread_deg': 8.0, 'turn_deg': 30.0},
    'WalkDog': {'leash': True, 'cadence_hz': 0.75, 'speed_wobble': 0.3, 'lean_deg': 8.0},
    'Walking': {},
    'WalkTogether': {'cadence_hz': 0.8, 'hip_amplitude_deg': 17.0, 'arm_swing_deg': 8.0,
                     'look_deg': 10.0},
}


# ---------------------------------------------------------------------------
# Sequence generation.


def _max_filter(x, radius):
  padded = np.pad(x, radius, mode='edge')
  return np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(-1)


def _box_filter(x, radius):
  padded = np.pad(x, radius, mode='edge')
  return np.convolve(padded, np.ones(2 * radius + 1) / (2 * radius + 1), mode='valid')


_ARM_ANGLES = tuple(f'{side}_{key}' for side in 'lr' for key in _ARM_KEYS)


def _blend_until_clear(angles, rest, names, bone_lengths, fps, margin_mm):
  """Blends angles `names` towards `rest` where capsules come closer than `margin_mm`.

  The blend weight is the smallest of a few steps that clears each frame,
  spread over +-0.3 s (a max filter, then smoothing within that window, so
  each frame keeps at least its own weight). Frames still too close get a
  larger weight, up to 1. Returns the blended angles and whether all clear.
  """
  def blend(weight):
    out = dict(angles)
    for name in names:
      out[name] = (1 - weight) * angles[name] + weight * rest[name]
    gap = capsule_clearance_mm(_forward_kinematics(out, bone_lengths)).min(-1)
    return out, gap >= margin_mm

  blended, clear = blend(0.0)
  if clear.all():
    return blended, True
  needed = np.ones(len(clear))
  for step in (0.8, 0.6, 0.4, 0.2, 0.0):
    needed = np.where(blend(step)[1], step, needed)
  radius = max(1, int(0.15 * fps))
  for _ in range(5):
    weight = _box_filter(_box_filter(_max_filter(needed, 2 * radius), radius), radius)
    blended, clear = blend(np.minimum(weight, 1.0))
    if clear.all():
      break
    needed = np.where(clear, needed, np.minimum(weight + 0.25, 1.0))
  return blended, bool(clear.all())


def _separate_capsules(angles, rest, bone_lengths, fps, margin_mm=1.0):
  """Keeps non-adjacent capsules apart by blending towards the rest pose.

  The arms cause nearly all contacts, so they are blended first; only frames
  the rest arms cannot clear blend the whole pose, which the (clear) rest
  pose always clears.
  """
  angles, clear = _blend_until_clear(angles, rest, _ARM_ANGLES, bone_lengths, fps, margin_mm)
  if not clear:
    angles, _ = _blend_until_clear(angles, rest, tuple(angles), bone_lengths, fps, margin_mm)
  return angles


def _within_limits(pose):
  """`pose` (name -> degrees) moved 1 degree inside JOINT_LIMITS."""
  return {name: np.clip(pose[name], lo + 1, hi - 1) for name, (lo, hi) in JOINT_LIMITS.items()}


@functools.lru_cache(maxsize=None)
def _all_cameras():
  """The 4 cameras of every calibrated subject."""
  return tuple(camera for subject in skeleton.TRAIN_SUBJECTS + skeleton.TEST_SUBJECTS
               for camera in cameras.load_cameras(subject))


def in_all_views(pose_world, margin_px=IMAGE_MARGIN_PX):
  """Whether every joint projects `margin_px` inside the image of every calibrated camera."""
  for camera in _all_cameras():
    pose_2d = cameras.project(cameras.world_to_camera(pose_world, camera), camera)
    size = np.asarray(camera.image_size, np.float64)
    if np.any(pose_2d < margin_px) or np.any(pose_2d > size - margin_px):
      return False
  return True


def _fit_in_views(pose_world):
  """Pulls the trajectory towards the volume centre until all views see every joint."""
  offset = pose_world[:, :1, :] * [1.0, 1.0, 0.0] - np.append(VOLUME_CENTER_MM, 0.0)
  for pull in (0.0, 0.25, 0.5, 0.75, 1.0):
    moved = pose_world - pull * offset
    if in_all_views(moved):
      return moved
  raise RuntimeError('The generated body does not fit in the calibrated views.')


def generate_sequence(rng, bone_lengths, action, num_frames, fps=skeleton.FPS):
  """A synthetic sequence of `action` for a skeleton with `bone_lengths` (mm).

  Args:
    rng: np.random.Generator; the sequence is a function of its state.
    bone_lengths: (16,) mm in skeleton.BONES order (see subject_bone_lengths).
    action: one of skeleton.ACTIONS.
    num_frames: number of frames.
    fps: frame rate (Hz) the motion is sampled at.

  Returns:
    (num_frames, 17, 3) float32 joints in the world frame, mm, z up, with the
    feet on the floor and every joint inside all calibrated camera views.
  """
  bone_lengths = np.asarray(bone_lengths, np.float64)
  clock = _Clock(num_frames, fps, rng, bone_lengths)
  motion = ARCHETYPES[ACTION_ARCHETYPE[action]].drive(clock, ACTION_VARIATIONS[action])
  angles = {name: _soft_clamp(np.asarray(motion.angles[name], np.float64)
                              * np.ones(num_frames), lo, hi)
            for name, (lo, hi) in JOINT_LIMITS.items()}
  angles = _separate_capsules(angles, _within_limits(motion.rest), bone_lengths, fps)
  pose = _forward_kinematics(angles, bone_lengths)
  # Feet on the floor: a soft minimum of the ankles, exact for level feet.
  support = _soft_min(pose[:, [3, 6], 2], FOOT_SOFTNESS_MM) + FOOT_SOFTNESS_MM * np.log(2)
  pose[..., 2] += ANKLE_HEIGHT_MM - support[:, None]
  cos, sin = np.cos(motion.heading)[:, None], np.sin(motion.heading)[:, None]
  x, y = pose[..., 0], pose[..., 1]
  pose[..., 0], pose[..., 1] = cos * x - sin * y, sin * x + cos * y
  anchor = pose[:, [3, 6], :2].mean(1) if motion.anchor == 'feet' else pose[:, 0, :2]
  pose[..., :2] += (VOLUME_CENTER_MM + motion.xy - anchor)[:, None, :]
  return _fit_in_views(pose).astype(np.float32)
