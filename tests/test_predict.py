"""Inference: the lifter and `python -m hpe_jax.predict` on the tiny trained workdir."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import av
import numpy as np
from PIL import Image
import pytest

from conftest import ROOT
from conftest import coco_of as _coco_of
from conftest import run_predict
from conftest import tiny_config
import hpe_jax
from hpe_jax import evaluator
from hpe_jax import predict
from hpe_jax.evaluation import report
from hpe_jax.inference import bvh
from hpe_jax.inference import keypoints
from hpe_jax.inference import lifter as lifter_lib
from hpe_jax.inference import resample
from hpe_jax.inference import restore
from hpe_jax.inference import smoothing
from hpe_jax.inference import writers
from test_layouts import ORDERS
from tfds_h36m import skeleton


@pytest.fixture(scope='module')
def lifter(tiny_lifting_run):
  return hpe_jax.load_lifter(tiny_lifting_run['workdir'], checkpoint='last')


@pytest.fixture(scope='module')
def test_split(lifter):
  """The tiny test split (H36M px keypoints, ground truth) and evaluate's per-pose errors."""
  restored = restore.restore(lifter.workdir, 'last')
  split = report.EvalData(restored.config, lifter.stats, 'test')
  per_pose = split.evaluate(evaluator.Evaluator(restored.model, restored.config, lifter.stats,
                                                predictions=True), restored.variables)
  arrays = split._arrays  # pylint: disable=protected-access
  data = {'pose_2d_px': arrays['pose_2d'].astype(np.float32),
          'pose_3d_mm': arrays['pose_3d'].astype(np.float32), 'action': arrays['action']}
  return data, {'mpjpe': per_pose['2d->3d/mpjpe'], 'pred_mm': per_pose['2d->3d/pred_mm']}


def _mpjpe(pred, gt):
  return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def _write_keypoints(path, kp, **extra):
  if path.endswith('.npz'):
    np.savez(path, keypoints=kp, **extra)
  elif path.endswith('.json'):
    with open(path, 'w') as f:
      json.dump({'keypoints': kp.tolist(), **{k: np.asarray(v).tolist() for k, v in extra.items()}},
                f)
  else:
    header = [f'{a}{j}' for j in range(17) for a in 'xy']
    rows = [','.join(repr(float(v)) for v in frame.ravel()) for frame in kp]
    with open(path, 'w') as f:
      f.write(','.join(header) + '\n' + '\n'.join(rows) + '\n')


@pytest.mark.parametrize('ext', ['npz', 'json', 'csv'])
def test_round_trip_equals_evaluate(lifter, test_split, tmp_path, ext, tiny_lifting_run):
  data, evaluated = test_split
  src, dst = str(tmp_path / f'kp.{ext}'), str(tmp_path / f'poses.{"json" if ext == "csv" else ext}')
  _write_keypoints(src, data['pose_2d_px'])
  predict.predict_file(lifter, src, dst)
  if dst.endswith('.npz'):
    with np.load(dst) as out:
      poses = out['poses_3d_mm']
      assert list(out['joint_names'])[:2] == ['Pelvis', 'RHip'] and 'low_confidence' not in out
  else:
    with open(dst) as f:
      poses = np.asarray(json.load(f)['poses_3d_mm'])
  assert poses.shape == (240, 17, 3) and np.all(poses[:, 0] == 0)
  errors = _mpjpe(poses, data['pose_3d_mm'])
  np.testing.assert_allclose(errors, evaluated['mpjpe'], atol=1e-3)
  per_action = [errors[data['action'] == a].mean() for a in range(15)]
  np.testing.assert_allclose(per_action, tiny_lifting_run['summary']['2d->3d/mpjpe']['per_action'],
                             atol=0.01)
  assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(src), os.path.basename(dst)])


def test_intrinsics_move_keypoints_into_the_reference_camera(lifter, test_split, tmp_path,
                                                             caplog):
  data, evaluated = test_split
  f_ref, c_ref = keypoints.reference_intrinsics()
  focal, center = np.array([1500.0, 1480.0]), np.array([960.0, 540.0])
  # The same rays seen by another camera.
  other = (data['pose_2d_px'][:40] - c_ref) / f_ref * focal + center
  src = str(tmp_path / 'other.npz')
  _write_keypoints(src, other)
  by_flags = predict.predict_file(lifter, src, str(tmp_path / 'a.npz'),
                                  focal_length=['1500', '1480'], center=['960', '540'])
  np.testing.assert_allclose(by_flags['keypoints_2d_px'], data['pose_2d_px'][:40], atol=1e-3)
  np.testing.assert_allclose(_mpjpe(by_flags['poses_3d_mm'], data['pose_3d_mm'][:40]),
                             evaluated['mpjpe'][:40], atol=1e-2)
  _write_keypoints(src, other, focal_length=focal, center=center)
  by_file = predict.predict_file(lifter, src, str(tmp_path / 'b.npz'))
  np.testing.assert_allclose(by_file['poses_3d_mm'], by_flags['poses_3d_mm'], atol=1e-4)
  # A focal length per frame: the same rays; the camera stated in one short line.
  per_frame = focal * np.linspace(1.0, 1.2, 40)[:, None]
  _write_keypoints(src, (data['pose_2d_px'][:40] - c_ref) / f_ref * per_frame[:, None] + center,
                   focal_length=per_frame, center=center)
  caplog.set_level('INFO', logger='absl')
  by_frame = predict.predict_file(lifter, src, str(tmp_path / 'c.npz'))
  np.testing.assert_allclose(by_frame['poses_3d_mm'], by_flags['poses_3d_mm'], atol=1e-3)
  lines = [r.getMessage() for r in caplog.records]
  assert max(len(line) for line in lines) < 300, max(lines, key=len)
  assert not any('No camera intrinsics given' in line for line in lines), lines
  stated = [line for line in lines if line.startswith('Camera: ')]
  assert stated == ['Camera: f = [1500.0-1800.0, 1480.0-1776.0] px (min-max over 40 frames), '
                    "c = [960.0, 540.0] px, given; moved into the lifter's reference "
                    'camera.'], stated
  assert 'moved into it from f = [1500.0-1800.0' in str(by_frame['camera_source'])


