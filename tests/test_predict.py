"""Inference: the lifter and `python -m hpe_jax.predict` on the tiny trained workdir."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from conftest import ROOT
import hpe_jax
from hpe_jax import evaluator
from hpe_jax import predict
from hpe_jax.evaluation import report
from hpe_jax.inference import keypoints
from hpe_jax.inference import restore


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


def test_intrinsics_move_keypoints_into_the_reference_camera(lifter, test_split, tmp_path):
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
    (_bad_input('kp.npz', np.full((3, 17, 2), np.nan)), {}, r'NaN or infinite values in 3 frame'),
    (_bad_input('kp.csv', ''), {}, 'is empty'),
    (_bad_input('kp.json', '{"keypoints": []}'), {}, 'holds no frames'),
    (_bad_input('kp.xml', '<kp/>'), {}, r"Unsupported input file .*kp.xml: extension '.xml'"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'output': 'poses.csv'},
     r"Unsupported output file .*poses.csv: extension '.csv'; use .npz, .json"),
    (_bad_input('kp.npz', np.zeros((3, 17, 2))), {'plot': 'poses.mp4'},
     r"Unsupported plot file .*poses.mp4: extension '.mp4'; use .png, .gif"),
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
  assert 'assuming the keypoints come from a Human3.6M-like camera' in ok.stderr
  with open(tmp_path / 'poses.json') as f:
    out = json.load(f)
  assert np.asarray(out['hypotheses_3d_mm']).shape == (5, 3, 17, 3)
  assert Image.open(tmp_path / 'poses.gif').n_frames == 5
  bad = subprocess.run([sys.executable, '-m', 'hpe_jax.predict', f'--workdir={tmp_path}/none',
                        f'--input={src}', f'--output={tmp_path}/x.npz'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert bad.returncode != 0 and f'Workdir {tmp_path}/none does not exist' in bad.stderr
  assert not os.path.exists(tmp_path / 'x.npz')


def test_a_workdir_without_the_lifting_pair_is_one_error(tiny_lifting_run, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'other'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  config['pairs'] = [dict(config['pairs'][0], source='pose_3d')]
  (workdir / 'config.json').write_text(json.dumps(config))
  with pytest.raises(restore.CheckpointError, match='has no pose_2d -> pose_3d pair'):
    hpe_jax.load_lifter(str(workdir))
