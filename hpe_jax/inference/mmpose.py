"""mmpose's keypoint files (--format=mmpose) read into `tracks.Rows`, their layout the file's.

What mmpose writes (mmpose/apis/inferencers/base_mmpose_inferencer.py, demo/
topdown_demo_with_mmdet.py):
- `MMPoseInferencer(...)(video, pred_out_dir=...)`: [{"frame_id": 0, "instances":
  [instance, ...]}, ...], one entry per frame (the demos count frames from 1; frame =
  frame_id - the smallest, so frames with nobody keep their place);
- for an image: [instance, ...]; a folder, a glob or a comma-separated list of such files
  (the inferencer on a folder of images writes one per image) is one frame per file,
  ordered by name (numbers by value);
- the demos' --save-predictions: {"meta_info": {...}, "instance_info": <either form>},
  meta_info being the model's dataset meta ("dataset_name", "num_keypoints",
  "keypoint_id2name", "keypoint_name2id", ...).
An instance: {"keypoints": [[x, y], ...] px, "keypoint_scores": [s, ...], "bbox": [[x1, y1,
x2, y2]], "bbox_score": s}; the bbox is not used; a "track_id" on every instance (a
tracker's) is the person id, else `detections` links people frame to frame.

Layout, taken from meta_info's keypoint names (or its dataset_name) where the file has it,
else from the keypoint count, and logged: COCO-17 (17: mmpose's default body model),
COCO-WholeBody-133 (its first 17 keypoints are COCO-17's body: read as COCO-17), Halpe-26
(26) and Halpe's full body 136 (its first 26 are Halpe-26), Human3.6M-17 (meta_info only:
mmpose's h36m keypoints are Human3.6M's 17 in this package's order, though mmpose names
joints 1-3 left_* where the package says RHip, RKnee, RAnkle).
"""

from absl import logging
import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import layouts
from hpe_jax.inference import tracks

KeypointError = keypoints_lib.KeypointError
# mmpose's configs/_base_/datasets/h36m.py, in its order.
H36M_NAMES = (
    'root', 'left_hip', 'left_knee', 'left_foot', 'right_hip', 'right_knee', 'right_foot',
    'spine', 'thorax', 'neck_base', 'head', 'left_shoulder', 'left_elbow', 'left_wrist',
    'right_shoulder', 'right_elbow', 'right_wrist')
# Keypoint count -> (layout, what the file's keypoints are), for files without meta_info.
_BY_COUNT = {17: (layouts.COCO, 'COCO-17, mmpose\'s default body model'),
             26: (layouts.HALPE26, 'Halpe-26'),
             133: (layouts.COCO, 'the COCO-17 body of COCO-WholeBody-133'),
             136: (layouts.HALPE26, 'the Halpe-26 of Halpe\'s full body 136')}
_BY_DATASET = {'coco': layouts.COCO, 'coco_wholebody': layouts.COCO,
               'halpe26': layouts.HALPE26, 'halpe': layouts.HALPE26, 'h36m': layouts.H36M}


def looks_like(data):
  """Whether parsed JSON has the shape of an mmpose file (module docstring)."""
  if isinstance(data, dict):
    return 'instance_info' in data
  first = data[0] if isinstance(data, list) and data else None
  return isinstance(first, dict) and ('instances' in first or 'keypoint_scores' in first)


def _names(meta):
  """meta_info's keypoint names in id order, or None."""
  id2name, name2id = meta.get('keypoint_id2name'), meta.get('keypoint_name2id')
  try:
    if isinstance(id2name, dict) and id2name:
      return tuple(str(n) for _, n in sorted((int(i), n) for i, n in id2name.items()))
    if isinstance(name2id, dict) and name2id:
      return tuple(str(n) for n, _ in sorted(name2id.items(), key=lambda item: int(item[1])))
  except (TypeError, ValueError):  # ids that are not numbers
    return None
  return None


def _from_meta(meta, path):
  """(layout, what) named by meta_info's keypoint names or dataset_name, or None."""
  names, dataset = _names(meta), meta.get('dataset_name')
  if names:
    if names[:layouts.HALPE26.num_joints] == layouts.HALPE26.joint_names:
      return layouts.HALPE26, f'Halpe-26 (the first 26 of {len(names)} keypoint names)'
    if names[:17] == layouts.COCO.joint_names:
      return layouts.COCO, f'COCO-17 (the first 17 of {len(names)} keypoint names)'
    if names == H36M_NAMES:
      return layouts.H36M, 'Human3.6M-17 (mmpose\'s h36m keypoint names)'
  if dataset in _BY_DATASET:
    return _BY_DATASET[dataset], f'{_BY_DATASET[dataset].name} (dataset_name {dataset!r})'
  if names or dataset:
    raise KeypointError(
        f'{path}: meta_info names keypoints hpe_jax does not read (dataset_name {dataset!r}, '
        f'{len(names or ())} keypoints, first {list((names or ())[:3])}); it reads COCO-17, '
        'COCO-WholeBody-133, Halpe-26, Halpe-136 and H36M-17.')
  return None


