"""2D keypoints for the lifter: file readers, COCO-17 -> H36M-17, camera re-mapping, confidences.

Input files (N frames of 17 keypoints in pixels, in the H36M-17 or COCO-17
order, see `--format`):

- .npz: `keypoints` (N, 17, 2) x, y px, or (N, 17, 3) x, y, confidence;
  optional `confidences` (N, 17); optional `focal_length` (a scalar, (2,) fx,
  fy, or (N, 2) per frame) and `center` ((2,) cx, cy or (N, 2)) in px.
- .json: an object with the same keys holding nested lists, e.g.
  {"keypoints": [[[x, y], ... 17], ... N], "confidences": [[c, ... 17], ...],
   "focal_length": [fx, fy], "center": [cx, cy]}; keypoints may be [x, y, c].
- .csv: a header row, then one row per frame with columns x0, y0, ..., x16,
  y16 (joint i in the file's order); optional c0 ... c16 (confidences) and
  fx, fy, cx, cy (intrinsics in px, per frame). Other columns (e.g. frame) are
  ignored.

COCO-17 -> H36M-17 (vectors in px; mid(a, b) = (a + b) / 2):
  Pelvis = mid(left hip, right hip); Thorax = mid(left shoulder, right shoulder);
  Spine = mid(Pelvis, Thorax); Neck/Nose (H36M joint 9) = nose;
  Head = mean(left eye, right eye, left ear, right ear) + (mid(eyes) - nose),
    i.e. the centre of the head's four face points moved up by the
    nose-to-eyes offset (towards the top of the head in any yaw);
  hips, knees, ankles, shoulders, elbows and wrists map one to one.
  A derived joint's confidence is the lowest of the keypoints it is made of.

Camera: the lifter was trained on pixels of Human3.6M cameras (absolute
coordinates, not root-relative), so keypoints from another camera are moved
into a reference camera with the mean intrinsics of the 4 Human3.6M cameras:
x_ref = (x - c) / f * f_ref + c_ref. Lens distortion is not modelled.
"""

import csv
import dataclasses
import functools
import json
import os
from typing import Optional

import numpy as np

from tfds_h36m import cameras
from tfds_h36m import skeleton

NUM_JOINTS = 17
FORMATS = ('h36m', 'coco')
INPUT_EXTENSIONS = ('.npz', '.json', '.csv')

COCO_JOINT_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
_COCO = {name: i for i, name in enumerate(COCO_JOINT_NAMES)}
# H36M joint -> the COCO keypoint it copies.
_COCO_DIRECT = {
    'RHip': 'right_hip', 'RKnee': 'right_knee', 'RAnkle': 'right_ankle', 'LHip': 'left_hip',
    'LKnee': 'left_knee', 'LAnkle': 'left_ankle', 'Neck': 'nose',
    'LShoulder': 'left_shoulder', 'LElbow': 'left_elbow', 'LWrist': 'left_wrist',
    'RShoulder': 'right_shoulder', 'RElbow': 'right_elbow', 'RWrist': 'right_wrist'}
