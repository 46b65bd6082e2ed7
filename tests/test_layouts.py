"""Detector layouts -> H36M-17 on hand-made skeletons, and each format's file layout read back."""

import json

import numpy as np
import pytest

from hpe_jax.inference import detections
from hpe_jax.inference import keypoints
from hpe_jax.inference import layouts
from tfds_h36m import skeleton

# A hand-made person (px, y down) facing the camera, by body point.
BODY = {
    'nose': (100, 50), 'left_eye': (104, 46), 'right_eye': (96, 46), 'left_ear': (110, 50),
    'right_ear': (90, 50), 'left_shoulder': (120, 80), 'right_shoulder': (80, 80),
    'left_elbow': (130, 110), 'right_elbow': (70, 110), 'left_wrist': (135, 140),
    'right_wrist': (65, 140), 'left_hip': (112, 160), 'right_hip': (88, 160),
    'left_knee': (114, 200), 'right_knee': (86, 200), 'left_ankle': (115, 240),
    'right_ankle': (85, 240)}
# By hand: Pelvis = mid-hip, Thorax = mid-shoulder, Spine = their midpoint, Neck/Nose = nose,
# Head = mean(eyes, ears) (100, 48) + mid-eyes (100, 46) - nose (100, 50) = (100, 44).
H36M = {
    'Pelvis': (100, 160), 'RHip': (88, 160), 'RKnee': (86, 200), 'RAnkle': (85, 240),
    'LHip': (112, 160), 'LKnee': (114, 200), 'LAnkle': (115, 240), 'Spine': (100, 120),
    'Thorax': (100, 80), 'Neck': (100, 50), 'Head': (100, 44), 'LShoulder': (120, 80),
    'LElbow': (130, 110), 'LWrist': (135, 140), 'RShoulder': (80, 80), 'RElbow': (70, 110),
    'RWrist': (65, 140)}
HEAD_TOP = (100, 30)
JUNK = (999, 999)  # joints the mapping must not use (detectors' necks, mid-hips, feet, hands)

# Each layout's joints in its published order (../shared/FORMATS.md), written out by hand:
# a body point, 'head_top', or None for a joint the mapping does not use.
_COCO_ORDER = list(BODY)
ORDERS = {
    'coco': _COCO_ORDER,
    'halpe26': _COCO_ORDER + ['head_top', None, None, None, None, None, None, None, None],
    'openpose25': [
        'nose', None, 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
        'left_elbow', 'left_wrist', None, 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
        'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear', 'left_ear', None, None,
        None, None, None, None],
    'openpose18': [
        'nose', None, 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
        'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
        'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear', 'left_ear'],
    'blazepose33': [
        'nose', None, 'left_eye', None, None, 'right_eye', None, 'left_ear', 'right_ear', None,
        None, 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist',
        'right_wrist', None, None, None, None, None, None, 'left_hip', 'right_hip',
        'left_knee', 'right_knee', 'left_ankle', 'right_ankle', None, None, None, None],
}


def skeleton_in(fmt, offset=(0, 0)):
  """The hand-made person (J, 2) px in the layout of `fmt`."""
  points = dict(BODY, head_top=HEAD_TOP)
  return np.array([points[p] if p else JUNK for p in ORDERS[fmt]], np.float64) + offset


def expected_h36m(fmt):
  out = dict(H36M, Head=HEAD_TOP) if fmt == 'halpe26' else H36M
  return np.array([out[name] for name in skeleton.JOINT_NAMES], np.float64)


@pytest.mark.parametrize('fmt', list(ORDERS))
def test_each_layout_maps_a_hand_made_skeleton(fmt):
  layout = layouts.for_format(fmt)
  assert layout.num_joints == len(ORDERS[fmt])
  frames = np.stack([skeleton_in(fmt), skeleton_in(fmt, (10, -5))])
  h36m, conf = layouts.to_h36m(layout, frames, np.full(frames.shape[:2], 0.8))
  np.testing.assert_allclose(h36m[0], expected_h36m(fmt))
  np.testing.assert_allclose(h36m[1], expected_h36m(fmt) + [10, -5])  # translation-equivariant
  np.testing.assert_allclose(conf, 0.8)


def test_derived_confidences_and_missing_face_points():
  frame = skeleton_in('openpose25')
  conf = np.full(25, 0.9)
  conf[18] = 0.2  # LEar
  conf[12] = 0.5  # LHip
  _, c = layouts.to_h36m(layouts.OPENPOSE25, frame, conf)
  by_name = dict(zip(skeleton.JOINT_NAMES, c))
  assert by_name['Head'] == 0.2 and by_name['Neck'] == 0.9
  assert by_name['Pelvis'] == by_name['Spine'] == by_name['LHip'] == 0.5
  # A missing ear (NaN) drops out of the face means: eyes and the other ear remain.
  frame[18] = np.nan
  h36m, _ = layouts.to_h36m(layouts.OPENPOSE25, frame)
  face_centre = (np.array([104, 46]) + [96, 46] + [90, 50]) / 3
  np.testing.assert_allclose(h36m[10], face_centre + ([100, 46] - np.array([100, 50])))
  frame[12] = np.nan  # a missing hip: Pelvis and Spine are missing too
  h36m, _ = layouts.to_h36m(layouts.OPENPOSE25, frame)
  assert np.isnan(h36m[[0, 4, 7]]).all() and np.isfinite(h36m[[1, 8, 9, 10]]).all()


