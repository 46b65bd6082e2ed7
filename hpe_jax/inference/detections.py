"""Keypoint inputs of every --format read into rows of (frame, person) (`tracks.Rows`).

- Array files (.npz, .csv, a .json object with "keypoints"): one person in every frame
  (`keypoints.py`), in the format's layout.
- Detection lists (.json list; what COCO-style detectors and AlphaPose write):
  [{"image_id": 12, "keypoints": [x0, y0, s0, x1, y1, s1, ...], "score": 0.9,
  "track_id": 3}, ...], 3 numbers per joint of the layout (51 for COCO-17, 78 for
  Halpe-26). A frame is an image_id: integer ids are frame numbers (frame = id - the
  smallest id, so frames with nobody keep their place), other ids ("0.jpg", AlphaPose's)
  are ordered by name. A person is its `track_id`, or AlphaPose's `idx` where it is a
  number unique in each frame (AlphaPose with tracking); AlphaPose without tracking writes
  `idx` [0.0] (or [[0.0]], ...) for everyone, which is no person id.
- OpenPose (a folder of per-frame .json files, a glob such as 'out/*_keypoints.json', a
  comma-separated list, or one file): {"people": [{"pose_keypoints_2d": [x, y, c, ...]},
  ...]}; files are ordered by name (numbers by value) and frame = the file's position; a
  person is its `person_id` where OpenPose's tracking set one (>= 0) for everyone.
- mmpose (--format=mmpose; `mmpose.py`): the inferencer's and demos' JSON, its layout
  read from the file.
Where the input gives no person ids, `tracks.link` makes them (each frame's detections
matched to the tracks so far by their keypoints); how people were told apart is logged
once.

A keypoint (0, 0, 0) of a detection list or an OpenPose file is missing (NaN), and so is a
keypoint of any input with a NaN, inf or null number (`keypoints.mark_missing`, the module
docstring of `keypoints.py`); its confidence is 0. An input with nobody in it is one
KeypointError, '<path>: no people/keypoints in the file'. BlazePose's coordinates are
fractions of the image, scaled here to px by the image size.

Scores: detectors' keypoint scores are not always probabilities (mmpose's heatmap maxima
reach about 1.3, detectron2's are logits, negative too). Every input's scores are made
confidences in [0, 1] by one rule (`scores_as_confidences`): a negative score is 0, and
where some score of the input is above 1, all of them are divided by the input's highest
score (their order and ratios kept); either is logged once.
"""

import glob
import os
import re

from absl import logging
import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import layouts
from hpe_jax.inference import mmpose
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


def _unique_in_frames(ids, frames):
  """Whether no id occurs twice in one frame."""
  pairs = np.stack([np.asarray(ids, np.int64), np.asarray(frames, np.int64)], axis=-1)
  return len(np.unique(pairs, axis=0)) == len(pairs)


def _results_persons(data, frames, path):
  """(person ids or None, where they come from or why there are none) of a detection
  list: its track_ids (given for every detection or for none), else AlphaPose's idx where
  it is a number unique in each frame."""
  track_ids = [entry.get('track_id') for entry in data]
  given = [t for t in track_ids if t is not None]
  if given and len(given) != len(track_ids):
    raise KeypointError(f'{path}: {len(given)} of {len(track_ids)} detections have a track_id; '
                        'give it for every detection or for none.')
  if given:
    ids = [_int_id(t) for t in track_ids]
    if None in ids:
      i = ids.index(None)
      raise KeypointError(f'{path}: detection {i}\'s track_id {track_ids[i]!r} is not an '
                          'integer.')
    return np.asarray(ids, np.int64), 'the detections\' track_id'
  if not all('idx' in entry for entry in data):
    return None, 'the detections have no track_id'
  idx = [None if isinstance(entry['idx'], list) else _int_id(entry['idx']) for entry in data]
  if all(i is not None for i in idx) and _unique_in_frames(idx, frames):
    return np.asarray(idx, np.int64), 'AlphaPose\'s idx (its tracking)'
  return None, ('AlphaPose\'s idx is no track id (without tracking it is [0.0] for '
                'everyone)')