def test_coco_confidences_hypotheses_and_pictures(lifter, test_split, tmp_path):
  data, _ = test_split
  # COCO keypoints of 6 frames: body joints from the H36M frames, a face around the nose.
  h36m = data['pose_2d_px'][:6]
  index = {n: i for i, n in enumerate(keypoints.COCO_JOINT_NAMES)}
  coco = np.zeros((6, 17, 2))
  for coco_name, h36m_joint in [('nose', 9), ('left_shoulder', 11), ('right_shoulder', 14),
                                ('left_elbow', 12), ('right_elbow', 15), ('left_wrist', 13),
                                ('right_wrist', 16), ('left_hip', 4), ('right_hip', 1),
                                ('left_knee', 5), ('right_knee', 2), ('left_ankle', 6),
                                ('right_ankle', 3)]:
    coco[:, index[coco_name]] = h36m[:, h36m_joint]
  for name, offset in [('left_eye', (3, -3)), ('right_eye', (-3, -3)), ('left_ear', (6, 0)),
                       ('right_ear', (-6, 0))]:
    coco[:, index[name]] = h36m[:, 9] + offset
  conf = np.full((6, 17), 0.9)
  conf[2] = 0.1
  triplets = np.concatenate([coco, conf[..., None]], axis=-1)
  src = str(tmp_path / 'coco.json')
  with open(src, 'w') as f:
    json.dump({'keypoints': triplets.tolist()}, f)
  out = predict.predict_file(lifter, src, str(tmp_path / 'poses.npz'), fmt='coco',
                             num_hypotheses=5, plot=str(tmp_path / 'poses.png'))
  assert out['poses_3d_mm'].shape == (6, 17, 3)
  assert out['hypotheses_3d_mm'].shape == (6, 5, 17, 3)
  np.testing.assert_array_equal(out['low_confidence'], [False, False, True, False, False, False])
  assert out['confidences'].shape == (6, 17)
  np.testing.assert_allclose(out['keypoints_2d_px'][:, 4], h36m[:, 4])  # LHip copied
  image = Image.open(tmp_path / 'poses.png')
  assert image.size == (4 * 420, 510) and np.asarray(image.convert('L')).std() > 10
  predict.predict_file(lifter, src, str(tmp_path / 'poses.json'), fmt='coco',
                       plot=str(tmp_path / 'poses.gif'))
  assert Image.open(tmp_path / 'poses.gif').n_frames == 6


def test_lift_api(lifter, test_split):
  data, evaluated = test_split
  poses, samples = lifter.lift(data['pose_2d_px'][:3])
  assert poses.shape == (3, 17, 3) and samples is None
  np.testing.assert_allclose(poses, evaluated['pred_mm'][:3], atol=1e-3)
  poses_t0, samples_t0 = lifter.lift(data['pose_2d_px'][:3], num_hypotheses=4, temperature=0.0)
  np.testing.assert_allclose(samples_t0, np.repeat(poses[:, None], 4, axis=1), atol=1e-3)
  np.testing.assert_allclose(poses_t0, poses, atol=1e-4)
  with pytest.raises(ValueError, match='expected 17 joints per frame, got 16'):
    lifter.lift(np.zeros((2, 16, 2)))
  with pytest.raises(ValueError, match='both focal_length and center'):
    lifter.lift(data['pose_2d_px'][:3], focal_length=1000.0)


def _bad_input(name, content):
  def write(path):
    if isinstance(content, np.ndarray):
      np.savez(path / name, keypoints=content)
    else:
      (path / name).write_text(content)
    return str(path / name)
  return write