# Derived H36M joints -> the COCO keypoints their formula uses (for confidences).
_COCO_DERIVED_FROM = {
    'Pelvis': ('left_hip', 'right_hip'),
    'Thorax': ('left_shoulder', 'right_shoulder'),
    'Spine': ('left_hip', 'right_hip', 'left_shoulder', 'right_shoulder'),
    'Head': ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear')}


class KeypointError(ValueError):
  """Keypoint input that cannot be lifted: its message names the file and the problem."""


@dataclasses.dataclass
class Keypoints:
  """Keypoints read from a file, in the file's joint order.

  keypoints (N, 17, 2) px; confidences (N, 17) or None; focal_length and
  center (2,) or (N, 2) px, or None when the file gives no intrinsics.
  """
  keypoints: np.ndarray
  confidences: Optional[np.ndarray] = None
  focal_length: Optional[np.ndarray] = None
  center: Optional[np.ndarray] = None


def coco_to_h36m(keypoints, confidences=None):
  """COCO-17 keypoints (..., 17, 2) -> H36M-17 (..., 17, 2), and confidences (..., 17) if given."""
  kp = np.asarray(keypoints, np.float64)
  get = lambda name: kp[..., _COCO[name], :]
  mid = lambda a, b: (a + b) / 2
  pelvis = mid(get('left_hip'), get('right_hip'))
  thorax = mid(get('left_shoulder'), get('right_shoulder'))
  eyes = mid(get('left_eye'), get('right_eye'))
  face_centre = (get('left_eye') + get('right_eye') + get('left_ear') + get('right_ear')) / 4
  joints = {'Pelvis': pelvis, 'Thorax': thorax, 'Spine': mid(pelvis, thorax),
            'Head': face_centre + (eyes - get('nose'))}
  joints.update({h36m: get(coco) for h36m, coco in _COCO_DIRECT.items()})
  out = np.stack([joints[name] for name in skeleton.JOINT_NAMES], axis=-2)
  if confidences is None:
    return out, None
  conf = np.asarray(confidences, np.float64)
  sources = dict({h: (c,) for h, c in _COCO_DIRECT.items()}, **_COCO_DERIVED_FROM)
  out_conf = np.stack([conf[..., [_COCO[c] for c in sources[name]]].min(axis=-1)
                       for name in skeleton.JOINT_NAMES], axis=-1)
  return out, out_conf


@functools.lru_cache(maxsize=None)
def reference_intrinsics():
  """Focal length (2,) and centre (2,) in px of the reference camera: the 4 H36M cameras' mean."""
  intrinsics = cameras.intrinsics_by_index()
  return intrinsics['focal_length'].mean(axis=0), intrinsics['center'].mean(axis=0)


def to_reference_camera(keypoints_px, focal_length, center):
  """Moves keypoints (N, 17, 2) px into the reference camera.

  focal_length: a scalar, (2,) or (N, 2); center: (2,) or (N, 2); in px, of
  the camera the keypoints come from.
  """
  f_ref, c_ref = reference_intrinsics()
  f = np.broadcast_to(np.asarray(focal_length, np.float64), (2,)) \
      if np.ndim(focal_length) == 0 else np.asarray(focal_length, np.float64)
  c = np.asarray(center, np.float64)
  if f.ndim == 2:
    f = f[:, None]
  if c.ndim == 2:
    c = c[:, None]
  return (np.asarray(keypoints_px, np.float64) - c) / f * f_ref + c_ref


def low_confidence(confidences, threshold):
  """Frames (N,) bool whose mean confidence over the 17 joints is below threshold."""
  return np.asarray(confidences).mean(axis=-1) < threshold


def _intrinsic(value, name, num_frames, path):
  if value is None:
    return None
  value = np.asarray(value, np.float64)
  if name == 'focal_length' and value.ndim == 0:
    value = np.full(2, float(value))
  if value.shape not in ((2,), (num_frames, 2)):
    raise KeypointError(f'{path}: {name} must have shape (2,) or ({num_frames}, 2), '
                        f'got {value.shape}.')
  if not np.all(np.isfinite(value)):
    raise KeypointError(f'{path}: {name} holds NaN or infinite values.')
  if name == 'focal_length' and np.any(value <= 0):
    raise KeypointError(f'{path}: focal_length must be positive, got {value.tolist()}.')
  return value


def validate(keypoints, confidences=None, focal_length=None, center=None, *, path='input'):
  """Checks shapes and values; returns a Keypoints of float arrays or raises KeypointError."""
  try:
    kp = np.asarray(keypoints, np.float64)
  except (TypeError, ValueError) as e:
    raise KeypointError(f'{path}: keypoints are not a numeric array of shape (N, 17, 2): {e}') \
        from None
  if kp.ndim >= 1 and kp.shape[0] == 0:
    raise KeypointError(f'{path} holds no frames.')
  if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
    raise KeypointError(f'{path}: keypoints must have shape (N, 17, 2) (or (N, 17, 3) with '
                        f'confidences), got {kp.shape}.')
  if kp.shape[1] != NUM_JOINTS:
    raise KeypointError(f'{path}: expected {NUM_JOINTS} joints per frame, got {kp.shape[1]}.')
  if kp.shape[-1] == 3:
    if confidences is not None:
      raise KeypointError(f'{path}: confidences given twice (keypoints (N, 17, 3) and '
                          'a confidences array).')
    kp, confidences = kp[..., :2], kp[..., 2]
  bad = np.flatnonzero(~np.all(np.isfinite(kp), axis=(1, 2)))
  if len(bad):
    raise KeypointError(f'{path}: keypoints hold NaN or infinite values in {len(bad)} frame(s), '
                        f'first {bad[:5].tolist()}.')
  if confidences is not None:
    confidences = np.asarray(confidences, np.float64)
    if confidences.shape != kp.shape[:2]:
      raise KeypointError(f'{path}: confidences must have shape {kp.shape[:2]}, '
                          f'got {confidences.shape}.')
    if not np.all(np.isfinite(confidences)):
      raise KeypointError(f'{path}: confidences hold NaN or infinite values.')
  n = len(kp)
  return Keypoints(kp, confidences, _intrinsic(focal_length, 'focal_length', n, path),
                   _intrinsic(center, 'center', n, path))


def _read_npz(path):
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except ValueError as e:  # pickled object arrays, or not an npz file
    raise KeypointError(f'{path} is not a readable .npz of numeric arrays: {e}') from None
  return arrays


def _read_json(path):
  with open(path) as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise KeypointError(f'{path} is not valid JSON: {e}') from None
  if not isinstance(data, dict):
    raise KeypointError(f'{path}: expected a JSON object with a "keypoints" key, '
                        f'got a {type(data).__name__}.')
  return data


def _read_csv(path):
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
    header = rows[0].keys() if rows else []
  if not rows:
    raise KeypointError(f'{path} holds no frames (a header row and one row per frame '
                        'are expected).')
  joints = 0
  while f'x{joints}' in header and f'y{joints}' in header:
    joints += 1
  if joints != NUM_JOINTS:
    raise KeypointError(f'{path}: expected {NUM_JOINTS} joints per frame (columns x0, y0 ... '
                        f'x16, y16), found {joints}.')

  def column(name):
    try:
      return [float(row[name]) for row in rows]
    except (TypeError, ValueError):
      raise KeypointError(f'{path}: column {name} holds a value that is not a number.') from None

  out = {'keypoints': np.stack([np.stack([column(f'x{j}'), column(f'y{j}')], axis=-1)
                                for j in range(NUM_JOINTS)], axis=1)}
  if 'c0' in header:
    out['confidences'] = np.stack([column(f'c{j}') for j in range(NUM_JOINTS)], axis=1)
  if 'fx' in header:
    out['focal_length'] = np.stack([column('fx'), column('fy')], axis=-1)
  if 'cx' in header:
    out['center'] = np.stack([column('cx'), column('cy')], axis=-1)
  return out


def _check_extension(path, allowed, what):
  ext = os.path.splitext(path)[1].lower()
  if ext not in allowed:
    raise KeypointError(f'Unsupported {what} file {path}: extension {ext or "(none)"!r}; '
                        f'use {", ".join(allowed)}.')
  return ext


def check_input_path(path):
  """The input's extension, or a KeypointError for an unknown one."""
  return _check_extension(path, INPUT_EXTENSIONS, 'input')


def read_keypoints(path):
  """Reads and validates an input file (schemas in the module docstring) into Keypoints."""
  ext = check_input_path(path)
  if not os.path.isfile(path):
    raise KeypointError(f'Input file {path} does not exist.')
  if os.path.getsize(path) == 0:
    raise KeypointError(f'{path} is empty.')
  raw = {'.npz': _read_npz, '.json': _read_json, '.csv': _read_csv}[ext](path)
  if 'keypoints' not in raw:
    raise KeypointError(f'{path}: no "keypoints" entry (found {sorted(raw)}).')
  return validate(raw['keypoints'], raw.get('confidences'), raw.get('focal_length'),
                  raw.get('center'), path=path)