def _rows(points, conf, frames, image_ids, path):
  if not points:
    raise _no_people(path)
  return tracks.Rows(np.stack(points), np.stack(conf), np.asarray(frames, np.int64), None,
                     int(np.max(frames)) + 1, image_id=np.asarray(image_ids))


def from_results(data, num_joints, path):
  """(rows of a detection list (COCO results / AlphaPose JSON), values as in the file;
  where the person ids come from): rows.person is None where the list has none."""
  if not data:
    raise _no_people(path)
  points, conf, image_ids = [], [], []
  for i, entry in enumerate(data):
    if not isinstance(entry, dict) or 'keypoints' not in entry or 'image_id' not in entry:
      hint = (' (mmpose\'s output: give --format=mmpose)' if mmpose.looks_like(data) else '')
      raise KeypointError(f'{path}: detection {i} is not an object with "image_id" and '
                          f'"keypoints"{hint}.')
    p, c = _triplets(entry['keypoints'], num_joints, f'detection {i}', path)
    points.append(p)
    conf.append(c)
    image_ids.append(entry['image_id'] if not isinstance(entry['image_id'], list) else
                     str(entry['image_id']))
  rows = _rows(points, conf, _frames_of(image_ids), image_ids, path)
  rows.person, source = _results_persons(data, rows.frame, path)
  return rows, source


def frame_files(spec, writer='OpenPose'):
  """The per-frame .json files of an input: a folder, a glob, a comma list, or one file;
  writer: what writes them, one per frame (OpenPose) or image (mmpose)."""
  if os.path.isdir(spec):
    files = glob.glob(os.path.join(spec, '*.json'))
    if not files:
      raise KeypointError(f'{spec} holds no .json files ({writer} writes one per frame).')
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
      raise UsageError(f'{f}: {writer}\'s frames are .json files; give a folder, a glob or a '
                       'comma-separated list of them.')
    keypoints_lib.check_input_file(f)
  return sorted(files, key=lambda f: natural_key(os.path.basename(f)))


def from_openpose(frames_data, num_joints, names, spec):
  """(rows of OpenPose frames: [(parsed JSON of one frame, its file path)], values as in
  the files; where the person ids come from); spec: the input (a folder, a glob, a list
  or one file). rows.person is None unless OpenPose's tracking set every person_id."""
  points, conf, frames, ids, image_ids = [], [], [], [], []
  for frame, (data, path) in enumerate(frames_data):
    people = data.get('people') if isinstance(data, dict) else None
    if not isinstance(people, list):
      raise KeypointError(f'{path}: expected an OpenPose frame {{"people": [...]}}.')
    for k, person in enumerate(people):
      numbers = person.get('pose_keypoints_2d') if isinstance(person, dict) else None
      p, c = _triplets(numbers, num_joints, f'person {k}\'s pose_keypoints_2d', path)
      points.append(p)
      conf.append(c)
      frames.append(frame)
      ids.append(_int_id(person.get('person_id')))
      image_ids.append(names[frame])
  if not points:
    raise _no_people(spec, 'the file' if len(frames_data) == 1 else
                     f'its {len(frames_data)} OpenPose frames')
  rows = _rows(points, conf, frames, image_ids, frames_data[0][1])
  rows.num_frames = len(frames_data)
  if all(i is not None and i >= 0 for i in ids):
    rows.person = np.asarray(ids, np.int64)
    return rows, 'OpenPose\'s person_id (its tracking)'
  return rows, 'OpenPose\'s person_id is -1 (no tracking)'


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


def _is_file_set(path):
  return os.path.isdir(path) or _GLOB.search(path) or (',' in path and not os.path.exists(path))


def _read_rows(path, fmt):
  """(rows as in the file, with their layout; whether they are x, y, score triplets (a
  detection list or OpenPose); where the person ids come from, None for one person)."""
  if fmt == 'mmpose':
    if _is_file_set(path):
      files = frame_files(path, 'mmpose')
      frames = [(keypoints_lib.load_json(f), f) for f in files]
      rows, source = mmpose.from_images(frames, [os.path.basename(f) for f in files], path)
    else:
      keypoints_lib.check_input_file(path)
      rows, source = mmpose.from_json(keypoints_lib.load_json(path), path)
    return rows, False, source
  layout = layouts.for_format(fmt) if isinstance(fmt, str) else fmt
  rows, triplets, source = _read_layout_rows(path, layout)
  rows.layout = layout
  return rows, triplets, source


