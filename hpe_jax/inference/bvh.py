"""BVH motion files of lifted 3D poses: the H36M-17 skeleton with joint rotations per frame.

  bvh.write_bvh('poses.bvh', poses_mm, fps=50)            # poses (N, 17, 3) mm, camera frame
  motion = bvh.read_bvh('poses.bvh'); positions = bvh.forward_kinematics(motion)  # (N, 17, 3)

Frame: the camera frame (x right, y down, z forward) turned 180 degrees about x into BVH's
y-up convention, x right, y up, z towards the camera (`CAMERA_TO_BVH`); units mm.

Hierarchy: `skeleton.PARENTS` (Pelvis the root, every joint a JOINT with 3 rotation
channels Zrotation Xrotation Yrotation, the root also Xposition Yposition Zposition; the
five leaves end in an End Site a quarter of their bone beyond them).

Rest skeleton (the OFFSETs), from the poses written: each bone's length is its mean over
the frames. The training set's mean 3D pose (normalization.json) is not used: averaging
positions over poses shortens every bone that turns (on h36m_synthetic, whose people face
every way, its hip and shoulder bones keep under 1% of their mean length, its forearms
about half), and the poses written are what the offsets must reproduce. Rest
directions: a T-pose facing the camera (legs down, spine and head up, arms out); the
children of the two joints with several (Pelvis: hips and spine; Thorax: neck and
shoulders) keep their mean offset in that joint's frame, so a rigid pelvis or thorax is
reproduced exactly.

Rotations per frame: Pelvis and Thorax turn to the frame of two child directions
(y: to the spine / neck, x: from the right to the left hip / shoulder, z = x cross y),
which fixes their twist; every other bone turns by the smallest rotation (a swing, no
twist about the bone) from its parent's frame onto the direction from its joint, as the
kinematics place it, to the observed child, so errors never accumulate down a limb.
Forward kinematics of the file reproduce poses with consistent bone lengths and rigid
pelvis and thorax (1e-4 mm); otherwise a joint is off by its bone's deviation from the mean
length (plus, for hips, spine, neck and shoulders, the non-rigid part of their group).
"""

import dataclasses
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from hpe_jax import files
from tfds_h36m import skeleton

CAMERA_TO_BVH = np.diag([1.0, -1.0, -1.0])  # a rotation: its own inverse
EULER_ORDER = 'ZXY'  # intrinsic: R = Rz @ Rx @ Ry, BVH's channel order
END_SITE_FRACTION = 0.25
_J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
# Joints with several children: (their frame's y child, x from-child, x to-child).
_FRAMES = {_J['Pelvis']: (_J['Spine'], _J['RHip'], _J['LHip']),
           _J['Thorax']: (_J['Neck'], _J['RShoulder'], _J['LShoulder'])}
# Rest direction of each other bone (by its child joint), BVH frame, facing the camera.
_REST_DIRECTIONS = {
    'RKnee': (0, -1, 0), 'RAnkle': (0, -1, 0), 'LKnee': (0, -1, 0), 'LAnkle': (0, -1, 0),
    'Thorax': (0, 1, 0), 'Head': (0, 1, 0), 'LElbow': (1, 0, 0), 'LWrist': (1, 0, 0),
    'RElbow': (-1, 0, 0), 'RWrist': (-1, 0, 0)}


@dataclasses.dataclass
class Motion:
  """A parsed BVH file: joint names, parents (-1 for a root), offsets (J, 3), each joint's
  channel names, the end site offsets {joint: (3,)}, frames (N, channels) and frame_time s."""
  names: list
  parents: list
  offsets: np.ndarray
  channels: list
  end_sites: dict
  frames: np.ndarray
  frame_time: float


def _unit(v):
  return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(y_to, x_from, x_to):
  """(N, 3, 3) rotations with columns x, y, z: y along y_to, x along x_to - x_from made
  orthogonal to y (Gram-Schmidt), z = x cross y."""
  y = _unit(y_to)
  x = x_to - x_from
  x = _unit(x - np.sum(x * y, axis=-1, keepdims=True) * y)
  return np.stack([x, y, np.cross(x, y)], axis=-1)


def _swing(a, b):
  """(N, 3, 3): the smallest rotations turning the directions a (N, 3) onto b (N, 3)."""
  a, b = _unit(a), _unit(b)
  axis = np.cross(a, b)
  sin, cos = np.linalg.norm(axis, axis=-1), np.sum(a * b, axis=-1)
  # Opposite directions: half a turn about any axis perpendicular to a.
  other = np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
  axis = np.where((sin < 1e-9)[:, None], np.cross(a, other), axis)
  return Rotation.from_rotvec(_unit(axis) * np.arctan2(sin, cos)[:, None]).as_matrix()


