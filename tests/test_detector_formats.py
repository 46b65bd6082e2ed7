"""Detector outputs as they come: AlphaPose without tracking (people linked frame to frame),
mmpose's inferencer and demo JSON (layout from meta_info), and keypoint scores above 1 or
below 0; tiny files in the real formats, people walking 5 m from a camera, lifted by the
packaged lifter."""

import json
import logging

import numpy as np
import pytest

from conftest import coco_of
from conftest import run_predict
import hpe_jax
from hpe_jax import predict
from hpe_jax.inference import detections
from hpe_jax.inference import keypoints
from hpe_jax.inference import layouts
from hpe_jax.inference import mmpose
from hpe_jax.inference import tracks
from tfds_h36m import skeleton

FOCAL_PX, CENTER_PX = 1000.0, (960.0, 540.0)
CAMERA = dict(focal_length=[FOCAL_PX], center=list(CENTER_PX))
J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}


@pytest.fixture(scope='module')
def lifter():
  return hpe_jax.load_lifter()


def _walk(num_frames, side_m, seed=0):
  """H36M-17 keypoints (N, 17, 2) px of a synthetic walk 5 m in front of the camera
  (FOCAL_PX, CENTER_PX), its first pelvis side_m metres right of the optical axis."""
  from tfds_h36m.synthetic import motion  # pylint: disable=g-import-not-at-top
  world = motion.generate_sequence(np.random.default_rng(seed),
                                   motion.subject_bone_lengths('S9'), 'Walking', num_frames)
  cam = np.stack([world[..., 0], -world[..., 2], world[..., 1]], axis=-1).astype(np.float64)
  cam[..., 2] += 5000.0 - cam[0, 0, 2]
  cam[..., 0] += 1000.0 * side_m - cam[0, 0, 0]
  return cam[..., :2] / cam[..., 2:] * FOCAL_PX + np.asarray(CENTER_PX)


def _halpe_of(h36m):
  """Halpe-26 (N, 26, 2) px: COCO-17's face and body, a head top above H36M's Head (so the
  Halpe layout's Head differs from the face's), neck, hip and feet."""
  head_top = h36m[:, J['Head']] + 0.5 * (h36m[:, J['Head']] - h36m[:, J['Neck']])
  feet = [h36m[:, J[a]] + d for a, d in (
      ('LAnkle', (8, 12)), ('RAnkle', (-8, 12)), ('LAnkle', (4, 12)), ('RAnkle', (-4, 12)),
      ('LAnkle', (-2, 6)), ('RAnkle', (2, 6)))]
  extra = np.stack([head_top, h36m[:, J['Thorax']], h36m[:, J['Pelvis']]] + feet, axis=1)
  return np.concatenate([coco_of(h36m), extra], axis=1)


def _triplets(points, scores):
  return np.concatenate([points, np.asarray(scores)[:, None]], axis=1).ravel().tolist()


def _alphapose(people, order, tracked=False):
  """AlphaPose's results JSON: people {idx: (N, J, 2) px}; order: per frame, the people
  listed (in that order). Untracked, every idx is [0.0], as AlphaPose writes it."""
  out = []
  for frame, listed in enumerate(order):
    for k in listed:
      points = people[k][frame]
      out.append({'image_id': f'{frame}.jpg', 'category_id': 1, 'score': 2.7,
                  'keypoints': _triplets(points, np.full(len(points), 0.8)),
                  'box': [*points.min(0), *(points.max(0) - points.min(0))],
                  'idx': k if tracked else [0.0]})
  return out


# Frames 2-3 list B first, frame 4 has only B, frame 6 only A: an order in the frame would
# swap them.
ORDER = [('a', 'b'), ('a', 'b'), ('b', 'a'), ('b', 'a'), ('b',), ('a', 'b'), ('a',)]


def test_untracked_alphapose_people_are_linked_and_lifted_apart(lifter, tmp_path, caplog):
  coco = {'a': coco_of(_walk(7, -0.8)), 'b': coco_of(_walk(7, 0.9, seed=1))}
  h36m = {k: keypoints.coco_to_h36m(v)[0] for k, v in coco.items()}  # the torso derived
  src = tmp_path / 'alphapose-results.json'
  src.write_text(json.dumps(_alphapose(coco, ORDER)))
  caplog.set_level(logging.INFO, logger='absl')
  out = predict.predict_file(lifter, str(src), str(tmp_path / 'poses.npz'), fmt='coco_results',
                             **CAMERA)
  np.testing.assert_array_equal(out['person_id'], [0] * 6 + [1] * 6)
  for person, name in enumerate('ab'):
    rows = out['person_id'] == person
    frames = [f for f, listed in enumerate(ORDER) if name in listed]
    np.testing.assert_array_equal(out['frame'][rows], frames)
    np.testing.assert_array_equal(out['image_id'][rows], [f'{f}.jpg' for f in frames])
    np.testing.assert_allclose(out['keypoints_2d_px'][rows], h36m[name][frames], atol=1e-3)
    alone = lifter.lift(h36m[name][frames], focal_length=FOCAL_PX, center=CENTER_PX).poses_mm
    np.testing.assert_allclose(out['poses_3d_mm'][rows], alone, atol=1e-2)
  said = [r.getMessage() for r in caplog.records if 'people told apart' in r.getMessage()]
  assert len(said) == 1 and "AlphaPose's idx is no track id" in said[0], said
  assert '2 track(s)' in said[0]


