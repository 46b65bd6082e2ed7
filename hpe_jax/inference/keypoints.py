"""2D keypoints for the lifter: array file readers, value checks, camera re-mapping, confidences.

Array files (one person, N frames of J keypoints in pixels in the order of the
`--format`'s layout, J = 17 for H36M-17 and COCO-17; `layouts.py`):

- .npz: `keypoints` (N, J, 2) x, y px, or (N, J, 3) x, y, confidence;
  optional `confidences` (N, J); optional `focal_length` (a scalar, (2,) fx,
  fy, or (N, 2) per frame) and `center` ((2,) cx, cy or (N, 2)) in px.
- .json: an object with the same keys holding nested lists, e.g.
  {"keypoints": [[[x, y], ... J], ... N], "confidences": [[c, ... J], ...],
   "focal_length": [fx, fy], "center": [cx, cy]}; keypoints may be [x, y, c].
- .csv: a header row, then one row per frame with columns x0, y0, ..., x{J-1},
  y{J-1} (joint i in the file's order); optional c0 ... (confidences) and
  fx, fy, cx, cy (intrinsics in px, per frame). Other columns (e.g. frame) are
  ignored.
Files are read as UTF-8; a file that is not one of these is one KeypointError.

Missing joints, one rule for every input format (array files here, detection lists and
OpenPose in `detections.py`): a keypoint with a NaN or infinite x, y or confidence (JSON's
null included) is missing, as a detector's (0, 0, 0) is: its x, y become NaN and its
confidence 0 (an array file without confidences is given them, 1 and 0 for its missing
joints), so it is filled in time within its track and shows as 0 in the outputs'
confidences; `mark_missing` applies it and logs how many keypoints it took. `Lifter.lift`
takes arrays, not files: it refuses non-finite values, except NaN (x and y) limb joints,
which it places at their parents.

Layouts -> H36M-17 (COCO-17 and the others): `layouts.to_h36m`, one derivation.
Plausible values: |x|, |y| <= MAX_ABS_PX and confidences in [0, 1]; others are
refused, or clipped with a warning (`check_plausible(..., clip=True)`). The readers of
detector files have already turned scores into confidences in [0, 1]
(`detections.scores_as_confidences`), so only coordinates reach this check out of range.

Camera: the lifter was trained on pixels of Human3.6M cameras (absolute
coordinates, not root-relative), so keypoints from another camera are moved
into a reference camera with the mean intrinsics of the 4 Human3.6M cameras:
x_ref = (x - c) / f * f_ref + c_ref; a calibrated lens's distortion is undone first
(`camera.Intrinsics.moved_into`).
"""

import csv
import dataclasses
import functools
import json
import numbers
import os
from typing import Optional
import zipfile
import zlib

from absl import logging
import numpy as np

from hpe_jax.inference import layouts
from tfds_h36m import cameras
from tfds_h36m import skeleton

NUM_JOINTS = 17
FORMATS = layouts.FORMATS
INPUT_EXTENSIONS = ('.npz', '.json', '.csv')
MAX_ABS_PX = 1e5  # larger coordinates are not pixels of any camera

COCO_JOINT_NAMES = layouts.COCO_JOINT_NAMES


class KeypointError(ValueError):
  """Keypoint input that cannot be lifted: its message names the file and the problem."""


class UsageError(KeypointError):
  """Arguments that do not fit (a flag, a path, a format for the file): exit status 2."""


@dataclasses.dataclass
class Keypoints:
  """Keypoints read from a file, in the file's joint order.

  keypoints (N, J, 2) px; confidences (N, J) or None; focal_length and
  center (2,) or (N, 2) px, or None when the file gives no intrinsics.
  """
  keypoints: np.ndarray
  confidences: Optional[np.ndarray] = None
  focal_length: Optional[np.ndarray] = None
  center: Optional[np.ndarray] = None



def coco_to_h36m(keypoints, confidences=None):
  """COCO-17 keypoints (..., 17, 2) -> H36M-17 (..., 17, 2), and confidences (..., 17) if given
  (`layouts.to_h36m` of the COCO layout)."""
  return layouts.to_h36m(layouts.COCO, keypoints, confidences)