def _read_layout_rows(path, layout):
  if _is_file_set(path):
    files = frame_files(path)
    frames = [(keypoints_lib.load_json(f), f) for f in files]
    rows, source = from_openpose(frames, layout.num_joints,
                                 [os.path.basename(f) for f in files], path)
    return rows, True, source
  if not path.lower().endswith('.json'):
    rows = _from_arrays(keypoints_lib.read_arrays(path, layout.num_joints), layout, path)
    return rows, False, None
  keypoints_lib.check_input_file(path)
  data = keypoints_lib.load_json(path)
  if isinstance(data, list):
    rows, source = from_results(data, layout.num_joints, path)
    return rows, True, source
  if isinstance(data, dict) and 'people' in data:
    rows, source = from_openpose([(data, path)], layout.num_joints, [os.path.basename(path)],
                                 path)
    return rows, True, source
  if isinstance(data, dict) and mmpose.looks_like(data):
    raise UsageError(f'{path} is mmpose\'s output: give --format=mmpose.')
  if isinstance(data, dict):
    return _from_arrays(data, layout, path), False, None
  raise KeypointError(f'{path}: expected a JSON object ("keypoints" or OpenPose\'s "people") '
                      f'or a list of detections, got a {type(data).__name__}.')


def _assign_people(rows, source, path):
  """rows with person ids: the input's (each once per frame), else `tracks.link`'s; logs
  how (not for one person's array file)."""
  if rows.person is None:
    rows.person = tracks.link(rows.keypoints, rows.frame)
    logging.info('%s: %s; people told apart by linking each frame\'s detections to the '
                 'tracks of the frames before by their keypoints: %d track(s).', path, source,
                 len(np.unique(rows.person)))
    return rows
  twice = tracks.duplicates(rows)
  if twice:
    person, frame = twice[0]
    raise KeypointError(f'{path}: person {person} appears twice in frame {frame} '
                        f'({len(twice)} such pairs); track ids must be unique per frame.')
  if source:
    logging.info('%s: people told apart by %s: %d track(s).', path, source,
                 len(np.unique(rows.person)))
  return rows


def scores_as_confidences(confidences, path='input'):
  """Keypoint scores (..., J) (or None) as confidences in [0, 1]: negative scores 0, and,
  where some score is above 1, every score divided by the highest (detector scores such
  as heatmap maxima and logits are not probabilities; dividing keeps their order and
  ratios). Each change is logged once."""
  if confidences is None:
    return None
  conf = np.array(confidences, np.float64)
  negative = conf < 0
  if negative.any():
    logging.info('%s: %d keypoint score(s) below 0 (e.g. %.4g) taken as 0.', path,
                 int(negative.sum()), conf[negative][0])
    conf[negative] = 0.0
  highest = float(conf.max()) if conf.size else 0.0
  if highest > 1:
    logging.info('%s: keypoint scores up to %.4g, above 1: detector scores, not '
                 'probabilities; every score divided by %.4g to give confidences in [0, 1].',
                 path, highest, highest)
    conf /= highest
  return conf


def read(path, fmt, *, image_size=None):
  """tracks.Rows of the input `path` (module docstring), sorted by person, frame; fmt: a
  --format name (layouts.FORMATS) or a layouts.Layout; rows.layout is the keypoints'
  layout (mmpose's: the file's). Missing keypoints NaN with confidence 0 (non-finite
  numbers, and (0, 0, 0) triplets); confidences in [0, 1] (`scores_as_confidences`)."""
  rows, triplets, source = _read_rows(path, fmt)
  zeros = (np.all(rows.keypoints == 0, axis=-1) & (rows.confidences == 0) if triplets
           else np.zeros(rows.keypoints.shape[:-1], bool))
  rows.keypoints, rows.confidences = keypoints_lib.mark_missing(rows.keypoints,
                                                                rows.confidences, path)
  rows.keypoints[zeros] = np.nan
  rows.confidences = scores_as_confidences(rows.confidences, path)
  rows = _assign_people(rows, source, path)
  return tracks.sort(_scaled(rows, rows.layout, image_size))