def _openpose(folder, people, order):
  folder.mkdir()
  for frame, listed in enumerate(order):
    (folder / f'v_{frame:012d}_keypoints.json').write_text(json.dumps({'people': [
        {'person_id': [-1], 'pose_keypoints_2d': _triplets(people[k][frame], np.full(25, 0.7))}
        for k in listed]}))
  return str(folder)


@pytest.mark.parametrize('kind', ['alphapose_halpe', 'alphapose_tracked', 'coco_no_ids',
                                  'openpose_untracked'])
def test_people_keep_their_ids_whatever_their_order_in_the_frame(tmp_path, kind):
  h36m = {'a': _walk(7, -0.8), 'b': _walk(7, 0.9, seed=1)}
  path = tmp_path / 'in.json'
  if kind == 'openpose_untracked':
    fmt = 'openpose25'
    points = {}
    for k, v in h36m.items():  # COCO-17 into BODY_25's order (neck, mid-hip, feet unused)
      coco, body25 = coco_of(v), np.zeros((7, 25, 2))
      index = dict(zip(layouts.OPENPOSE25.body.values(), layouts.OPENPOSE25.body.keys()))
      for j in range(25):
        body25[:, j] = coco[:, layouts.COCO.body[index[j]]] if j in index else coco[:, 0]
      points[k] = body25
    path = _openpose(tmp_path / 'openpose', points, ORDER)
  elif kind == 'alphapose_halpe':
    fmt = 'halpe26'
    data = _alphapose({k: _halpe_of(v) for k, v in h36m.items()}, ORDER)
    for entry in data:
      entry['idx'] = [[0.0], [0.0]]  # another of AlphaPose's untracked forms
    path.write_text(json.dumps(data))
  else:
    fmt = 'coco_results'
    data = _alphapose({k: coco_of(v) for k, v in h36m.items()}, ORDER,
                      tracked=kind == 'alphapose_tracked')
    if kind == 'alphapose_tracked':
      for entry in data:
        entry['idx'] = {'a': 7, 'b': 3}[entry['idx']]
    else:
      for entry in data:
        del entry['idx']
    path.write_text(json.dumps(data))
  rows = detections.read(str(path), fmt)
  a_id, b_id = (7, 3) if kind == 'alphapose_tracked' else (0, 1)
  h36m_rows = layouts.to_h36m(rows.layout, rows.keypoints)[0]
  for name, person in (('a', a_id), ('b', b_id)):
    frames = [f for f, listed in enumerate(ORDER) if name in listed]
    np.testing.assert_array_equal(rows.frame[rows.person == person], frames)
    mine = h36m_rows[rows.person == person][:, [J['LKnee'], J['RWrist']]]
    np.testing.assert_allclose(mine, h36m[name][frames][:, [J['LKnee'], J['RWrist']]],
                               atol=1e-6)


def test_link_starts_a_track_for_someone_new_and_keeps_gaps():
  a, b = _walk(4, -1.0), _walk(4, 1.0, seed=1)
  # Frame 0: A; frame 1: B alone (far from A: a new track); frame 3: A again after a gap.
  keypoints = np.stack([a[0], b[1], a[3], b[3]])
  keypoints[2, :5] = np.nan  # missing joints are left out of the distance
  np.testing.assert_array_equal(tracks.link(keypoints, [0, 1, 3, 3]), [0, 1, 0, 1])
  np.testing.assert_array_equal(tracks.link(np.zeros((0, 17, 2)), np.zeros(0)), [])


META_HALPE26 = {  # what the demos' --save-predictions writes (json_tricks' numpy arrays)
    'dataset_name': 'halpe26', 'num_keypoints': 26,
    'keypoint_id2name': {str(i): n for i, n in enumerate(layouts.HALPE26.joint_names)},
    'keypoint_name2id': {n: i for i, n in enumerate(layouts.HALPE26.joint_names)},
    'sigmas': {'__ndarray__': [0.026] * 26, 'dtype': 'float32', 'shape': [26]},
    'flip_indices': list(range(26))}


def _instance(points, scores):
  low, high = points.min(0), points.max(0)
  return {'keypoints': points.tolist(), 'keypoint_scores': list(scores),
          'bbox': [[*low, *high]], 'bbox_score': 0.93}