@functools.lru_cache(maxsize=None)
def reference_intrinsics():
  """Focal length (2,) and centre (2,) in px of the reference camera: the 4 H36M cameras' mean."""
  intrinsics = cameras.intrinsics_by_index()
  return intrinsics['focal_length'].mean(axis=0), intrinsics['center'].mean(axis=0)


def low_confidence(confidences, threshold):
  """Frames (N,) bool whose mean confidence over the 17 joints is below threshold."""
  return np.asarray(confidences).mean(axis=-1) < threshold


def _real(value):
  """value as a float64 array (null: NaN), or None when it is not an array of real numbers:
  ragged lists, text (numbers written as strings too), complex numbers, other objects."""
  try:
    raw = np.asarray(value)
  except (TypeError, ValueError):  # ragged
    return None
  if raw.dtype.kind == 'O':
    if not all(v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool))
               for v in raw.flat):
      return None
  elif raw.dtype.kind not in 'biuf':
    return None
  try:
    return np.asarray(raw, np.float64)
  except OverflowError:  # a whole number beyond float64
    return None


def _numbers(value, what, path):
  """value as a float64 array, or a KeypointError naming `what` (ragged lists, text)."""
  array = _real(value)
  if array is None:
    raise KeypointError(f'{path}: {what} is not a numeric array (ragged lists or text, e.g. '
                        f'{_excerpt(value)}).')
  return array


def _excerpt(value):
  if isinstance(value, np.ndarray):
    value = value.ravel()[:8].tolist() if value.ndim else value.tolist()
  text = json.dumps(value, default=str)
  return text if len(text) <= 40 else text[:37] + '...'


def _intrinsic(value, name, num_frames, path):
  if value is None:
    return None
  value = _numbers(value, name, path)
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


def joint_count_error(path, got, expected, message=None):
  """The one-line error for `got` joints where the format has `expected` (message: the text
  after the path): a UsageError naming the formats that have `got` joints, or a KeypointError
  when none has."""
  message = f'{path}: ' + (message or f'expected {expected} joints per frame, got {got}')
  fitting = layouts.formats_with(got)
  if fitting:
    return UsageError(f'{message}; --format={" or ".join(fitting)} has {got}.')
  return KeypointError(message + '.')


def validate(keypoints, confidences=None, focal_length=None, center=None, *, path='input',
             num_joints=NUM_JOINTS, missing=(), keep_non_finite=False):
  """Checks shapes and values; returns a Keypoints of float arrays or raises KeypointError.
  `missing`: H36M-17 joint names that may be NaN (x and y) where a detector missed them;
  keep_non_finite: keypoints and confidences may hold any NaN or inf (a file's, for
  `mark_missing`)."""
  kp = _real(keypoints)
  if kp is None:
    raise KeypointError(f'{path}: keypoints are not a numeric array of shape (N, {num_joints}, '
                        f'2): ragged lists, text or complex numbers, e.g. '
                        f'{_excerpt(keypoints)}.')
  if kp.ndim >= 1 and kp.shape[0] == 0:
    raise KeypointError(f'{path} holds no frames.')
  if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
    raise KeypointError(f'{path}: keypoints must have shape (N, {num_joints}, 2) (or (N, '
                        f'{num_joints}, 3) with confidences), got {kp.shape}.')
  if kp.shape[1] != num_joints:
    raise joint_count_error(path, kp.shape[1], num_joints)
  if kp.shape[-1] == 3:
    if confidences is not None:
      raise KeypointError(f'{path}: confidences given twice (keypoints (N, {num_joints}, 3) '
                          'and a confidences array).')
    kp, confidences = kp[..., :2], kp[..., 2]
  finite = np.isfinite(kp) | keep_non_finite
  if missing and num_joints == NUM_JOINTS:
    allowed = np.isin(np.asarray(skeleton.JOINT_NAMES), missing)
    finite |= (allowed[:, None] & np.all(np.isnan(kp), axis=-1, keepdims=True))
  bad = np.flatnonzero(~np.all(finite, axis=(1, 2)))
  if len(bad):
    raise KeypointError(f'{path}: keypoints hold NaN or infinite values in {len(bad)} frame(s), '
                        f'first {bad[:5].tolist()}.')
  if confidences is not None:
    confidences = _numbers(confidences, 'confidences', path)
    if confidences.shape != kp.shape[:2]:
      raise KeypointError(f'{path}: confidences must have shape {kp.shape[:2]}, '
                          f'got {confidences.shape}.')
    if not (keep_non_finite or np.all(np.isfinite(confidences))):
      raise KeypointError(f'{path}: confidences hold NaN or infinite values.')
  n = len(kp)
  return Keypoints(kp, confidences, _intrinsic(focal_length, 'focal_length', n, path),
                   _intrinsic(center, 'center', n, path))