def rest_offsets(points):
  """(17, 3) rest offsets of the joints from their parents (BVH frame, mm) for the poses
  `points` (N, 17, 3) in the BVH frame; the root's is zero."""
  offsets = np.zeros((skeleton.NUM_JOINTS, 3))
  for child, parent in enumerate(skeleton.PARENTS):
    if parent < 0:
      continue
    bone = points[:, child] - points[:, parent]
    if parent in _FRAMES:
      frame = _frame(*(points[:, j] - points[:, parent] for j in _FRAMES[parent]))
      offsets[child] = np.einsum('nji,nj->ni', frame, bone).mean(axis=0)
    else:
      direction = np.asarray(_REST_DIRECTIONS[skeleton.JOINT_NAMES[child]], float)
      offsets[child] = direction * np.linalg.norm(bone, axis=-1).mean()
  return offsets


def solve_rotations(points, offsets):
  """Global rotations (N, 17, 3, 3) of the joints, turning the rest skeleton `offsets` onto
  the poses `points` (N, 17, 3), both in the BVH frame (module docstring)."""
  n = len(points)
  rotations = np.zeros((n, skeleton.NUM_JOINTS, 3, 3))
  placed = np.zeros_like(points)  # the kinematics' joint positions so far
  placed[:, 0] = points[:, 0]
  children = {j: [c for c, p in enumerate(skeleton.PARENTS) if p == j]
              for j in range(skeleton.NUM_JOINTS)}
  for joint, parent in enumerate(skeleton.PARENTS):
    if parent >= 0:
      placed[:, joint] = placed[:, parent] + np.einsum('nij,j->ni', rotations[:, parent],
                                                       offsets[joint])
    base = rotations[:, parent] if parent >= 0 else np.broadcast_to(np.eye(3), (n, 3, 3))
    if joint in _FRAMES:
      rotations[:, joint] = _frame(*(points[:, j] - placed[:, joint] for j in _FRAMES[joint]))
    elif children[joint]:
      child, = children[joint]
      rest = np.einsum('nij,j->ni', base, offsets[child])
      rotations[:, joint] = _swing(rest, points[:, child] - placed[:, joint]) @ base
    else:
      rotations[:, joint] = base  # a leaf turns nothing
  return rotations


def _hierarchy(offsets):
  """The HIERARCHY section's lines for the rest offsets (17, 3)."""
  lines = []

  def joint(j, depth):
    pad = '  ' * depth
    kind = 'ROOT' if skeleton.PARENTS[j] < 0 else 'JOINT'
    channels = ('CHANNELS 6 Xposition Yposition Zposition ' if kind == 'ROOT'
                else 'CHANNELS 3 ') + ' '.join(f'{a}rotation' for a in EULER_ORDER)
    lines.extend([f'{pad}{kind} {skeleton.JOINT_NAMES[j]}', f'{pad}{{',
                  f'{pad}  OFFSET {_numbers(offsets[j])}', f'{pad}  {channels}'])
    children = [c for c, p in enumerate(skeleton.PARENTS) if p == j]
    for child in children:
      joint(child, depth + 1)
    if not children:
      lines.extend([f'{pad}  End Site', f'{pad}  {{',
                    f'{pad}    OFFSET {_numbers(END_SITE_FRACTION * offsets[j])}', f'{pad}  }}'])
    lines.append(f'{pad}}}')

  joint(skeleton.ROOT, 0)
  return lines


def _numbers(values):
  return ' '.join(f'{v:.6f}' for v in np.round(np.ravel(values), 6) + 0.0)  # no -0.000000


def _depth_first():
  order, stack = [], [skeleton.ROOT]
  while stack:
    j = stack.pop()
    order.append(j)
    stack.extend(reversed([c for c, p in enumerate(skeleton.PARENTS) if p == j]))
  return order