def test_mmpose_video_with_meta_info_lifts_in_its_layout(lifter, tmp_path, capsys, caplog):
  h36m = _walk(4, 0.2)
  halpe = _halpe_of(h36m)
  scores = np.linspace(0.4, 1.3, 26)  # heatmap maxima: up to 1.3
  frames = [{'frame_id': f + 1, 'instances': [_instance(halpe[f], scores)]} for f in range(4)]
  frames.append({'frame_id': 5, 'instances': []})  # the demos count frames from 1
  src = tmp_path / 'results_walk.json'
  src.write_text(json.dumps({'meta_info': META_HALPE26, 'instance_info': frames}))
  out_path = tmp_path / 'poses.npz'
  status, err = run_predict(capsys, f'--input={src}', '--format=mmpose', f'--output={out_path}',
                      f'--focal_length={FOCAL_PX}', '--center=960,540')
  assert status == 0 and 'Error' not in err, err
  caplog.set_level(logging.INFO, logger='absl')  # after the flags' reset of absl's level
  assert detections.read(str(src), 'mmpose').layout is layouts.HALPE26
  said = ' '.join(r.getMessage() for r in caplog.records)
  assert 'mmpose keypoints read as --format=halpe26: Halpe-26' in said
  assert 'scores up to 1.3, above 1' in said and "mmpose writes no person ids" in said
  with np.load(out_path) as out:
    np.testing.assert_array_equal(out['frame'], [0, 1, 2, 3])
    np.testing.assert_array_equal(out['image_id'], [1, 2, 3, 4])
    assert out['num_frames'] == 5
    expected, conf = layouts.to_h36m(layouts.HALPE26, halpe, np.tile(scores / 1.3, (4, 1)))
    assert np.linalg.norm(expected[:, J['Head']] - h36m[:, J['Head']], axis=-1).min() > 5
    np.testing.assert_allclose(out['keypoints_2d_px'], expected, atol=1e-3)
    np.testing.assert_allclose(out['confidences'], conf, atol=1e-6)
    np.testing.assert_allclose(
        out['poses_3d_mm'], lifter.lift(expected, focal_length=FOCAL_PX,
                                        center=CENTER_PX).poses_mm, atol=1e-2)


def test_mmpose_image_forms(lifter, tmp_path, caplog):
  a, b = coco_of(_walk(3, -0.8)), coco_of(_walk(3, 0.9, seed=1))
  scores = np.full(17, 0.9)
  # The inferencer's image form: a list of instances; no meta_info, 17 keypoints: COCO-17.
  src = tmp_path / '000001.json'
  src.write_text(json.dumps([_instance(a[0], scores), _instance(b[0], scores)]))
  caplog.set_level(logging.INFO, logger='absl')
  out = predict.predict_file(lifter, str(src), str(tmp_path / 'poses.npz'), fmt='mmpose',
                             **CAMERA)
  np.testing.assert_array_equal(out['person_id'], [0, 1])
  np.testing.assert_array_equal(out['frame'], [0, 0])
  np.testing.assert_allclose(out['keypoints_2d_px'],
                             keypoints.coco_to_h36m(np.stack([a[0], b[0]]))[0], atol=1e-3)
  assert any("COCO-17, mmpose's default body model (17 keypoints, no meta_info" in
             r.getMessage() for r in caplog.records)
  # The demo's image form with meta_info: COCO-WholeBody-133, its first 17 are COCO-17.
  names = list(layouts.COCO.joint_names) + [f'face-{i}' for i in range(116)]
  wholebody = np.concatenate([a[0], np.full((116, 2), 700.0)])
  src.write_text(json.dumps({
      'meta_info': {'dataset_name': 'coco_wholebody', 'num_keypoints': 133,
                    'keypoint_name2id': {n: i for i, n in enumerate(names)}},
      'instance_info': [_instance(wholebody, np.full(133, 0.5))]}))
  rows = detections.read(str(src), 'mmpose')
  assert rows.layout is layouts.COCO and rows.keypoints.shape == (1, 17, 2)
  np.testing.assert_allclose(rows.keypoints[0], a[0])
  # The inferencer on a folder of images: one file per image, frames by name.
  folder = tmp_path / 'predictions'
  folder.mkdir()
  for f in (2, 0, 10):
    frame = min(f, 2)
    (folder / f'img_{f}.json').write_text(json.dumps([_instance(b[frame], scores)]))
  rows = detections.read(str(folder), 'mmpose')
  np.testing.assert_array_equal(rows.frame, [0, 1, 2])
  np.testing.assert_array_equal(rows.image_id, ['img_0.json', 'img_2.json', 'img_10.json'])
  np.testing.assert_allclose(rows.keypoints, b[[0, 2, 2]])


