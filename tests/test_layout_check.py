"""The check of 2D keypoints against their declared layout (`layout_check`), in the API and in
predict, on a hand-made 3D person projected into a 1920 x 1080 camera; and predict's camera
lines when intrinsics are given per frame."""

import json

import numpy as np
import pytest

import hpe_jax
from hpe_jax import cli
from hpe_jax import predict
from hpe_jax.inference import layout_check
from hpe_jax.inference import layouts

from conftest import run_predict

FOCAL_PX, CENTER_PX = 1500.0, np.array([960.0, 540.0])
# A person (mm; x to the person's left, y down, z away from the camera) facing the camera,
# pelvis at the origin, by COCO-17 body point.
BODY_MM = {
    'nose': (0, -600, -100), 'left_eye': (35, -640, -80), 'right_eye': (-35, -640, -80),
    'left_ear': (75, -620, 0), 'right_ear': (-75, -620, 0), 'left_shoulder': (170, -450, 0),
    'right_shoulder': (-170, -450, 0), 'left_elbow': (200, -180, 0),
    'right_elbow': (-200, -180, 0), 'left_wrist': (210, 60, -50), 'right_wrist': (-210, 60, -50),
    'left_hip': (110, 0, 0), 'right_hip': (-110, 0, 0), 'left_knee': (115, 430, 0),
    'right_knee': (-115, 430, 0), 'left_ankle': (115, 850, 0), 'right_ankle': (-115, 850, 0)}
CROUCHING_MM = dict(BODY_MM, left_knee=(130, 250, -330), right_knee=(-130, 250, -330),
                    left_ankle=(120, 650, -60), right_ankle=(-120, 650, -60))


def _rotation(axis, degrees):
  t = np.deg2rad(degrees)
  c, s = np.cos(t), np.sin(t)
  i, j = [a for a in range(3) if a != axis]
  r = np.eye(3)
  r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
  return r


def coco_frames(body=BODY_MM, turn_deg=0.0, roll_deg=0.0, num_frames=8, distance_mm=4000.0):
  """COCO-17 keypoints (num_frames, 17, 2) px of `body` turning from turn_deg - 40 to
  turn_deg + 40 degrees about its vertical axis, rolled by roll_deg in the image plane."""
  points = np.array([body[name] for name in layouts.COCO_JOINT_NAMES], np.float64)
  frames = []
  for yaw in turn_deg + np.linspace(-40, 40, num_frames):
    cam = points @ _rotation(1, yaw).T @ _rotation(2, roll_deg).T + [0, 0, distance_mm]
    frames.append(cam[:, :2] / cam[:, 2:] * FOCAL_PX + CENTER_PX)
  return np.stack(frames)


def h36m_frames(**kwargs):
  return layouts.to_h36m(layouts.COCO, coco_frames(**kwargs))[0]


def _check(keypoints, layout):
  layout_check.check(keypoints, layout, path='input.json')


@pytest.mark.parametrize('frames, declared, message', [
    (coco_frames(), layouts.H36M,
     r'^input.json: these keypoints look like COCO-17 \(head points 0-4 close together, hips '
     r'at 11/12\), not H36M-17 \(its legs .* short in 100% of the frames\): pass '
     r'--format=coco \(or --skip_layout_check if you are sure\)\.$'),
    (h36m_frames(), layouts.COCO,
     r'^input.json: these keypoints look like H36M-17 \(head points 9/10 close together, hips '
     r'at 1/4\), not COCO-17 \(its head points 0-4 far apart in 100% of the frames\): pass '
     r'--format=h36m'),
    (h36m_frames() / [1920, 1080], layouts.H36M, r'look like normalised coordinates'),
    ((h36m_frames() - CENTER_PX) / FOCAL_PX, layouts.H36M, r'look like normalised'),
    (h36m_frames() * [1, -1] + [0, 1080], layouts.H36M,
     r'the body is upside down in 100% of the frames .*--skip_layout_check'),
    (coco_frames(roll_deg=180), layouts.COCO, r'upside down'),
])
def test_mislabelled_misscaled_or_upside_down_keypoints_are_refused(frames, declared, message):
  with pytest.raises(layout_check.LayoutError, match=message) as error:
    _check(frames, declared)
  assert '\n' not in str(error.value) and len(str(error.value)) < 300


def _partly_missing(frames):
  frames = frames.copy()
  frames[::2, [13, 15]] = np.nan  # a leg hidden in every other frame
  frames[1, :5] = np.nan  # the face in one frame
  frames[3, 3:] = np.nan  # most of the body in another
  return frames