def write_bvh(path, poses_mm, fps=float(skeleton.FPS)):
  """Writes poses (N, 17, 3) mm (H36M-17, camera frame; root-relative or not: the pelvis
  moves the root) as a BVH file of `fps` frames per second, atomically; returns the rest
  offsets (17, 3) mm written (BVH frame)."""
  poses = np.asarray(poses_mm, np.float64)
  if poses.ndim != 3 or poses.shape[1:] != (skeleton.NUM_JOINTS, 3) or not len(poses):
    raise ValueError(f'Expected poses of shape (N, 17, 3) with N >= 1, got {poses.shape}.')
  if not np.all(np.isfinite(poses)):
    raise ValueError('The poses hold NaN or infinite values.')
  if not fps > 0:
    raise ValueError(f'fps must be positive, got {fps}.')
  points = poses @ CAMERA_TO_BVH.T
  offsets = rest_offsets(points)
  rotations = solve_rotations(points, offsets)
  parents = np.asarray(skeleton.PARENTS)
  local = np.swapaxes(rotations[:, np.maximum(parents, 0)], -1, -2) @ rotations
  local[:, skeleton.ROOT] = rotations[:, skeleton.ROOT]
  with warnings.catch_warnings():  # gimbal lock: the angles still give the same rotation
    warnings.simplefilter('ignore', UserWarning)
    angles = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler(
        EULER_ORDER, degrees=True).reshape(len(poses), skeleton.NUM_JOINTS, 3)
  values = np.concatenate([points[:, skeleton.ROOT], angles[:, _depth_first()].reshape(
      len(poses), -1)], axis=1)
  text = '\n'.join(['HIERARCHY', *_hierarchy(offsets), 'MOTION', f'Frames: {len(poses)}',
                    f'Frame Time: {1.0 / fps:.8f}', *map(_numbers, values)]) + '\n'
  files.write_atomic(path, text)
  return offsets


def read_bvh(path):
  """Parses a BVH file (any hierarchy and channel order) into a Motion."""
  with open(path) as f:
    tokens = f.read().split()
  names, parents, offsets, channels, end_sites, stack = [], [], [], [], {}, []
  i = tokens.index('HIERARCHY') + 1
  while tokens[i] != 'MOTION':
    word = tokens[i]
    if word in ('ROOT', 'JOINT'):
      names.append(tokens[i + 1])
      parents.append(stack[-1] if stack else -1)
      i += 2
    elif word == 'End':  # End Site { OFFSET x y z }
      end_sites[names[stack[-1]]] = np.asarray(tokens[i + 4:i + 7], float)
      i += 8
    elif word == '{':
      stack.append(len(names) - 1)
      i += 1
    elif word == '}':
      stack.pop()
      i += 1
    elif word == 'OFFSET':
      offsets.append(np.asarray(tokens[i + 1:i + 4], float))
      i += 4
    elif word == 'CHANNELS':
      count = int(tokens[i + 1])
      channels.append(tokens[i + 2:i + 2 + count])
      i += 2 + count
    else:
      raise ValueError(f'{path}: unexpected {word!r} in the HIERARCHY section.')
  num_frames, frame_time = int(tokens[i + 2]), float(tokens[i + 5])
  values = np.asarray(tokens[i + 6:], float)
  width = sum(len(c) for c in channels)
  if values.size != num_frames * width:
    raise ValueError(f'{path}: {values.size} motion values, expected {num_frames} frames of '
                     f'{width}.')
  return Motion(names, parents, np.stack(offsets), channels, end_sites,
                values.reshape(num_frames, width), frame_time)


def forward_kinematics(motion):
  """Joint positions (N, J, 3) of every frame of a Motion, in its file's frame and units."""
  n, count = len(motion.frames), len(motion.names)
  positions, rotations = np.zeros((n, count, 3)), np.zeros((n, count, 3, 3))
  column = 0
  for j, joint_channels in enumerate(motion.channels):
    values = motion.frames[:, column:column + len(joint_channels)]
    column += len(joint_channels)
    translation, axes, angles = motion.offsets[j] + np.zeros((n, 3)), '', []
    for name, value in zip(joint_channels, values.T):
      if name.endswith('position'):
        translation[:, 'XYZ'.index(name[0].upper())] += value
      else:
        axes, angles = axes + name[0].upper(), angles + [value]
    local = (Rotation.from_euler(axes, np.stack(angles, -1), degrees=True).as_matrix()
             if axes else np.broadcast_to(np.eye(3), (n, 3, 3)))
    parent = motion.parents[j]
    if parent < 0:
      positions[:, j], rotations[:, j] = translation, local
    else:
      positions[:, j] = positions[:, parent] + np.einsum('nij,nj->ni', rotations[:, parent],
                                                         translation)
      rotations[:, j] = rotations[:, parent] @ local
  return positions