def test_detector_scores_above_1_and_below_0_are_confidences(lifter, tmp_path, caplog):
  coco = coco_of(_walk(3, 0.0))
  logits = np.tile(np.linspace(-1.0, 4.0, 17), (3, 1))  # detectron2's keypoint logits
  src = tmp_path / 'detectron2.json'
  src.write_text(json.dumps([{'image_id': f, 'category_id': 1, 'score': 0.99,
                              'keypoints': _triplets(coco[f], logits[f])} for f in range(3)]))
  caplog.set_level(logging.INFO, logger='absl')
  out = predict.predict_file(lifter, str(src), str(tmp_path / 'poses.npz'), fmt='coco_results',
                             **CAMERA)
  expected = np.clip(logits, 0, None) / 4.0
  np.testing.assert_allclose(out['confidences'], keypoints.coco_to_h36m(coco, expected)[1],
                             atol=1e-6)
  said = [r.getMessage() for r in caplog.records if 'keypoint score' in r.getMessage()]
  assert len(said) == 2, said
  assert '12 keypoint score(s) below 0 (e.g. -1) taken as 0' in said[0]
  assert 'scores up to 4, above 1' in said[1] and 'divided by 4' in said[1]
  np.testing.assert_allclose(detections.scores_as_confidences([[0.2, 1.0]]), [[0.2, 1.0]])


@pytest.mark.parametrize('meta, num_keypoints, layout', [
    ({'dataset_name': 'h36m', 'keypoint_id2name': dict(enumerate(mmpose.H36M_NAMES))}, 17,
     layouts.H36M),
    ({'dataset_name': 'halpe26'}, 26, layouts.HALPE26),
    ({'keypoint_name2id': {n: i for i, n in enumerate(layouts.COCO.joint_names)}}, 17,
     layouts.COCO),
    (None, 26, layouts.HALPE26),
    (None, 136, layouts.HALPE26),  # Halpe's full body: its first 26 are Halpe-26
    (None, 133, layouts.COCO),  # COCO-WholeBody: its first 17 are COCO-17
])
def test_mmpose_layouts(tmp_path, meta, num_keypoints, layout):
  points = np.concatenate([_halpe_of(_walk(1, 0.0))[0], np.full((110, 2), 600.0)])
  frames = [{'frame_id': 0, 'instances': [_instance(points[:num_keypoints],
                                                    np.full(num_keypoints, 0.5))]}]
  (tmp_path / 'in.json').write_text(json.dumps(
      frames if meta is None else {'meta_info': meta, 'instance_info': frames}))
  rows = detections.read(str(tmp_path / 'in.json'), 'mmpose')
  assert rows.layout is layout
  np.testing.assert_allclose(rows.keypoints[0], points[:layout.num_joints])


def _mmpose_frames(num_keypoints):
  return [{'frame_id': 0, 'instances': [{'keypoints': [[500.0, 400.0]] * num_keypoints,
                                         'keypoint_scores': [0.9] * num_keypoints}]}]


@pytest.mark.parametrize('fmt, data, error, message', [
    ('coco', {'meta_info': {}, 'instance_info': _mmpose_frames(17)}, keypoints.UsageError,
     r"in.json is mmpose's output: give --format=mmpose\.$"),
    ('coco_results', _mmpose_frames(17), keypoints.KeypointError,
     r"detection 0 is not an object .* \(mmpose's output: give --format=mmpose\)\.$"),
    ('mmpose', {'meta_info': {'dataset_name': 'mpii', 'keypoint_id2name': {
        str(i): f'j{i}' for i in range(16)}}, 'instance_info': _mmpose_frames(16)},
     keypoints.KeypointError, r"meta_info names keypoints hpe_jax does not read "
     r"\(dataset_name 'mpii', 16 keypoints"),
    ('mmpose', _mmpose_frames(21), keypoints.KeypointError,
     r'21 keypoints per instance and no meta_info naming them'),
    ('mmpose', [{'frame_id': 0, 'instances': [{'keypoints': [[1, 2]] * 17}]}],
     keypoints.KeypointError, r'has no "keypoint_scores"'),
    ('coco_results', [{'image_id': 0, 'track_id': 'x7', 'keypoints': [1, 2, 0.5] * 17}],
     keypoints.KeypointError, r"detection 0's track_id 'x7' is not an integer\.$"),
    ('mmpose', [{'image_id': 0, 'keypoints': [1, 2, 3] * 17}], keypoints.KeypointError,
     r"frame 0's instance 0: keypoints must have shape"),
])
def test_a_file_that_does_not_fit_is_one_line(tmp_path, fmt, data, error, message):
  (tmp_path / 'in.json').write_text(json.dumps(data))
  with pytest.raises(error, match=message) as raised:
    detections.read(str(tmp_path / 'in.json'), fmt)
  assert '\n' not in str(raised.value)