def test_coco_to_h36m_is_the_layout_mapping():
  frame = skeleton_in('coco')
  np.testing.assert_array_equal(keypoints.coco_to_h36m(frame)[0],
                                layouts.to_h36m(layouts.COCO, frame)[0])
  assert layouts.for_format('coco_results') is layouts.COCO
  assert layouts.formats_with(17) == ['h36m', 'coco', 'coco_results']


def _results(fmt, frames):
  """A detection list: [(image_id, track_id or None, offset)] of the hand-made person."""
  out = []
  for image_id, track, offset in frames:
    points = skeleton_in(fmt, offset)
    entry = {'image_id': image_id, 'category_id': 1, 'score': 0.9,
             'keypoints': np.concatenate([points, np.full((len(points), 1), 0.8)], axis=1)
                          .ravel().tolist()}
    if track is not None:
      entry['track_id'] = track
    out.append(entry)
  return out


@pytest.mark.parametrize('fmt', ['coco_results', 'halpe26'])
def test_detection_lists_read_back_per_track(tmp_path, fmt):
  layout_fmt = 'coco' if fmt == 'coco_results' else fmt
  # Two tracks, frames 10..13 with frame 12 empty, listed out of order.
  path = tmp_path / 'results.json'
  path.write_text(json.dumps(_results(layout_fmt, [
      (13, 7, (3, 0)), (10, 7, (0, 0)), (10, 2, (200, 0)), (11, 7, (1, 0)), (13, 2, (203, 0))])))
  rows = detections.read(str(path), layouts.for_format(fmt))
  np.testing.assert_array_equal(rows.person, [2, 2, 7, 7, 7])
  np.testing.assert_array_equal(rows.frame, [0, 3, 0, 1, 3])
  np.testing.assert_array_equal(rows.image_id, [10, 13, 10, 11, 13])
  assert rows.num_frames == 4
  h36m, conf = layouts.to_h36m(layouts.for_format(fmt), rows.keypoints, rows.confidences)
  np.testing.assert_allclose(h36m[1], expected_h36m(layout_fmt) + [203, 0])
  np.testing.assert_allclose(h36m[4], expected_h36m(layout_fmt) + [3, 0])
  np.testing.assert_allclose(conf, 0.8)


def test_detection_lists_without_tracks_use_the_order_in_each_frame(tmp_path):
  path = tmp_path / 'results.json'
  path.write_text(json.dumps(_results('coco', [('b.jpg', None, (0, 0)), ('a.jpg', None, (5, 0)),
                                               ('b.jpg', None, (9, 0))])))
  rows = detections.read(str(path), layouts.COCO)
  np.testing.assert_array_equal(rows.person, [0, 0, 1])
  np.testing.assert_array_equal(rows.frame, [0, 1, 1])  # a.jpg, then b.jpg
  np.testing.assert_array_equal(rows.image_id, ['a.jpg', 'b.jpg', 'b.jpg'])


def _openpose_frame(fmt, people):
  def person(offset):
    points = np.concatenate([skeleton_in(fmt, offset), np.full((len(ORDERS[fmt]), 1), 0.7)],
                            axis=1)
    points[1] = 0  # OpenPose writes a missing joint as (0, 0, 0): the Neck here
    return {'person_id': [-1], 'pose_keypoints_2d': points.ravel().tolist()}
  return {'version': 1.3, 'people': [person(o) for o in people]}


@pytest.mark.parametrize('fmt', ['openpose25', 'openpose18'])
def test_openpose_folders_read_back(tmp_path, fmt):
  # Files out of name order on disk; frame 1 has nobody; frame 10 sorts after frame 2.
  for number, people in [(10, [(0, 0)]), (2, [(0, 0), (50, 0)]), (1, []), (0, [(1, 1)])]:
    (tmp_path / f'clip_{number:012d}_keypoints.json').write_text(
        json.dumps(_openpose_frame(fmt, people)))
  rows = detections.read(str(tmp_path), layouts.for_format(fmt))
  np.testing.assert_array_equal(rows.frame, [0, 2, 3, 2])
  np.testing.assert_array_equal(rows.person, [0, 0, 0, 1])
  assert rows.num_frames == 4 and rows.image_id[0] == 'clip_000000000000_keypoints.json'
  assert np.isnan(rows.keypoints[:, 1]).all() and (rows.confidences[:, 1] == 0).all()
  h36m, _ = layouts.to_h36m(layouts.for_format(fmt), rows.keypoints, rows.confidences)
  np.testing.assert_allclose(h36m[3], expected_h36m(fmt) + [50, 0])
  # The same frames as a glob and as a comma-separated list.
  files = sorted(str(p) for p in tmp_path.iterdir())
  for spec in (str(tmp_path / '*_keypoints.json'), ','.join(files)):
    np.testing.assert_array_equal(detections.read(spec, layouts.for_format(fmt)).frame,
                                  rows.frame)