@pytest.mark.parametrize('write, kwargs, message', [
    (_bad_input('kp.npz', np.zeros((3, 16, 2))), {}, 'expected 17 joints per frame, got 16'),
    (_bad_input('kp.npz', np.full((3, 17, 2), np.nan)), {},  # every keypoint missing
     'no person has every joint in some frame'),
    (_bad_input('kp.csv', ''), {}, 'is empty'),
    (_bad_input('kp.json', '{"keypoints": []}'), {}, 'holds no frames'),
    (_bad_input('kp.xml', '<kp/>'), {}, r"Unsupported input file .*kp.xml: extension '.xml'"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'output': 'poses.txt'},
     r"Unsupported output file .*poses.txt: extension '.txt'; use .npz, .json, .csv"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'plot': 'poses.jpg'},
     r"Unsupported plot file .*poses.jpg: extension '.jpg'; use .png, .gif, .mp4"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'fmt': 'openpose'},
     "Unknown keypoint format 'openpose'"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'focal_length': ['1000']},
     'both --focal_length and --center'),
])
def test_bad_input_leaves_no_output(lifter, tmp_path, write, kwargs, message):
  src = write(tmp_path)
  output = str(tmp_path / kwargs.pop('output', 'poses.npz'))
  if 'plot' in kwargs:
    kwargs['plot'] = str(tmp_path / kwargs['plot'])
  with pytest.raises(keypoints.KeypointError, match=message):
    predict.predict_file(lifter, src, output, **kwargs)
  assert os.listdir(tmp_path) == [os.path.basename(src)]


def test_failed_write_leaves_no_partial_output(lifter, test_split, tmp_path, monkeypatch):
  src = str(tmp_path / 'kp.npz')
  _write_keypoints(src, test_split[0]['pose_2d_px'][:4])

  def failing_savez(f, **arrays):
    f.write(b'PK partial')
    raise OSError('disk full')

  monkeypatch.setattr(predict.np, 'savez', failing_savez)
  with pytest.raises(OSError, match='disk full'):
    predict.predict_file(lifter, src, str(tmp_path / 'poses.npz'))
  assert os.listdir(tmp_path) == ['kp.npz']


def test_missing_checkpoint_names_the_path(tiny_lifting_run, tmp_path):
  with open(os.path.join(tiny_lifting_run['workdir'], 'config.json')) as f:
    (tmp_path / 'config.json').write_text(f.read())
  with pytest.raises(restore.CheckpointError,
                     match=f'No checkpoint directory {tmp_path}/checkpoints'):
    hpe_jax.load_lifter(str(tmp_path))
  with pytest.raises(restore.CheckpointError, match=r'No checkpoint of step 1 in .*available'):
    hpe_jax.load_lifter(tiny_lifting_run['workdir'], checkpoint=1)


def test_import_stays_cheap():
  code = 'import sys, hpe_jax; assert "jax" not in sys.modules; print(hpe_jax.__all__)'
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0 and 'load_lifter' in out.stdout, out.stderr[-2000:]
  assert hpe_jax.load_lifter.__module__ == 'hpe_jax.inference.lifter'


