"""BVH motion files: lifted 3D poses written as the H36M-17 skeleton with joint rotations per
frame, and any BVH file (motion capture) read back into joint positions.

  bvh.write_bvh('poses.bvh', poses_mm, fps=50)            # poses (N, 17, 3) mm, camera frame
  motion = bvh.read_bvh('poses.bvh'); positions = bvh.forward_kinematics(motion)  # (N, 17, 3)

Reading (`read_bvh`, `forward_kinematics`): any hierarchy; each joint's channels in any
order, its rotation channels intrinsic in the order written ('Zrotation Xrotation Yrotation'
is R = Rz @ Rx @ Ry, angles in degrees); position channels replace the matching components
of the joint's OFFSET (the common convention: Bandai Namco's files repeat every joint's
offset in its position channels); LF or CRLF line ends, spaces or tabs. A malformed or
unreadable file raises `BvhError`, whose message is one line naming the file. Positions keep
the file's frame and units (BVH's convention: y up).

Writing (`write_bvh`), frame: the camera frame (x right, y down, z forward) turned 180
degrees about x into BVH's y-up convention, x right, y up, z towards the camera
(`CAMERA_TO_BVH`); units mm.

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
import os
import re
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from hpe_jax import files
from tfds_h36m import skeleton

CAMERA_TO_BVH = np.diag([1.0, -1.0, -1.0])  # a rotation: its own inverse
EULER_ORDER = 'ZXY'  # intrinsic: R = Rz @ Rx @ Ry, BVH's channel order
END_SITE_FRACTION = 0.25
_J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
_CHANNEL_NAMES = {f'{axis}{kind}'.lower(): f'{axis}{kind}'
                  for axis in 'XYZ' for kind in ('position', 'rotation')}
_WORD = re.compile(r'\S+')
# A number as NumPy's text parser reads it (which refuses '1.e5').
_NUMBER = re.compile(r'[+-]?(?:[0-9]+\.?|[0-9]*\.[0-9]+)(?:(?<=[0-9])[eE][+-]?[0-9]+)?')
# The file's start is searched as bytes; NumPy reads the motion values from the file itself.
_MOTION = re.compile(rb'(?<!\S)MOTION(?=\s)')
_BYTES_WORD = re.compile(rb'\S+')
_FRAMES_LINE = re.compile(rb'\s*Frames:[ \t]*(\S*)', re.IGNORECASE)
_FRAME_TIME_LINE = re.compile(rb'\s*Frame\s+Time:[ \t]*(\S*)', re.IGNORECASE)
_NEWLINE = b'\n'
_HEAD_BYTES = 1 << 20  # read first to find MOTION: hierarchies take a few kB
_MARGIN_BYTES = 1 << 12  # read beyond MOTION for its Frames and Frame Time lines
# Joints with several children: (their frame's y child, x from-child, x to-child).
_FRAMES = {_J['Pelvis']: (_J['Spine'], _J['RHip'], _J['LHip']),
           _J['Thorax']: (_J['Neck'], _J['RShoulder'], _J['LShoulder'])}
# Rest direction of each other bone (by its child joint), BVH frame, facing the camera.
_REST_DIRECTIONS = {
    'RKnee': (0, -1, 0), 'RAnkle': (0, -1, 0), 'LKnee': (0, -1, 0), 'LAnkle': (0, -1, 0),
    'Thorax': (0, 1, 0), 'Head': (0, 1, 0), 'LElbow': (1, 0, 0), 'LWrist': (1, 0, 0),
    'RElbow': (-1, 0, 0), 'RWrist': (-1, 0, 0)}


class BvhError(ValueError):
  """A malformed or unreadable BVH file; its message is one line, '<path>: <what is wrong>'."""


@dataclasses.dataclass
class Motion:
  """A parsed BVH file: joint names, parents (-1 for a root), offsets (J, 3) and end site
  offsets {joint: (3,)} in file units, each joint's channel names (Xposition ... Zrotation),
  frames (N, channels: the channels' values joint by joint, degrees for rotations) and
  frame_time s."""
  names: list
  parents: list
  offsets: np.ndarray
  channels: list
  end_sites: dict
  frames: np.ndarray
  frame_time: float

  @property
  def fps(self):
    """Frames per second: 1 / frame_time."""
    return 1.0 / self.frame_time


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


def _shown(word):
  """A word of the file for a one-line message: quoted, escaped, at most 40 characters."""
  return repr(word if len(word) <= 40 else word[:40] + '...')


class _Words:
  """The HIERARCHY section's words in order; its errors name the file and the line."""

  def __init__(self, path, text):
    self.path, self._text, self._at = path, text, 0
    self._words = _WORD.finditer(text)
    self._ahead = next(self._words, None)

  def __bool__(self):
    return self._ahead is not None

  def error(self, what):
    """A BvhError at the last word taken."""
    line = self._text.count('\n', 0, self._at) + 1
    return BvhError(f'{self.path}: line {line}: {what}')

  def take(self, what):
    if self._ahead is None:
      raise self.error(f'expected {what}, found the end of the HIERARCHY section')
    word, self._at = self._ahead.group(), self._ahead.start()
    self._ahead = next(self._words, None)
    return word

  def expect(self, word):
    found = self.take(repr(word))
    if found != word:
      raise self.error(f'expected {word!r}, found {_shown(found)}')

  def numbers(self, count, what):
    """The next `count` words as finite numbers (count,)."""
    words = [self.take(f'{count} numbers after {what}') for _ in range(count)]
    for word in words:
      if not _finite(word):
        raise self.error(f'{what}: {_shown(word)} is not a finite number')
    return np.asarray(words, np.float64)

  def channels(self):
    """The channel names after CHANNELS, as written in Motion.channels."""
    count = self.take('the CHANNELS count')
    if not re.fullmatch('[0-6]', count):
      raise self.error(f'CHANNELS count {_shown(count)} is not a number from 0 to 6')
    names = []
    for _ in range(int(count)):
      word = self.take(f'{count} channel names')
      name = _CHANNEL_NAMES.get(word.lower())
      if name is None:
        raise self.error(f'CHANNELS count mismatch: {count} announced, but {_shown(word)} is '
                         'not a channel name')
      if name in names:
        raise self.error(f'CHANNELS names {name} twice')
      names.append(name)
    return names


def _unexpected(word, names, stack):
  """The message for a word that has no place where it stands."""
  if word == '}':
    return "unbalanced braces: a '}' that closes no block"
  if word.lower() in _CHANNEL_NAMES:
    return f'CHANNELS count mismatch: channel name {word!r} beyond the count'
  where = (f"{'the End Site of ' if stack[-1][1] else ''}joint {names[stack[-1][0]]!r}"
           if stack else 'no joint')
  return f'unexpected {_shown(word)} in {where}'


def _parse_hierarchy(words):
  """Names, parents (-1: a root), offsets (J, 3), channels and end sites {joint: (3,)} of the
  HIERARCHY section."""
  first = words.take('HIERARCHY') if words else None
  if first != 'HIERARCHY':
    raise words.error('no HIERARCHY at the start of the file' +
                      (f' (found {_shown(first)})' if first else ''))
  names, parents, offsets, channels, end_sites = [], [], [], [], {}
  stack = []  # the open blocks: (joint, whether it is that joint's End Site)
  while words:
    word = words.take('a keyword')
    joint, in_end_site = stack[-1] if stack else (None, False)
    if word in ('ROOT', 'JOINT') and not in_end_site and (word == 'ROOT') == (joint is None):
      names.append(words.take('a joint name'))
      parents.append(-1 if joint is None else joint)
      offsets.append(None)
      channels.append(None)
      words.expect('{')
      stack.append((len(names) - 1, False))
    elif word == 'End' and joint is not None and not in_end_site:
      words.expect('Site')
      words.expect('{')
      stack.append((joint, True))
    elif word == 'OFFSET' and in_end_site:
      end_sites[names[joint]] = words.numbers(3, 'OFFSET')
    elif word == 'OFFSET' and joint is not None and offsets[joint] is None:
      offsets[joint] = words.numbers(3, 'OFFSET')
    elif word == 'CHANNELS' and joint is not None and not in_end_site and (
        channels[joint] is None):
      channels[joint] = words.channels()
    elif word == '}' and stack:
      stack.pop()
      if in_end_site and names[joint] not in end_sites:
        raise words.error(f'the End Site of joint {names[joint]!r} has no OFFSET')
      for keyword, value in (('OFFSET', offsets[joint]), ('CHANNELS', channels[joint])):
        if not in_end_site and value is None:
          raise words.error(f'joint {names[joint]!r} has no {keyword}')
    else:
      raise words.error(_unexpected(word, names, stack))
  if stack:
    raise words.error(f'unbalanced braces: {len(stack)} block(s) still open at MOTION')
  if not names:
    raise words.error('no ROOT in the HIERARCHY section')
  return names, parents, np.stack(offsets), channels, end_sites


def _finite(word):
  """Whether a word of the file (bytes or str) is a finite number."""
  word = word.decode('utf-8', 'replace') if isinstance(word, bytes) else word
  return bool(_NUMBER.fullmatch(word)) and bool(np.isfinite(float(word)))


def _text(path, header):
  """The bytes before MOTION as text; BvhError where they are not UTF-8."""
  try:
    return header.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise BvhError(f'{path}: not UTF-8 text (byte {e.start} is {header[e.start]:#04x})') from None


def _motion_lines(path, head, start):
  """(frame count, frame time s, position of the first value) from the 'Frames:' and
  'Frame Time:' lines at head[start], just after MOTION."""
  def error(what, at):
    return BvhError(f'{path}: line {head.count(_NEWLINE, 0, at) + 1}: {what}')

  frames = _FRAMES_LINE.match(head, start)
  if not frames:
    found = _BYTES_WORD.search(head, start)
    raise error("expected 'Frames: <count>' after MOTION" + (
        f", found {_shown(found.group().decode('utf-8', 'replace'))}" if found else ''),
                found.start() if found else start)
  count = frames[1].decode('utf-8', 'replace')
  if not re.fullmatch('[0-9]+', count) or not int(count):
    raise error(f'Frames: {_shown(count)} is not a positive whole number', frames.start(1))
  time = _FRAME_TIME_LINE.match(head, frames.end())
  if not time:
    raise error("expected 'Frame Time: <seconds>' on the line after 'Frames:'", frames.end())
  seconds = time[1].decode('utf-8', 'replace')
  if not _finite(seconds) or float(seconds) <= 0:
    raise error(f'Frame Time: {_shown(seconds)} is not a positive number of seconds',
                time.start(1))
  return int(count), float(seconds), time.end()


def _motion_values(path, f, start, first_line):
  """The motion values (V,) of the open file f from byte `start` (on line `first_line`),
  parsed by NumPy straight from the file: no text or list of words is held."""
  f.seek(start)
  try:
    with warnings.catch_warnings():  # NumPy < 2.3 warns where later ones raise
      warnings.simplefilter('error', DeprecationWarning)
      values = np.fromfile(f, np.float64, sep=' ')
  except (ValueError, DeprecationWarning):  # a word that is not a number, or only whitespace
    values = None
  if values is None or not np.all(np.isfinite(values)):
    f.seek(start)
    body = f.read()
    for match in _BYTES_WORD.finditer(body):
      if not _finite(match.group()):
        line = first_line + body.count(_NEWLINE, 0, match.start())
        word = match.group().decode('utf-8', 'replace')
        raise BvhError(f'{path}: line {line}: motion value {_shown(word)} is not a finite number')
    values = np.zeros(0)
  return values


def _read(path, f):
  """read_bvh of the open file f."""
  head = f.read(_HEAD_BYTES)
  motion = _MOTION.search(head)
  if not motion and len(head) == _HEAD_BYTES:  # a longer hierarchy, or no MOTION
    head += f.read()
    motion = _MOTION.search(head)
  if motion and len(head) - motion.end() < _MARGIN_BYTES:
    head += f.read(_MARGIN_BYTES)
  header = _text(path, head[:motion.start()] if motion else head)
  if not motion and not _WORD.search(header):
    raise BvhError(f'{path}: empty file')
  names, parents, offsets, channels, end_sites = _parse_hierarchy(_Words(path, header))
  if not motion:
    raise BvhError(f'{path}: no MOTION section after the HIERARCHY')
  count, frame_time, start = _motion_lines(path, head, motion.end())
  values = _motion_values(path, f, start, head.count(_NEWLINE, 0, start) + 1)
  width = sum(map(len, channels))
  if values.size != count * width:
    raise BvhError(f'{path}: {values.size} motion values, but Frames: {count} of {width} '
                   f'channels make {count * width}')
  return Motion(names, parents, offsets, channels, end_sites, values.reshape(count, width),
                frame_time)


def read_bvh(path):
  """Parses a BVH file (any hierarchy, channel orders, line ends) into a Motion; a malformed
  or unreadable file raises BvhError."""
  path = os.fspath(path)
  try:
    with open(path, 'rb') as f:
      return _read(path, f)
  except OSError as e:
    raise BvhError(f'{path}: cannot read the file ({e.strerror or e})') from e


def _axis_rotations(axis, degrees):
  """(N, 3, 3) rotations by `degrees` (N,) about the axis 0, 1 or 2 (x, y, z)."""
  radians = np.radians(degrees)
  cos, sin = np.cos(radians), np.sin(radians)
  i, j = (axis + 1) % 3, (axis + 2) % 3  # the plane turned: y z, z x or x y
  rotations = np.zeros((len(radians), 3, 3))
  rotations[:, axis, axis] = 1.0
  rotations[:, i, i], rotations[:, j, j] = cos, cos
  rotations[:, i, j], rotations[:, j, i] = -sin, sin
  return rotations


def _local_transform(offset, channels, values):
  """A joint's translation from its parent ((3,) or (N, 3), file units) and its rotation
  (N, 3, 3) in its parent's frame, from its channels' values (N, channels): position channels
  replace the offset's component, rotation channels are intrinsic, in the order written."""
  translation, rotation = offset, None
  for name, value in zip(channels, values.T):
    axis = 'XYZ'.index(name[0])
    if name.endswith('position'):
      translation = np.array(np.broadcast_to(translation, (len(values), 3)))
      translation[:, axis] = value
    else:
      turn = _axis_rotations(axis, value)
      rotation = turn if rotation is None else rotation @ turn
  if rotation is None:
    rotation = np.broadcast_to(np.eye(3), (len(values), 3, 3))
  return translation, rotation


def forward_kinematics(motion, *, with_rotations=False):
  """Joint positions (N, J, 3) of every frame of a Motion, in its file's frame and units; with
  `with_rotations`, also the joints' global rotations (N, J, 3, 3), which turn a point given
  in a joint's frame (file units) into the file's frame."""
  n, count = len(motion.frames), len(motion.names)
  positions = np.zeros((n, count, 3))
  # Joint-major while filled; without with_rotations, only those a child still needs.
  rotations = np.zeros((count, n, 3, 3)) if with_rotations else [None] * count
  last_child = {parent: joint for joint, parent in enumerate(motion.parents)}
  starts = np.cumsum([0] + [len(c) for c in motion.channels])
  for joint, parent in enumerate(motion.parents):
    translation, rotation = _local_transform(motion.offsets[joint], motion.channels[joint],
                                             motion.frames[:, starts[joint]:starts[joint + 1]])
    if parent < 0:
      positions[:, joint] = translation
    else:
      turned = rotations[parent] @ translation[..., None]  # (N, 3, 1)
      positions[:, joint] = positions[:, parent] + turned[..., 0]
      rotation = rotations[parent] @ rotation
      if not with_rotations and last_child[parent] == joint:
        rotations[parent] = None
    if with_rotations or joint in last_child:
      rotations[joint] = rotation
  if with_rotations:
    return positions, np.moveaxis(rotations, 0, 1)
  return positions