def mark_missing(keypoints, confidences, path='input'):
  """The module docstring's rule: keypoints (..., J, 2) and confidences (..., J) or None
  with every keypoint that holds a NaN or inf (x, y or confidence) missing: x, y NaN and
  confidence 0 (confidences of 1 made where there were none and some are missing). Logs
  how many in one line; returns (keypoints, confidences)."""
  kp = np.array(keypoints, np.float64)
  bad = ~np.all(np.isfinite(kp), axis=-1)
  if confidences is not None:
    bad |= ~np.isfinite(np.asarray(confidences, np.float64))
  if not bad.any():
    return kp, confidences
  logging.warning('%s: %d of %d keypoints hold NaN or infinite values; they are missing '
                  '(confidence 0), filled in time like undetected ones.', path,
                  int(bad.sum()), bad.size)
  kp[bad] = np.nan
  conf = (np.ones(bad.shape) if confidences is None
          else np.array(confidences, np.float64))
  conf[bad] = 0.0
  return kp, conf


def check_plausible(keypoints, confidences, *, clip=False, path='input'):
  """(keypoints, confidences) with |x|, |y| <= MAX_ABS_PX and confidences in [0, 1] (NaN:
  missing, allowed); values outside are a KeypointError, or clipped with a warning."""
  kp = np.asarray(keypoints, np.float64)
  with np.errstate(invalid='ignore'):
    far = np.abs(kp) > MAX_ABS_PX
    outside = np.zeros(0, bool) if confidences is None else (
        (np.asarray(confidences) < 0) | (np.asarray(confidences) > 1))
  problems = []
  if far.any():
    problems.append(f'{int(far.sum())} coordinate(s) beyond +-{MAX_ABS_PX:g} px (e.g. '
                    f'{kp[far][0]:g})')
  if outside.any():
    problems.append(f'{int(outside.sum())} confidence(s) outside [0, 1] (e.g. '
                    f'{np.asarray(confidences)[outside][0]:g})')
  if not problems:
    return kp, confidences
  if not clip:
    raise KeypointError(f'{path}: {" and ".join(problems)}; not keypoints in px with scores '
                        'in [0, 1] (--clip_input clips them).')
  logging.warning('%s: clipped %s.', path, ' and '.join(problems))
  kp = np.clip(kp, -MAX_ABS_PX, MAX_ABS_PX)
  return kp, None if confidences is None else np.clip(confidences, 0.0, 1.0)


def _read_npz(path):
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except ValueError as e:  # pickled object arrays, or not an npz file
    raise KeypointError(f'{path} is not a readable .npz of numeric arrays: {e}') from None
  except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
    raise KeypointError(f'{path} is not a readable .npz (truncated or damaged: '
                        f'{type(e).__name__}: {e}).') from None
  except (TypeError, AttributeError):  # np.load gave an array: a .npy file named .npz
    raise KeypointError(f'{path} is a .npy array, not an .npz archive: save it with '
                        'np.savez(path, keypoints=array).') from None
  return arrays


def read_text(path):
  """The text of a UTF-8 file, or a KeypointError."""
  try:
    with open(path, encoding='utf-8', newline='') as f:
      return f.read()
  except UnicodeDecodeError as e:
    raise KeypointError(f'{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset '
                        f'{e.start}).') from None