def test_lifter_loads_without_tensorflow_or_training_code(tiny_lifting_run):
  code = ('import sys, numpy as np, hpe_jax; '
          f'lifter = hpe_jax.load_lifter({tiny_lifting_run["workdir"]!r}); '
          'print(lifter.lift(np.full((2, 17, 2), 500.0)).poses_mm.shape); '
          'print(sorted(m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets") or m in ("hpe_jax.train", "hpe_jax.optim", '
          '"hpe_jax.input_pipeline", "hpe_jax.batches", "optax")))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split('\n')[:2] == ['(2, 17, 3)', '[]'], out.stdout


def test_command_line(tiny_lifting_run, test_split, tmp_path):
  src = str(tmp_path / 'kp.npz')
  _write_keypoints(src, test_split[0]['pose_2d_px'][:5])
  base = [sys.executable, '-m', 'hpe_jax.predict', f'--workdir={tiny_lifting_run["workdir"]}',
          f'--input={src}']
  ok = subprocess.run(base + [f'--output={tmp_path}/poses.json', '--num_hypotheses=3',
                              f'--plot={tmp_path}/poses.gif'],
                      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr[-3000:]
  # Human3.6M px without intrinsics: the estimate is Human3.6M's frame and mean camera.
  stated = [line for line in ok.stderr.splitlines() if 'No camera intrinsics given' in line]
  assert len(stated) == 1 and "Human3.6M's mean camera" in stated[0], ok.stderr
  assert "moved into the lifter's reference camera" in stated[0]
  with open(tmp_path / 'poses.json') as f:
    out = json.load(f)
  assert "estimated for a 1000 x 1000 frame" in out['camera_source']
  assert np.asarray(out['hypotheses_3d_mm']).shape == (5, 3, 17, 3)
  assert Image.open(tmp_path / 'poses.gif').n_frames == 5
  bad = subprocess.run([sys.executable, '-m', 'hpe_jax.predict', f'--workdir={tmp_path}/none',
                        f'--input={src}', f'--output={tmp_path}/x.npz'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert bad.returncode != 0 and f'Workdir {tmp_path}/none does not exist' in bad.stderr
  assert not os.path.exists(tmp_path / 'x.npz')


def test_a_workdir_without_the_lifting_pair_is_one_error(tiny_lifting_run, tmp_path):
  workdir = tmp_path / 'other'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  config['pairs'] = [dict(config['pairs'][0], source='pose_3d')]
  (workdir / 'config.json').write_text(json.dumps(config))
  with pytest.raises(restore.CheckpointError, match='has no pose_2d -> pose_3d pair'):
    hpe_jax.load_lifter(str(workdir))


# --- Issue 16: detectors' formats, people over time, smoothing, outputs, bad input ---------




def _in_layout(coco, fmt, head_top):
  """COCO-17 frames placed in `fmt`'s joint order (tests/test_layouts.ORDERS); unused joints
  far off, Halpe's head top at `head_top`."""
  index = {n: i for i, n in enumerate(keypoints.COCO_JOINT_NAMES)}
  out = np.full((len(coco), len(ORDERS[fmt]), 2), 9000.0)
  for j, point in enumerate(ORDERS[fmt]):
    if point == 'head_top':
      out[:, j] = head_top
    elif point:
      out[:, j] = coco[:, index[point]]
  return out


def _write_format(tmp_path, fmt, points, conf):
  """Writes (N, J, 2) px of one person in `fmt`'s own file layout; returns --input and kwargs."""
  triplets = np.concatenate([points, conf[..., None]], axis=-1)
  if fmt in ('coco_results', 'halpe26'):
    path = tmp_path / f'{fmt}.json'
    path.write_text(json.dumps([{'image_id': 40 + i, 'category_id': 1, 'score': 0.9,
                                 'keypoints': t.ravel().tolist()} for i, t in enumerate(triplets)]))
    return str(path), {}
  if fmt.startswith('openpose'):
    folder = tmp_path / fmt
    folder.mkdir()
    for i, t in enumerate(triplets):
      (folder / f'clip_{i:012d}_keypoints.json').write_text(json.dumps(
          {'people': [{'person_id': [-1], 'pose_keypoints_2d': t.ravel().tolist()}]}))
    return str(folder), {}
  size = np.array([1000.0, 1002.0])  # blazepose33: fractions of the image, x, y, z, visibility
  xyzv = np.concatenate([points / size, np.zeros_like(conf[..., None]), conf[..., None]], -1)
  np.savez(tmp_path / 'blaze.npz', keypoints=xyzv)
  return str(tmp_path / 'blaze.npz'), {'image_size': [str(v) for v in size]}


def test_every_format_lifts_the_same_person(lifter, test_split, tmp_path):
  coco = _coco_of(test_split[0]['pose_2d_px'][:5].astype(np.float64))
  h36m = keypoints.coco_to_h36m(coco)[0]
  np.testing.assert_allclose(h36m[:, 10], test_split[0]['pose_2d_px'][:5, 10], atol=1e-3)
  conf = np.full((5, 17), 0.9)
  # The reference camera's intrinsics (BlazePose's --image_size is not 1000 x 1000).
  f_ref, c_ref = keypoints.reference_intrinsics()
  camera = dict(focal_length=[str(v) for v in f_ref], center=[str(v) for v in c_ref])
  reference = predict.predict_file(lifter, _write_format(tmp_path, 'coco_results', coco, conf)[0],
                                   str(tmp_path / 'coco.npz'), fmt='coco_results', **camera)
  np.testing.assert_array_equal(reference['image_id'], [40, 41, 42, 43, 44])
  np.testing.assert_allclose(reference['poses_3d_mm'], lifter.lift(h36m).poses_mm, atol=1e-3)
  for fmt in ('halpe26', 'openpose25', 'openpose18', 'blazepose33'):
    points = _in_layout(coco, fmt, head_top=h36m[:, 10])
    src, kwargs = _write_format(tmp_path, fmt, points, np.full(points.shape[:2], 0.9))
    out = predict.predict_file(lifter, src, str(tmp_path / f'{fmt}.npz'), fmt=fmt, **kwargs,
                               **camera)
    np.testing.assert_allclose(out['keypoints_2d_px'], h36m, atol=1e-3, err_msg=fmt)
    np.testing.assert_allclose(out['poses_3d_mm'], reference['poses_3d_mm'], atol=1e-2,
                               err_msg=fmt)
    np.testing.assert_array_equal(out['frame'], np.arange(5))


def test_tracks_are_kept_apart(lifter, test_split, tmp_path):
  h36m = test_split[0]['pose_2d_px'][:12].astype(np.float64)
  a, b = _coco_of(h36m[:6]), _coco_of(h36m[6:])
  detections = []
  for frame in range(6):  # person 8 (a) in every frame, person 3 (b) not in frames 2-3,
    for track, coco in ((8, a), (3, b)):  # nobody in frame 4 ... of image ids 0..6
      if (track == 3 and frame in (2, 3)) or frame == 4:
        continue
      detections.append({'image_id': frame if frame < 5 else 6, 'track_id': track,
                         'keypoints': np.concatenate([coco[frame], np.full((17, 1), 0.9)],
                                                     1).ravel().tolist(), 'score': 0.9})
  src = tmp_path / 'tracked.json'
  src.write_text(json.dumps(detections[::-1]))
  out = predict.predict_file(lifter, str(src), [str(tmp_path / 'poses.npz'),
                                                str(tmp_path / 'poses.csv'),
                                                str(tmp_path / 'poses.bvh')],
                             fmt='coco_results', fps=25)
  np.testing.assert_array_equal(out['person_id'], [3, 3, 3, 8, 8, 8, 8, 8])
  np.testing.assert_array_equal(out['frame'], [0, 1, 6, 0, 1, 2, 3, 6])
  np.testing.assert_allclose(out['time_s'], out['frame'] / 25)
  assert out['num_frames'] == 7
  alone_a = lifter.lift(keypoints.coco_to_h36m(a[[0, 1, 2, 3, 5]])[0]).poses_mm
  alone_b = lifter.lift(keypoints.coco_to_h36m(b[[0, 1, 5]])[0]).poses_mm
  np.testing.assert_allclose(out['poses_3d_mm'][3:], alone_a, atol=1e-3)
  np.testing.assert_allclose(out['poses_3d_mm'][:3], alone_b, atol=1e-3)
  with open(tmp_path / 'poses.csv', newline='') as f:
    table = list(csv.reader(f))
  assert table[0][:5] == ['frame', 'image_id', 'time_s', 'person_id', 'low_confidence']
  assert table[0][5:11] == ['root_x_mm', 'root_y_mm', 'root_z_mm', 'Pelvis_x_mm', 'Pelvis_y_mm',
                            'Pelvis_z_mm'] and len(table[0]) == 59
  assert [row[3] for row in table[1:]] == ['3'] * 3 + ['8'] * 5
  np.testing.assert_allclose(np.asarray(table[4][8:], float).reshape(17, 3),
                             out['poses_3d_mm'][3], atol=0.01)
  np.testing.assert_allclose(np.asarray(table[4][5:8], float), out['root_3d_mm'][3], atol=0.01)
  motion = bvh.read_bvh(str(tmp_path / 'poses.bvh'))  # the longest track: person 8
  assert len(motion.frames) == 5 and motion.frame_time == pytest.approx(1 / 25)
  bones = lambda p: np.linalg.norm(p[:, 1:] - p[:, np.asarray(skeleton.PARENTS)[1:]], axis=-1)
  # Forward kinematics gives the limbs the track's mean bone lengths (the bones from the
  # pelvis and thorax keep their mean offsets, tests/test_bvh.py).
  assert motion.names == list(skeleton.JOINT_NAMES)
  limbs = np.asarray(skeleton.PARENTS)[1:] != 0
  limbs &= np.asarray(skeleton.PARENTS)[1:] != skeleton.JOINT_NAMES.index('Thorax')
  fk = bvh.forward_kinematics(motion) @ bvh.CAMERA_TO_BVH  # back to the camera frame
  np.testing.assert_allclose(bones(fk)[:, limbs],
                             np.broadcast_to(bones(alone_a).mean(0)[limbs], (5, limbs.sum())),
                             atol=0.01)


def _walking_keypoints(noise_px, seed=0):
  """2D keypoints (100, 17, 2) px of a synthetic walk 5 m from the reference camera, 50 fps."""
  from tfds_h36m.synthetic import motion  # pylint: disable=g-import-not-at-top
  world = motion.generate_sequence(np.random.default_rng(1), motion.subject_bone_lengths('S9'),
                                   'Directions', 100)
  cam = np.stack([world[..., 0], -world[..., 2], world[..., 1]], axis=-1).astype(np.float64)
  cam[..., 2] += 5000.0 - cam[:, :1, 2].mean()
  cam[..., 0] -= cam[:, :1, 0].mean()
  f_ref, c_ref = keypoints.reference_intrinsics()
  px = cam[..., :2] / cam[..., 2:] * f_ref + c_ref
  return px + np.random.default_rng(seed).normal(0, noise_px, px.shape)


def test_smoothing_lowers_the_jitter_of_noisy_input(lifter, tmp_path, caplog):
  src = str(tmp_path / 'noisy.npz')
  np.savez(src, keypoints=_walking_keypoints(noise_px=3.0))
  raw = predict.predict_file(lifter, src, str(tmp_path / 'raw.npz'))
  frames = [(raw['poses_3d_mm'], raw['frame'])]
  caplog.set_level('INFO', logger='absl')  # whatever an earlier command line left it at
  for smooth in ('2d', '3d', 'both'):
    out = predict.predict_file(lifter, src, str(tmp_path / f'{smooth}.npz'), fps=50,
                               smooth=smooth)
    before = smoothing.jitter(frames)
    after = smoothing.jitter([(out['poses_3d_mm'], out['frame'])])
    assert after < 0.8 * before, (smooth, before, after)
  logged = [r.getMessage() for r in caplog.records if 'Jitter of the' in r.getMessage()]
  assert len(logged) == 5 and all('without smoothing' in m for m in logged)  # 2 + 1 + 2
  assert 'mm/frame^2' in logged[-1] and 'px/frame^2' in logged[-2]
  raw_again = predict.predict_file(lifter, src, str(tmp_path / 'none.npz'), fps=50)
  np.testing.assert_array_equal(raw_again['poses_3d_mm'], raw['poses_3d_mm'])  # off by default


def test_json_is_strict_and_the_video_plays(lifter, test_split, tmp_path):
  writers.write_json(str(tmp_path / 'nan.json'), {'a': np.array([1.0, np.nan, np.inf])})
  assert (tmp_path / 'nan.json').read_text() == '{"a": [1.0, null, null]}'
  src = str(tmp_path / 'kp.npz')
  _write_keypoints(src, test_split[0]['pose_2d_px'][:7])
  predict.predict_file(lifter, src, str(tmp_path / 'poses.json'), fps=12.5,
                       plot=str(tmp_path / 'poses.mp4'))
  json.loads((tmp_path / 'poses.json').read_text(),
             parse_constant=lambda c: pytest.fail(f'non-strict JSON token {c}'))
  with av.open(str(tmp_path / 'poses.mp4')) as video:
    stream = video.streams.video[0]
    assert (stream.width, stream.height, float(stream.average_rate)) == (480, 480, 12.5)
    assert sum(1 for _ in video.decode(stream)) == 7


def test_a_failing_plot_or_non_finite_poses_leave_nothing(lifter, test_split, tmp_path,
                                                         monkeypatch):
  src = str(tmp_path / 'kp.npz')
  _write_keypoints(src, test_split[0]['pose_2d_px'][:3])

  def broken_encoder(*args, **kwargs):
    raise RuntimeError('encoder failed')

  with monkeypatch.context() as patch:
    patch.setattr(writers, 'write_mp4', broken_encoder)
    with pytest.raises(RuntimeError, match='encoder failed'):
      predict.predict_file(lifter, src, [str(tmp_path / 'a.npz'), str(tmp_path / 'a.csv')],
                           plot=[str(tmp_path / 'a.png'), str(tmp_path / 'a.mp4')])
  assert os.listdir(tmp_path) == ['kp.npz']
  nan_lift = lambda points, *a, **k: lifter_lib.Lifted(np.full((len(points), 17, 3), np.nan),
                                                      None)
  monkeypatch.setattr(lifter, 'lift', nan_lift)
  with pytest.raises(keypoints.KeypointError, match=r'non-finite poses for 3 of 3 poses \(first: '
                     r'frame 0, person 0\); nothing written'):
    predict.predict_file(lifter, src, str(tmp_path / 'a.json'))
  assert os.listdir(tmp_path) == ['kp.npz']


def test_clip_input_clips_with_a_warning(lifter, test_split, tmp_path, caplog):
  kp = test_split[0]['pose_2d_px'][:2].astype(np.float64)
  conf = np.full((2, 17), 0.5)
  kp[1, 3, 0], conf[0, 2] = 3e5, 1.25
  src = str(tmp_path / 'kp.npz')
  np.savez(src, keypoints=kp, confidences=conf)
  with pytest.raises(keypoints.KeypointError, match=r'1 coordinate\(s\) beyond \+-100000 px'):
    predict.predict_file(lifter, src, str(tmp_path / 'a.npz'))
  caplog.set_level('WARNING')
  f_ref, c_ref = keypoints.reference_intrinsics()  # keypoints_2d_px: the input, not moved
  out = predict.predict_file(lifter, src, str(tmp_path / 'a.npz'), clip_input=True,
                             focal_length=[str(v) for v in f_ref], center=[str(v) for v in c_ref])
  assert out['keypoints_2d_px'][1, 3, 0] == 1e5 and out['confidences'].max() == 1.0
  assert any('clipped 1 coordinate(s)' in r.getMessage() for r in caplog.records)


def _text(name, text, encoding='utf-8'):
  return lambda d: (d / name).write_bytes(text.encode(encoding)) and str(d / name)


def _npz_truncated(d):
  np.savez(d / 'kp.npz', keypoints=np.zeros((3, 17, 2)))
  data = (d / 'kp.npz').read_bytes()
  (d / 'kp.npz').write_bytes(data[:len(data) // 2])
  return str(d / 'kp.npz')


def _npy_as_npz(d):
  np.save(d / 'kp.npy', np.zeros((3, 17, 2)))
  os.rename(d / 'kp.npy', d / 'kp.npz')
  return str(d / 'kp.npz')


def _good(d):
  np.savez(d / 'kp.npz', keypoints=np.full((3, 17, 2), 500.0))
  return str(d / 'kp.npz')


_HEADER = ','.join(f'{a}{j}' for j in range(17) for a in 'xy')


@pytest.mark.parametrize('make_input, args, status, message', [
    (_npz_truncated, [], 1, r'kp.npz is not a readable .npz \(truncated or damaged: BadZipFile'),
    (_npy_as_npz, [], 1, r'kp.npz is a .npy array, not an .npz archive'),
    (_text('kp.json', '{"keypoints": [[[1, 2]]], "x": "é"}', 'latin-1'), [], 1,
     r'kp.json is not UTF-8 text \(byte 0xe9 at offset'),
    (_text('kp.csv', _HEADER + '\n' + ','.join(['5'] * 34) + ',é\n', 'latin-1'), [], 1,
     r'kp.csv is not UTF-8 text'),
    (_text('kp.json', json.dumps({'keypoints': [[[1, 2]] * 17] * 2,
                                  'confidences': [[0.5] * 17, [0.5] * 16]})), [], 1,
     r'kp.json: confidences is not a numeric array \(ragged lists or text'),
    (_text('kp.json', json.dumps({'keypoints': [[[1, 2]] * 17], 'focal_length': 'abc',
                                  'center': [1, 2]})), [], 1,
     r'kp.json: focal_length is not a numeric array \(ragged lists or text, e.g. "abc"\)'),
    (_good, ['--output={d}/out_dir'], 2, r'The output path .*out_dir is a directory'),
    (_good, ['--format=blazepose33'], 2, r'expected 33 joints per frame, got 17; '
     r'--format=h36m or coco or coco_results has 17'),
    (_good, ['--smooth=3d'], 2, r'--smooth=3d needs --fps'),
    (_good, ['--resample'], 2, r"--resample needs --fps \(the input's frame rate\)\.$"),
    (_good, ['--resample', '--fps=25', '--num_hypotheses=3'], 2,
     r'--resample does not take --num_hypotheses'),
    (_good, ['--focal_length=abc', '--center=1,2'], 2, r"--focal_length takes numbers, got 'abc'"),
    (_good, ['--format=openpose'], 2, r"flag --format=openpose: value should be one of"),
    (_good, ['--workdir={d}/kp.npz'], 2, r'Workdir .*kp.npz is a file, not a training workdir'),
])
def test_bad_input_is_one_line_with_its_exit_status(tiny_lifting_run, tmp_path, capsys,
                                                    make_input, args, status, message):
  src = make_input(tmp_path)
  (tmp_path / 'out_dir').mkdir()
  before = sorted(os.listdir(tmp_path))
  args = [a.format(d=tmp_path) for a in args]
  base = [f'--workdir={tiny_lifting_run["workdir"]}', f'--input={src}',
          f'--output={tmp_path}/poses.json']
  code, err = run_predict(capsys, *base, *args)
  errors = [line for line in err.splitlines() if line.startswith('Error: ')]
  assert code == status and len(errors) == 1 and 'Traceback' not in err, err
  assert re.search(message, errors[0]), errors[0]
  assert sorted(os.listdir(tmp_path)) == before and os.listdir(tmp_path / 'out_dir') == []


def test_workdirs_without_the_pair_or_with_a_damaged_checkpoint(tiny_lifting_run, tmp_path,
                                                                capsys):
  src = _good(tmp_path)
  no_pair = tmp_path / 'no_pair'
  shutil.copytree(tiny_lifting_run['workdir'], no_pair)
  config = json.loads((no_pair / 'config.json').read_text())
  config['pairs'] = [dict(config['pairs'][0], source='pose_3d')]
  (no_pair / 'config.json').write_text(json.dumps(config))
  code, err = run_predict(capsys, f'--workdir={no_pair}', f'--input={src}',
                    f'--output={tmp_path}/a.npz')
  assert code == 2 and re.search(r'^Error: The model of .* has no pose_2d -> pose_3d pair',
                                 err, re.M), err
  # A damaged checkpoint, in a process of its own (Orbax's abandoned reads print at exit).
  damaged = _damaged_copy(tiny_lifting_run['workdir'], tmp_path / 'damaged')
  out = subprocess.run([sys.executable, '-m', 'hpe_jax.predict', f'--workdir={damaged}',
                        f'--input={src}', f'--output={tmp_path}/b.npz', '--checkpoint=last'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  errors = [line for line in out.stderr.splitlines() if line.startswith('Error: ')]
  assert out.returncode == 1 and len(errors) == 1, out.stderr[-3000:]
  assert re.match(r'Error: Checkpoint .*damaged/checkpoints/\d+ cannot be (read|restored) '
                  r'\(\w+: ', errors[0]) and len(errors[0]) < 500, errors[0]
  assert 'Traceback' not in out.stderr and 'TensorStore' not in out.stderr, out.stderr[-3000:]
  assert sorted(os.listdir(tmp_path)) == ['damaged', 'kp.npz', 'no_pair']


def _damaged_copy(workdir, target):
  """A copy of workdir whose newest checkpoint's array data is cut in half."""
  shutil.copytree(workdir, target)
  newest = max(int(s) for s in os.listdir(target / 'checkpoints') if s.isdigit())
  for root, _, files in os.walk(target / 'checkpoints' / str(newest) / 'default'):
    for name in files:
      if os.path.basename(root) == 'd':
        path = os.path.join(root, name)
        with open(path, 'r+b') as f:
          f.truncate(os.path.getsize(path) // 2)
  return target


@pytest.fixture(scope='module')
def temporal_lifter(tiny_poses_data_dir, tmp_path_factory):
  """A lifter of configs/temporal.py:tiny (window 9) trained 2 epochs on tiny_poses."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp('tiny_temporal'))
  train.train_and_evaluate(tiny_config(tiny_poses_data_dir, name='temporal'), workdir)
  return hpe_jax.load_lifter(workdir, checkpoint='last')


def _two_tracks(tmp_path):
  """COCO results of two walking people (track 5: frames 0-19, track 2: frames 3-17, 100 px
  to the right), shuffled; returns (path, their H36M keypoints {track: (F, 17, 2)} as
  coco_to_h36m gives them back)."""
  walk = _walking_keypoints(noise_px=1.0)
  people = {5: (np.arange(20), walk[:20]), 2: (np.arange(3, 18), walk[40:55] + [100.0, 0.0])}
  detections = [{'image_id': int(frame), 'track_id': track, 'score': 0.9, 'category_id': 1,
                 'keypoints': np.concatenate([c, np.full((17, 1), 0.9)], 1).ravel().tolist()}
                for track, (frames, h36m) in people.items()
                for frame, c in zip(frames, _coco_of(h36m))]
  np.random.default_rng(0).shuffle(detections)
  path = tmp_path / 'two.json'
  path.write_text(json.dumps(detections))
  return str(path), {track: keypoints.coco_to_h36m(_coco_of(h36m))[0]
                     for track, (_, h36m) in people.items()}


def test_a_temporal_lifter_lifts_each_track_as_its_own_sequence(temporal_lifter, tmp_path,
                                                                 caplog):
  src, people = _two_tracks(tmp_path)
  caplog.set_level('INFO', logger='absl')  # parsed flags may have left absl at WARNING
  out = predict.predict_file(temporal_lifter, src, str(tmp_path / 'poses.npz'),
                             fmt='coco_results')
  assert any('Temporal lifter: each pose reads a window of 9 frames of its own track'
             in r.getMessage() for r in caplog.records)
  np.testing.assert_array_equal(out['person_id'], [2] * 15 + [5] * 20)
  np.testing.assert_array_equal(out['frame'], np.r_[3:18, 0:20])
  tracks = {2: slice(0, 15), 5: slice(15, 35)}
  for track, rows in tracks.items():
    points = out['keypoints_2d_px'][rows]
    np.testing.assert_allclose(points, people[track], atol=1e-3)
    np.testing.assert_allclose(out['poses_3d_mm'][rows],
                               temporal_lifter.lift(points).poses_mm, atol=1e-3)
  # Windows that crossed tracks would change the poses next to the boundary.
  as_one = temporal_lifter.lift(out['keypoints_2d_px']).poses_mm
  assert np.abs(as_one[10:20] - out['poses_3d_mm'][10:20]).max() > 0.01


def test_fps_off_the_training_rate_warns_and_resample_lifts_at_50_fps(temporal_lifter, lifter,
                                                                      tmp_path, caplog):
  src, _ = _two_tracks(tmp_path)
  caplog.set_level('INFO', logger='absl')
  warned = lambda: [r.getMessage() for r in caplog.records
                    if r.levelname == 'WARNING' and '--resample' in r.getMessage()]
  run = lambda name, wd=temporal_lifter, **kw: predict.predict_file(
      wd, src, str(tmp_path / f'{name}.npz'), fmt='coco_results', **kw)
  plain = run('plain', fps=50.2)  # within 1%: no warning
  assert not warned()
  at_25 = run('at_25', fps=25)
  assert warned() == ["--fps=25 is not the training data's 50 fps: the windows will span 9 "
                      'frames at 25 fps (0.36 s) instead of at 50 fps (0.18 s); --resample '
                      'lifts at 50 fps.']
  np.testing.assert_array_equal(at_25['poses_3d_mm'], plain['poses_3d_mm'])
  resampled = run('resampled', fps=25, resample=True)
  assert len(warned()) == 1 and resampled['poses_3d_mm'].shape == plain['poses_3d_mm'].shape
  assert np.all(np.isfinite(resampled['poses_3d_mm'])) and np.all(
      resampled['poses_3d_mm'][:, 0] == 0)
  assert np.abs(resampled['poses_3d_mm'] - plain['poses_3d_mm']).max() > 0.01
  # A single-frame lifter has no window: --resample is ignored (logged), --fps not checked.
  single = run('single', wd=lifter, fps=25)
  ignored = run('ignored', wd=lifter, fps=25, resample=True)
  assert len(warned()) == 1
  assert any('--resample is ignored' in r.getMessage() for r in caplog.records)
  np.testing.assert_array_equal(ignored['poses_3d_mm'], single['poses_3d_mm'])


def test_resampling_a_linear_track_to_50_fps_and_back_keeps_it():
  frames = np.r_[0:7, 9:20]  # 30 fps, frames 7 and 8 missing
  times_s = frames / 30.0
  values = 3.0 + np.einsum('t,jd->tjd', times_s, np.arange(34.0).reshape(17, 2) - 10.0)
  grids = []

  def at_50_fps(v):
    grids.append(v)
    return 2.0 * v + 1.0

  back = resample.through_rate(at_50_fps, values, times_s, 50.0)
  np.testing.assert_allclose(back, 2.0 * values + 1.0, atol=1e-4)
  grid_s = resample.uniform_times(times_s, 50.0)
  assert grid_s[0] == 0.0 and grid_s[-1] >= times_s[-1] > grid_s[-2]
  np.testing.assert_allclose(np.diff(grid_s), 0.02)
  assert grids[0].shape == (len(grid_s), 17, 2)
  np.testing.assert_allclose(resample.through_rate(lambda v: v, values[:1], times_s[:1], 50.0),
                             values[:1])