def test_blazepose_arrays_are_scaled_by_the_image_size(tmp_path):
  size = np.array([640.0, 480.0])
  normalised = skeleton_in('blazepose33') / size
  visibility = np.full((2, 33, 1), 0.6)
  xyzv = np.concatenate([np.stack([normalised] * 2), np.zeros((2, 33, 1)), visibility], axis=-1)
  np.savez(tmp_path / 'pose.npz', keypoints=xyzv)  # x, y, z, visibility: z is dropped
  rows = detections.read(str(tmp_path / 'pose.npz'), layouts.BLAZEPOSE33, image_size=size)
  h36m, conf = layouts.to_h36m(layouts.BLAZEPOSE33, rows.keypoints, rows.confidences)
  np.testing.assert_allclose(h36m[1], expected_h36m('blazepose33'))
  np.testing.assert_allclose(conf, 0.6)
  with pytest.raises(keypoints.UsageError, match='give --image_size=WIDTH,HEIGHT'):
    detections.read(str(tmp_path / 'pose.npz'), layouts.BLAZEPOSE33)


@pytest.mark.parametrize('fmt, write, message', [
    ('coco_results', lambda p: p.write_text(json.dumps(_results('halpe26', [(0, None, (0, 0))]))),
     r'detection 0 holds 26 keypoints .*the format has 17; --format=halpe26 has 26'),
    ('openpose18', lambda p: p.write_text(json.dumps(_openpose_frame('openpose25', [(0, 0)]))),
     r'holds 25 keypoints .*the format has 18; --format=openpose25 has 25'),
    ('coco', lambda p: np.savez(p.with_suffix('.npz'), keypoints=np.zeros((2, 33, 2))),
     r'expected 17 joints per frame, got 33; --format=blazepose33 has 33'),
    ('coco_results', lambda p: p.write_text(json.dumps(
        _results('coco', [(0, 1, (0, 0))]) + _results('coco', [(1, None, (0, 0))]))),
     r'1 of 2 detections have a track_id; give it for every detection or for none'),
    ('coco_results', lambda p: p.write_text(json.dumps(_results('coco', [(0, 4, (0, 0))]) * 2)),
     r'person 4 appears twice in frame 0'),
    ('coco_results', lambda p: p.write_text('[{"image_id": 0, "keypoints": [1, 2]}]'),
     r'detection 0 holds 2 numbers, not x, y, score triplets'),
    ('coco', lambda p: p.write_text('"text"'), r'expected a JSON object .* got a str'),
])
def test_a_format_that_does_not_fit_is_one_line(tmp_path, fmt, write, message):
  write(tmp_path / 'in.json')
  (path,) = list(tmp_path.iterdir())
  with pytest.raises(keypoints.KeypointError, match=message) as error:
    detections.read(str(path), layouts.for_format(fmt))
  assert '\n' not in str(error.value)


def test_derive_torso_on_a_hand_made_skeleton():
  h36m = np.array([H36M[name] for name in skeleton.JOINT_NAMES], np.float64)
  moved = h36m.copy()
  for name, offset in (('Pelvis', (3, -20)), ('Spine', (-4, 9)), ('Thorax', (0, -15))):
    moved[skeleton.JOINT_NAMES.index(name)] += offset  # Human3.6M's own torso joints
  np.testing.assert_array_equal(layouts.derive_torso(moved[None])[0], h36m)
  np.testing.assert_array_equal(layouts.derive_torso(h36m), h36m)  # a fixed point


def test_a_detector_input_lifter_derives_the_torso(tiny_lifting_run, tmp_path):
  """A workdir whose config has input_layout 'detector' lifts H36M-17 keypoints as the same
  model lifts their derived torso, in `lift` and in the exported function alike."""
  import shutil  # pylint: disable=g-import-not-at-top
  import hpe_jax  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'detector'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  (workdir / 'config.json').write_text(json.dumps(dict(config, input_layout='detector')))
  plain = hpe_jax.load_lifter(tiny_lifting_run['workdir'], checkpoint='last')
  detector = hpe_jax.load_lifter(str(workdir), checkpoint='last')
  kp = np.array([H36M[name] for name in skeleton.JOINT_NAMES], np.float64)[None] * 4 + 300
  kp[0, skeleton.JOINT_NAMES.index('Thorax')] += (0, -60)
  derived = layouts.derive_torso(kp)
  # In px of the lifters' reference camera (posterior_mean_px's input).
  reference = dict(zip(('focal_length', 'center'), keypoints.reference_intrinsics()))
  np.testing.assert_allclose(detector.lift(kp, **reference).poses_mm,
                             plain.lift(derived, **reference).poses_mm, atol=1e-4)
  assert np.abs(plain.lift(kp, **reference).poses_mm -
                plain.lift(derived, **reference).poses_mm).max() > 1e-3
  np.testing.assert_allclose(detector.posterior_mean_px(kp.astype(np.float32)),
                             detector.lift(kp, **reference).poses_mm, atol=1e-2)