def load_json(path):
  """The parsed JSON of a UTF-8 file, or a KeypointError."""
  try:
    return json.loads(read_text(path))
  except json.JSONDecodeError as e:
    raise KeypointError(f'{path} is not valid JSON: {e}') from None
  except RecursionError:
    raise KeypointError(f'{path}: JSON nested too deep to read (lists or objects within '
                        'each other thousands of levels down).') from None


def _read_json(path):
  data = load_json(path)
  if not isinstance(data, dict):
    raise KeypointError(f'{path}: expected a JSON object with a "keypoints" key, '
                        f'got a {type(data).__name__}.')
  return data


def _read_csv(path, num_joints):
  rows = list(csv.DictReader(read_text(path).splitlines()))
  header = rows[0].keys() if rows else []
  if not rows:
    raise KeypointError(f'{path} holds no frames (a header row and one row per frame '
                        'are expected).')
  joints = 0
  while f'x{joints}' in header and f'y{joints}' in header:
    joints += 1
  if joints != num_joints:
    raise joint_count_error(path, joints, num_joints, (
        f'expected {num_joints} joints per frame (columns x0, y0 ... x{num_joints - 1}, '
        f'y{num_joints - 1}), found {joints}'))

  def column(name):
    try:
      return [float(row[name]) for row in rows]
    except (TypeError, ValueError):
      raise KeypointError(f'{path}: column {name} holds a value that is not a number.') from None

  out = {'keypoints': np.stack([np.stack([column(f'x{j}'), column(f'y{j}')], axis=-1)
                                for j in range(num_joints)], axis=1)}
  if 'c0' in header:
    out['confidences'] = np.stack([column(f'c{j}') for j in range(num_joints)], axis=1)
  if 'fx' in header:
    out['focal_length'] = np.stack([column('fx'), column('fy')], axis=-1)
  if 'cx' in header:
    out['center'] = np.stack([column('cx'), column('cy')], axis=-1)
  return out


def _check_extension(path, allowed, what):
  ext = os.path.splitext(path)[1].lower()
  if ext not in allowed:
    raise UsageError(f'Unsupported {what} file {path}: extension {ext or "(none)"!r}; '
                     f'use {", ".join(allowed)}.')
  return ext


def check_input_path(path):
  """The input's extension, or a UsageError for an unknown one."""
  return _check_extension(path, INPUT_EXTENSIONS, 'input')


def check_input_file(path):
  """A KeypointError unless `path` is a non-empty file."""
  if os.path.isdir(path):
    raise UsageError(f'Input {path} is a directory; this --format reads one file.')
  if not os.path.isfile(path):
    raise UsageError(f'Input file {path} does not exist.')
  if os.path.getsize(path) == 0:
    raise KeypointError(f'{path} is empty.')


def from_arrays(raw, path, num_joints=NUM_JOINTS):
  """Keypoints of a dict of arrays read from `path` (the module docstring's schemas), NaN and
  inf as in the file (for `mark_missing`)."""
  if 'keypoints' not in raw:
    raise KeypointError(f'{path}: no "keypoints" entry (found {sorted(raw)}).')
  return validate(raw['keypoints'], raw.get('confidences'), raw.get('focal_length'),
                  raw.get('center'), path=path, num_joints=num_joints, keep_non_finite=True)


def read_arrays(path, num_joints=NUM_JOINTS):
  """The arrays of an array file (schemas in the module docstring), unchecked: a dict."""
  ext = check_input_path(path)
  check_input_file(path)
  if ext == '.csv':
    return _read_csv(path, num_joints)
  return {'.npz': _read_npz, '.json': _read_json}[ext](path)


def read_keypoints(path, num_joints=NUM_JOINTS):
  """Reads and validates an array file (schemas in the module docstring) into Keypoints,
  non-finite keypoints missing (`mark_missing`)."""
  kp = from_arrays(read_arrays(path, num_joints), path, num_joints)
  kp.keypoints, kp.confidences = mark_missing(kp.keypoints, kp.confidences, path)
  return kp
