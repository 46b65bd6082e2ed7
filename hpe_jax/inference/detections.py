"""Keypoint inputs of every --format read into rows of (frame, person) (`tracks.Rows`).

- Array files (.npz, .csv, a .json object with "keypoints"): one person in every frame
  (`keypoints.py`), in the format's layout.
- Detection lists (.json list; what COCO-style detectors and AlphaPose write):
  [{"image_id": 12, "keypoints": [x0, y0, s0, x1, y1, s1, ...], "score": 0.9,
  "track_id": 3}, ...], 3 numbers per joint of the layout (51 for COCO-17, 78 for
  Halpe-26). A frame is an image_id: integer ids are frame numbers (frame = id - the
  smallest id, so frames with nobody keep their place), other ids are ordered by name. A
  person is its `track_id` (or AlphaPose's integer `idx`) when every detection has one,
  otherwise its position among its image's detections.
- OpenPose (a folder of per-frame .json files, a glob such as 'out/*_keypoints.json', a
  comma-separated list, or one file): {"people": [{"pose_keypoints_2d": [x, y, c, ...]},
  ...]}; files are ordered by name (numbers by value) and frame = the file's position; a
  person is its position in the frame's list (its `person_id` when OpenPose's tracking
  set one).
A keypoint (0, 0, 0) of a detection list or an OpenPose file is missing (NaN), and so is a
keypoint of any input with a NaN, inf or null number (`keypoints.mark_missing`, the module
docstring of `keypoints.py`); its confidence is 0. An input with nobody in it is one
KeypointError, '<path>: no people/keypoints in the file'. BlazePose's coordinates are
fractions of the image, scaled here to px by the image size.
"""

import glob
import os
import re

import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import tracks

KeypointError = keypoints_lib.KeypointError
UsageError = keypoints_lib.UsageError
_GLOB = re.compile(r'[*?[]')


def natural_key(text):
  """Sort key that orders the numbers in a name by value ('f2' before 'f10')."""
  return [(0, int(part), '') if part.isdigit() else (1, 0, part)
          for part in re.split(r'(\d+)', str(text)) if part]


def _no_people(path, where='the file'):
  return KeypointError(f'{path}: no people/keypoints in {where}')