@pytest.mark.parametrize('name, coco', [
    ('facing the camera', coco_frames()),
    ('facing away', coco_frames(turn_deg=180)),
    ('mirrored in the image', coco_frames() * [-1, 1] + [1920, 0]),
    ('lying, head left', coco_frames(roll_deg=90)),
    ('lying, head right', coco_frames(roll_deg=-90)),
    ('crouching', coco_frames(CROUCHING_MM)),
    ('partly missing', _partly_missing(coco_frames())),
    ('small and noisy', coco_frames(distance_mm=60000) +
     np.random.default_rng(0).normal(0, 1.0, (8, 17, 2))),
    ('one frame', coco_frames(num_frames=1)),
])
def test_people_in_their_layout_pass(name, coco):
  _check(coco, layouts.COCO)
  _check(layouts.to_h36m(layouts.COCO, coco)[0], layouts.H36M)


def test_a_few_odd_frames_or_no_evidence_are_not_refused():
  frames = h36m_frames(num_frames=10)
  frames[:2] = frames[:2] * [1, -1] + [0, 1080]  # 2 of 10 frames upside down
  _check(frames, layouts.H36M)
  _check(np.full((3, 17, 2), 500.0), layouts.H36M)  # every keypoint at one point
  _check(np.full((3, 17, 2), np.nan), layouts.COCO)


@pytest.fixture(scope='module')
def packaged():
  return hpe_jax.load_lifter()


def test_the_api_refuses_coco_unless_told_not_to_check(packaged):
  with pytest.raises(layout_check.LayoutError, match=r'^keypoints_px: these keypoints look '
                     r"like COCO-17 .*layouts.to_h36m\(layouts.for_format\('coco'\), "
                     r'keypoints\) \(or check_layout=False if you are sure\)'):
    packaged.lift(coco_frames())
  lifted = packaged.lift(coco_frames(), check_layout=False)
  assert lifted.poses_mm.shape == (8, 17, 3)
  assert packaged.lift(h36m_frames()).poses_mm.shape == (8, 17, 3)




def test_predict_refuses_coco_read_as_h36m_in_one_line_unless_skipped(tmp_path, capsys):
  src = tmp_path / 'input.json'
  src.write_text(json.dumps({'keypoints': coco_frames().tolist()}))
  base = [f'--input={src}', f'--output={tmp_path}/poses.npz']
  code, err = run_predict(capsys, *base)
  errors = [line for line in err.splitlines() if line.startswith('Error: ')]
  assert code == cli.EXIT_DATA and len(errors) == 1 and 'Traceback' not in err, err
  assert 'look like COCO-17' in errors[0] and '--format=coco' in errors[0], errors[0]
  assert not (tmp_path / 'poses.npz').exists()
  assert run_predict(capsys, *base, '--skip_layout_check')[0] == 0
  assert run_predict(capsys, *base[:1], f'--output={tmp_path}/coco.npz', '--format=coco')[0] == 0


def test_per_frame_intrinsics_give_short_lines_and_no_estimate(packaged, tmp_path, caplog):
  coco = coco_frames(num_frames=300)
  focal = np.stack([np.linspace(1400, 1600, 300)] * 2, axis=-1)
  src = tmp_path / 'input.json'
  src.write_text(json.dumps({'keypoints': coco.tolist(), 'focal_length': focal.tolist(),
                             'center': np.broadcast_to(CENTER_PX, (300, 2)).tolist()}))
  caplog.set_level('INFO', logger='absl')
  out = predict.predict_file(packaged, str(src), str(tmp_path / 'poses.npz'), fmt='coco')
  lines = [r.getMessage() for r in caplog.records]
  assert max(len(line) for line in lines) < 300, max(lines, key=len)
  assert not any('No camera intrinsics given' in line for line in lines)
  assert any(line.startswith('Camera: f = [1400.0-1600.0, 1400.0-1600.0] px (min-max over '
                             '300 frames)') for line in lines), lines
  assert str(out['camera_source']) == 'given'


def test_without_intrinsics_one_estimate_is_stated_once_and_written(packaged, tmp_path,
                                                                    caplog):
  src = tmp_path / 'input.json'
  src.write_text(json.dumps({'keypoints': coco_frames().tolist()}))
  caplog.set_level('INFO', logger='absl')
  out = predict.predict_file(packaged, str(src), str(tmp_path / 'poses.npz'), fmt='coco',
                             image_size=['1920', '1080'])
  stated = [r.getMessage() for r in caplog.records if 'No camera intrinsics' in r.getMessage()]
  assert len(stated) == 1 and 'f = [1920.0, 1920.0] px, c = [960.0, 540.0] px' in stated[0]
  assert str(out['camera_source']).startswith('estimated from the image size 1920 x 1080 px')
  np.testing.assert_array_equal(out['camera_focal_length_px'][0], [1920, 1920])