def _layout(meta, num_keypoints, path):
  """The layout of the file's keypoints (module docstring), logged."""
  found = _from_meta(meta, path) if isinstance(meta, dict) else None
  if found is None:
    if num_keypoints not in _BY_COUNT:
      raise KeypointError(f'{path}: {num_keypoints} keypoints per instance and no meta_info '
                          'naming them; hpe_jax reads 17 (COCO), 26 (Halpe), 133 '
                          '(COCO-WholeBody) and 136 (Halpe full body).')
    layout, what = _BY_COUNT[num_keypoints]
    found = layout, f'{what} ({num_keypoints} keypoints, no meta_info naming them)'
  layout, what = found
  if num_keypoints < layout.num_joints:
    raise KeypointError(f'{path}: instances hold {num_keypoints} keypoints; meta_info names '
                        f'{what}.')
  logging.info('%s: mmpose keypoints read as --format=%s: %s.', path, layout.name, what)
  return layout


def _instance(instance, where, path):
  """(keypoints (K, 2), scores (K,), track id or None) of one instance, as in the file."""
  if not isinstance(instance, dict) or 'keypoints' not in instance:
    raise KeypointError(f'{path}: {where} is not an mmpose instance {{"keypoints": [[x, y], '
                        '...], "keypoint_scores": [...]}.')
  points, scores = instance['keypoints'], instance.get('keypoint_scores')
  kp = keypoints_lib.validate(
      [points], None if scores is None else [scores], path=f'{path}: {where}',
      num_joints=len(points) if isinstance(points, list) else 0, keep_non_finite=True)
  if kp.confidences is None:
    raise KeypointError(f'{path}: {where} has no "keypoint_scores".')
  track = instance.get('track_id')
  track = track if isinstance(track, int) and not isinstance(track, bool) else None
  return kp.keypoints[0], kp.confidences[0], track


def _frames(instance_info, path):
  """[(frame id, instances)] of the video form, or one frame of the image form."""
  if not isinstance(instance_info, list):
    raise KeypointError(f'{path}: expected mmpose\'s list of frames or of instances, got a '
                        f'{type(instance_info).__name__}.')
  if not instance_info or not all(isinstance(f, dict) and 'instances' in f
                                  for f in instance_info):
    return [(0, instance_info)]
  out = []
  for i, frame in enumerate(instance_info):
    frame_id = frame.get('frame_id', i)
    if isinstance(frame_id, bool) or not isinstance(frame_id, int):
      raise KeypointError(f'{path}: frame {i}\'s frame_id is not an integer: {frame_id!r}.')
    if not isinstance(frame['instances'], list):
      raise KeypointError(f'{path}: frame {i}\'s "instances" is not a list.')
    out.append((frame_id, frame['instances']))
  return out


def _rows(frames, meta, path, names=None):
  """(rows, where the person ids come from) of [(frame id, instances)] with meta_info (or
  None); names: each frame's image name (else the frame id is the image id)."""
  first_id = min(f for f, _ in frames)
  points, scores, rows_frame, tracked, image_ids = [], [], [], [], []
  for k, (frame_id, instances) in enumerate(frames):
    for i, instance in enumerate(instances):
      p, s, track = _instance(instance, f'frame {frame_id}\'s instance {i}', path)
      points.append(p)
      scores.append(s)
      rows_frame.append(frame_id - first_id)
      tracked.append(track)
      image_ids.append(frame_id if names is None else names[k])
  if not points:
    raise KeypointError(f'{path}: no people/keypoints in the file.')
  counts = {len(p) for p in points}
  if len(counts) > 1:
    raise KeypointError(f'{path}: instances hold different numbers of keypoints '
                        f'({sorted(counts)}).')
  layout = _layout(meta, counts.pop(), path)
  rows = tracks.Rows(np.stack(points)[:, :layout.num_joints],
                     np.stack(scores)[:, :layout.num_joints], np.asarray(rows_frame, np.int64),
                     None, max(f for f, _ in frames) - first_id + 1,
                     image_id=np.asarray(image_ids), layout=layout)
  if all(t is not None for t in tracked):
    rows.person = np.asarray(tracked, np.int64)
    return rows, 'mmpose\'s track_id'
  return rows, 'mmpose writes no person ids'


def from_json(data, path):
  """(rows, where the person ids come from) of one mmpose file's parsed JSON."""
  meta = None
  if isinstance(data, dict):
    if 'instance_info' not in data:
      raise KeypointError(f'{path}: expected mmpose\'s {{"meta_info": ..., "instance_info": '
                          '[...]}} or a list of frames or instances.')
    meta, data = data.get('meta_info'), data['instance_info']
  return _rows(_frames(data, path), meta, path)


def from_images(files_data, names, spec):
  """(rows, where the person ids come from) of per-image files [(parsed JSON, path)] in
  frame order, named `names`; spec: the input (a folder, a glob or a list)."""
  frames, meta = [], None
  for k, (data, path) in enumerate(files_data):
    if isinstance(data, dict) and 'instance_info' in data:
      meta, data = data.get('meta_info') or meta, data['instance_info']
    image = _frames(data, path)
    if len(image) != 1:
      raise KeypointError(f'{path}: a video\'s {len(image)} frames; give a folder of '
                          'per-image files, or the video\'s file alone.')
    frames.append((k, image[0][1]))
  return _rows(frames, meta, spec, names)