def _triplets(numbers, num_joints, where, path):
  """[x, y, c] * J -> keypoints (J, 2), confidences (J,) as in the file (null: NaN; `read`
  marks the missing ones)."""
  if not isinstance(numbers, list) or not all(
      v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
    raise KeypointError(f'{path}: {where} is not a list of numbers.')
  if not numbers:
    raise KeypointError(f'{path}: {where} holds no keypoints.')
  if len(numbers) % 3:
    raise KeypointError(f'{path}: {where} holds {len(numbers)} numbers, not x, y, score '
                        'triplets.')
  if len(numbers) != 3 * num_joints:
    raise keypoints_lib.joint_count_error(
        path, len(numbers) // 3, num_joints,
        f'{where} holds {len(numbers) // 3} keypoints (x, y, score), the format has {num_joints}')
  try:
    values = np.asarray(numbers, np.float64).reshape(num_joints, 3)
  except OverflowError:  # a whole number of hundreds of digits
    raise KeypointError(f'{path}: {where} holds a number beyond the float64 range.') from None
  return values[:, :2], values[:, 2]


def _int_id(value):
  """value as an int when it is one (3, 3.0, [3]), else None."""
  if isinstance(value, list) and len(value) == 1:
    value = value[0]
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return int(value) if float(value).is_integer() else None


def _frames_of(image_ids):
  """Frame index of each image id (integers: id - smallest; else the rank by name)."""
  ints = [_int_id(i) if not isinstance(i, list) else None for i in image_ids]
  if all(i is not None for i in ints):
    ints = np.asarray(ints, np.int64)
    return ints - ints.min()
  names = sorted({str(i) for i in image_ids}, key=natural_key)
  rank = {name: r for r, name in enumerate(names)}
  return np.asarray([rank[str(i)] for i in image_ids], np.int64)


def _persons(track_ids, frames, path, what):
  """Person ids: the tracker's when every detection has one, else the order in the frame."""
  given = [t for t in track_ids if t is not None]
  if given and len(given) != len(track_ids):
    raise KeypointError(f'{path}: {len(given)} of {len(track_ids)} detections have a {what}; '
                        'give it for every detection or for none.')
  if given:
    return np.asarray(track_ids, np.int64)
  order = np.zeros(len(frames), np.int64)
  seen = {}
  for i, f in enumerate(frames):
    order[i] = seen.get(int(f), 0)
    seen[int(f)] = order[i] + 1
  return order


def _rows(points, conf, frames, persons, image_ids, path):
  if not points:
    raise _no_people(path)
  rows = tracks.Rows(np.stack(points), np.stack(conf), np.asarray(frames, np.int64),
                     np.asarray(persons, np.int64), int(np.max(frames)) + 1,
                     image_id=np.asarray(image_ids))
  twice = tracks.duplicates(rows)
  if twice:
    person, frame = twice[0]
    raise KeypointError(f'{path}: person {person} appears twice in frame {frame} '
                        f'({len(twice)} such pairs); track ids must be unique per frame.')
  return rows


def from_results(data, num_joints, path):
  """Rows of a detection list (COCO results / AlphaPose JSON), values as in the file."""
  if not data:
    raise _no_people(path)
  points, conf, image_ids, track_ids = [], [], [], []
  for i, entry in enumerate(data):
    if not isinstance(entry, dict) or 'keypoints' not in entry or 'image_id' not in entry:
      raise KeypointError(f'{path}: detection {i} is not an object with "image_id" and '
                          '"keypoints".')
    p, c = _triplets(entry['keypoints'], num_joints, f'detection {i}', path)
    points.append(p)
    conf.append(c)
    image_ids.append(entry['image_id'] if not isinstance(entry['image_id'], list) else
                     str(entry['image_id']))
    track = entry.get('track_id', entry.get('idx'))
    track_ids.append(None if track is None else _int_id(track))
  frames = _frames_of(image_ids)
  persons = _persons(track_ids, frames, path, 'track_id')
  return _rows(points, conf, frames, persons, image_ids, path)


def openpose_files(spec):
  """The per-frame files of an OpenPose input: a folder, a glob, a comma list, or one file."""
  if os.path.isdir(spec):
    files = glob.glob(os.path.join(spec, '*.json'))
    if not files:
      raise KeypointError(f'{spec} holds no .json files (OpenPose writes one per frame).')
  elif _GLOB.search(spec):
    files = glob.glob(spec)
    if not files:
      raise UsageError(f'No file matches {spec}.')
  elif ',' in spec and not os.path.exists(spec):
    files = [p for p in spec.split(',') if p]
  else:
    files = [spec]
  for f in files:
    if not f.lower().endswith('.json'):
      raise UsageError(f'{f}: OpenPose frames are .json files; give a folder, a glob or a '
                       'comma-separated list of them.')
    keypoints_lib.check_input_file(f)
  return sorted(files, key=lambda f: natural_key(os.path.basename(f)))


def from_openpose(frames_data, num_joints, names, spec):
  """Rows of OpenPose frames: [(parsed JSON of one frame, its file path)], values as in the
  files; spec: the input (a folder, a glob, a list or one file)."""
  points, conf, frames, persons, image_ids = [], [], [], [], []
  for frame, (data, path) in enumerate(frames_data):
    people = data.get('people') if isinstance(data, dict) else None
    if not isinstance(people, list):
      raise KeypointError(f'{path}: expected an OpenPose frame {{"people": [...]}}.')
    ids = [_int_id(p.get('person_id')) if isinstance(p, dict) else None for p in people]
    tracked = people and all(i is not None and i >= 0 for i in ids)
    for k, person in enumerate(people):
      numbers = person.get('pose_keypoints_2d') if isinstance(person, dict) else None
      p, c = _triplets(numbers, num_joints, f'person {k}\'s pose_keypoints_2d', path)
      points.append(p)
      conf.append(c)
      frames.append(frame)
      persons.append(ids[k] if tracked else k)
      image_ids.append(names[frame])
  if not points:
    raise _no_people(spec, 'the file' if len(frames_data) == 1 else
                     f'its {len(frames_data)} OpenPose frames')
  rows = _rows(points, conf, frames, persons, image_ids, frames_data[0][1])
  rows.num_frames = len(frames_data)
  return rows


def _scaled(rows, layout, image_size):
  if not layout.normalized:
    return rows
  if image_size is None:
    raise UsageError(f'--format={layout.name} gives coordinates as fractions of the image: '
                     'give --image_size=WIDTH,HEIGHT (px).')
  rows.keypoints = rows.keypoints * np.asarray(image_size, np.float64)
  return rows


def _from_arrays(raw, layout, path):
  """One person's rows of an array file; BlazePose's (N, 33, 4) x, y, z, visibility drops z."""
  kp = raw.get('keypoints')
  if layout.normalized and np.ndim(kp) == 3 and np.shape(kp)[-1] == 4:
    raw = dict(raw, keypoints=np.asarray(kp)[..., [0, 1, 3]])
  kp = keypoints_lib.from_arrays(raw, path, layout.num_joints)
  return tracks.single_person(kp.keypoints, kp.confidences, kp.focal_length, kp.center)


def _read_rows(path, layout):
  """(rows as in the file, whether it is x, y, score triplets: a detection list or OpenPose)."""
  if os.path.isdir(path) or _GLOB.search(path) or (',' in path and not os.path.exists(path)):
    files = openpose_files(path)
    frames = [(keypoints_lib.load_json(f), f) for f in files]
    return from_openpose(frames, layout.num_joints, [os.path.basename(f) for f in files],
                         path), True
  if not path.lower().endswith('.json'):
    return _from_arrays(keypoints_lib.read_arrays(path, layout.num_joints), layout, path), False
  keypoints_lib.check_input_file(path)
  data = keypoints_lib.load_json(path)
  if isinstance(data, list):
    return from_results(data, layout.num_joints, path), True
  if isinstance(data, dict) and 'people' in data:
    return from_openpose([(data, path)], layout.num_joints, [os.path.basename(path)],
                         path), True
  if isinstance(data, dict):
    return _from_arrays(data, layout, path), False
  raise KeypointError(f'{path}: expected a JSON object ("keypoints" or OpenPose\'s "people") '
                      f'or a list of detections, got a {type(data).__name__}.')


def read(path, layout, *, image_size=None):
  """tracks.Rows of the input `path` in `layout` (module docstring), sorted by person, frame;
  missing keypoints NaN with confidence 0 (non-finite numbers, and (0, 0, 0) triplets)."""
  rows, triplets = _read_rows(path, layout)
  zeros = (np.all(rows.keypoints == 0, axis=-1) & (rows.confidences == 0) if triplets
           else np.zeros(rows.keypoints.shape[:-1], bool))
  rows.keypoints, rows.confidences = keypoints_lib.mark_missing(rows.keypoints,
                                                                rows.confidences, path)
  rows.keypoints[zeros] = np.nan
  return tracks.sort(_scaled(rows, layout, image_size))
