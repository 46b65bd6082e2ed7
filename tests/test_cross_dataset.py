"""Cross-dataset evaluation: PCK/AUC and masked P1/P2 by hand, and a trained tiny workdir
evaluated on tiny MPI-INF-3DHP and 3DPW builds (files in the real formats)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import ROOT
from hpe_jax import metrics
from hpe_jax.evaluation import cross_dataset
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import lifter as lifter_lib
from test_wild_datasets import _pw3d_sequence  # pylint: disable=g-bad-import-order
from test_wild_datasets import py2_pickle
from test_wild_datasets import write_mpi
from test_wild_datasets import write_pw3d
import tfds_h36m.builders
from tfds_h36m import skeleton
from tfds_h36m import wild

J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}


# Metrics by hand.

def _three_joint_poses():
  """Two poses of 3 joints (root first). Errors after root alignment, mm: pose 0: 100, 200;
  pose 1 (root moved by (10, 10, 10), which alignment removes): 150, 50."""
  target = np.zeros((2, 3, 3))
  pred = np.array([[[0, 0, 0], [100, 0, 0], [0, 200, 0]],
                   [[0, 0, 0], [0, 0, 150], [30, 40, 0]]], np.float64)
  pred[1] += 10.0
  return pred, target


def test_pck_and_auc_hand_computed():
  pred, target = _three_joint_poses()
  no_root = [False, True, True]
  # Under 150 mm (strictly): 100 and 50 of the 4 errors 100, 200, 150, 50.
  assert metrics.pck(pred, target, no_root) == pytest.approx(50.0)
  # Thresholds 0, 5, ..., 150: 100 is under 105..150 (10 of them), 50 under 55..150 (20),
  # 200 and 150 under none: 30 hits of 4 joints x 31 thresholds.
  assert metrics.auc(pred, target, no_root) == pytest.approx(100 * 30 / (4 * 31))
  errors = np.asarray(metrics.per_joint_error(pred, target))
  np.testing.assert_allclose(metrics.pck_curve(errors, no_root, (0, 100, 101)), [0, 25, 50])
  # With the root: its two errors are 0, under every threshold but 0 (30 of 31).
  assert metrics.pck(pred, target, [True] * 3) == pytest.approx(100 * 4 / 6)
  assert metrics.auc(pred, target, [True] * 3) == pytest.approx(100 * (30 + 2 * 30) / (6 * 31))
  assert len(metrics.AUC_THRESHOLDS_MM) == 31 and metrics.AUC_THRESHOLDS_MM[-1] == 150
  with pytest.raises(ValueError, match='selects no joint'):
    metrics.pck(pred, target, [False] * 3)


def test_masked_mpjpe_hand_computed():
  pred, target = _three_joint_poses()
  # Pose 0: (100 + 200) / 2; pose 1: (150 + 50) / 2. With the root: / 3.
  np.testing.assert_allclose(metrics.masked_mpjpe(pred, target, [False, True, True]),
                             [150.0, 100.0], rtol=1e-6)
  np.testing.assert_allclose(metrics.masked_mpjpe(pred, target, [True] * 3),
                             [100.0, 200.0 / 3], rtol=1e-6)


def test_masked_p_mpjpe_hand_computed():
  # Target: a square of side 200 mm; pred: a 400 x 200 mm rectangle, moved, and joint 0
  # far off. On joints 1-4 the best similarity is no rotation, scale
  # sum(x . y) / sum(|x|^2) = 4 (200 * 100 + 100 * 100) / (4 (200^2 + 100^2)) = 0.6, which
  # puts (200, 100) at (120, 60): every error is |(20, -40)| = sqrt(2000) = 44.72 mm.
  corners = np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]], np.float64)
  target = np.concatenate([[[0, 0, 0]], 100 * corners])[None]
  pred = np.concatenate([[[500, -300, 80]], corners * [200, 100, 0]])[None] + [1000, 20, -30]
  mask = [False, True, True, True, True]
  np.testing.assert_allclose(metrics.masked_p_mpjpe(pred, target, mask), [np.sqrt(2000)],
                             rtol=1e-5)
  assert float(metrics.p_mpjpe(pred, target)[0]) > 50  # joint 0 counted: worse


# The 2D poses a layout lacks joints of.

def test_complete_2d_derives_the_missing_joints_by_hand():
  pose = np.zeros((1, 17, 2))
  pose[0, J['LHip']], pose[0, J['RHip']] = (100, 200), (300, 200)
  pose[0, J['LShoulder']], pose[0, J['RShoulder']] = (150, 0), (250, 0)
  pose[0, J['Thorax']] = (999, 999)  # OpenPose's Neck: not used
  derived = cross_dataset.TEST_SETS['pw3d/test'].derived_2d
  out, text = cross_dataset.complete_2d(pose, derived)
  # Pelvis (200, 200), Thorax (200, 0), Spine midway; Neck and Head above the Thorax by
  # 121 / 490 and 236 / 490 of the 200 px torso (Human3.6M's mean bone lengths, mm).
  np.testing.assert_allclose(out[0, J['Pelvis']], (200, 200))
  np.testing.assert_allclose(out[0, J['Thorax']], (200, 0))
  np.testing.assert_allclose(out[0, J['Spine']], (200, 100))
  np.testing.assert_allclose(out[0, J['Neck']], (200, -200 * 121 / 490))
  np.testing.assert_allclose(out[0, J['Head']], (200, -200 * 236 / 490))
  np.testing.assert_array_equal(out[0, J['LShoulder']], (150, 0))
  assert 'Pelvis = mid(LHip, RHip)' in text and 'Head = Thorax + 0.482' in text
  same, text = cross_dataset.complete_2d(pose, ())
  np.testing.assert_array_equal(same, pose)
  assert text.startswith('none')


def test_complete_2d_shares_the_coco_torso_derivation():
  coco = np.random.default_rng(0).uniform(0, 1000, (5, 17, 2))
  h36m, _ = keypoints_lib.coco_to_h36m(coco)
  torso = [J['Pelvis'], J['Thorax'], J['Spine']]
  scrambled = h36m.copy()
  scrambled[:, torso] = -1.0
  out, _ = cross_dataset.complete_2d(scrambled, ('Pelvis', 'Thorax', 'Spine'))
  np.testing.assert_allclose(out, h36m)


def test_unknown_and_unbuilt_datasets_are_one_line(tmp_path):
  with pytest.raises(cross_dataset.UnknownDataset,
                     match=r"'pw3d/tset' \(did you mean 'pw3d/test'\?\); known: "
                     r'mpi_inf_3dhp/test, pw3d/test, pw3d/validation, pw3d/train\.'):
    cross_dataset.test_set('pw3d/tset')
  with pytest.raises(cross_dataset.DatasetError,
                     match=r'not built in .*python -m tfds_h36m.prepare --dataset=mpi_inf_3dhp/'
                     r'test --manual_dir=/path/to/3dhp --data_dir='):
    cross_dataset.open_builder('mpi_inf_3dhp/test', str(tmp_path))


# End to end on tiny builds.

def _write_pw3d_missing_wrist(manual_dir):
  """The 3DPW files, then office_d_00 (test) with actor 0's left wrist undetected in frame 1."""
  write_pw3d(manual_dir)
  seq = _pw3d_sequence('office_d_00')
  seq['poses2d'][0][1, 2, 7] = 0.0  # confidence row, COCO-18 LWrist
  path = os.path.join(manual_dir, 'sequenceFiles', 'test', 'office_d_00.pkl')
  with open(path, 'wb') as f:
    f.write(py2_pickle(seq))


@pytest.fixture(scope='session')
def wild_data_dir(tmp_path_factory):
  """A data dir with tiny mpi_inf_3dhp/test (30 examples) and pw3d (test: 12) builds."""
  root = tmp_path_factory.mktemp('wild')
  write_mpi(root / 'mpi', valid=[1, 1, 0, 1, 1, 1])
  _write_pw3d_missing_wrist(root / 'pw3d')
  for builder_cls, manual in ((tfds_h36m.builders.MpiInf3dhp, 'mpi'),
                              (tfds_h36m.builders.Pw3d, 'pw3d')):
    builder_cls(data_dir=str(root / 'data')).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / manual)))
  return str(root / 'data')


@pytest.fixture(scope='module')
def workdir(tiny_lifting_run, tmp_path_factory):
  """A copy of the trained tiny workdir (evaluations write into it)."""
  path = tmp_path_factory.mktemp('cross') / 'run'
  shutil.copytree(tiny_lifting_run['workdir'], path)
  return str(path)


def _own_lift(workdir, examples):
  """The lifter's answers to every example, its intrinsics given per example."""
  return lifter_lib.load_lifter(workdir).lift(
      examples['pose_2d'], focal_length=examples['camera/focal_length'],
      center=examples['camera/center']).poses_mm


def test_mpi_per_activity_and_p1_computed_independently(workdir, wild_data_dir):
  summary = cross_dataset.run(workdir, 'mpi_inf_3dhp/test', data_dir=wild_data_dir)
  out = os.path.join(workdir, 'eval', 'mpi_inf_3dhp_test')
  with open(os.path.join(out, 'summary.json')) as f:
    assert json.load(f) == summary
  assert 'univ_annot3' in open(os.path.join(out, 'results.md')).read()
  # Frames 0, 1, 3, 4, 5 of each sequence are valid: activities 1, 2, 4, 5, 6.
  assert [r['name'] for r in summary['rows']] == [wild.MPI_ACTIVITIES[a] for a in (0, 1, 3, 4, 5)]
  assert [r['count'] for r in summary['rows']] == [6] * 5 and summary['num_poses'] == 30
  for row in summary['rows'] + [summary['overall']]:
    assert 0 <= row['pck_150'] <= 100 and 0 <= row['auc'] <= row['pck_150']
  assert 'univ_annot3' in summary['convention']['annotation_3d']
  assert 'trained on h36m_synthetic/tiny' in summary['convention']['training']
  builder = cross_dataset.open_builder('mpi_inf_3dhp/test', wild_data_dir)
  examples = cross_dataset.read_examples(builder, 'test')
  pred = _own_lift(workdir, examples)
  root_relative = lambda p: p - p[:, :1]
  p1 = np.linalg.norm(root_relative(pred) - root_relative(examples['pose_3d']), axis=-1).mean()
  assert summary['overall']['mpjpe'] == pytest.approx(p1, rel=1e-5)
  lifter = lifter_lib.load_lifter(workdir)  # one example at a time: the same answers
  for i in (0, 29):
    one = lifter.lift(examples['pose_2d'][i:i + 1],
                      focal_length=examples['camera/focal_length'][i],
                      center=examples['camera/center'][i]).poses_mm
    np.testing.assert_allclose(one[0], pred[i], atol=1e-3)


def test_own_predictions_as_ground_truth_score_perfectly(workdir, wild_data_dir, monkeypatch):
  read = cross_dataset.read_examples

  def own_answers(builder, split):
    examples = read(builder, split)
    return dict(examples, pose_3d=_own_lift(workdir, examples))

  monkeypatch.setattr(cross_dataset, 'read_examples', own_answers)
  overall = cross_dataset.run(workdir, 'mpi_inf_3dhp/test', data_dir=wild_data_dir)['overall']
  assert overall['pck_150'] == 100.0 and overall['mpjpe'] == pytest.approx(0.0, abs=1e-3)
  assert overall['p_mpjpe'] == pytest.approx(0.0, abs=0.05)
  # Every error is 0, under each threshold but the first (0 mm): 30 of 31.
  assert overall['auc'] == pytest.approx(100 * 30 / 31)


def test_pw3d_per_sequence_skips_undetected_joints(workdir, wild_data_dir):
  summary = cross_dataset.run(workdir, 'pw3d/test', data_dir=wild_data_dir)
  assert summary['num_examples'] == 12 and summary['num_poses'] == 11
  assert [(r['name'], r['count']) for r in summary['rows']] == [('office_d_00', 11)]
  convention = summary['convention']
  assert convention['joints'].startswith('14 joints') and 'Spine' not in convention['joints']
  assert 'Thorax = mid(LShoulder, RShoulder)' in convention['derived_2d']
  assert '1 skipped for a missing 2D joint' in convention['poses']
  assert os.path.isfile(os.path.join(workdir, 'eval', 'pw3d_test', 'results.md'))


def test_command_line_and_no_tensorflow(workdir, wild_data_dir):
  """The evaluate command (its flags and main, as `python -m hpe_jax.evaluate` runs them),
  twice in one process: a wrong name, then a subset of pw3d/validation."""
  code = f"""import sys
from absl import app
from hpe_jax import evaluate
for dataset in ('pw3d/tset', 'pw3d/validation'):
  sys.argv = ['evaluate', '--workdir={workdir}', '--dataset=' + dataset,
              '--data_dir={wild_data_dir}', '--max_poses=3']
  try:
    app.run(evaluate.main)
  except SystemExit as e:
    print('exit status', e.code)
print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))
"""
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.strip().splitlines()
  assert lines[0] == 'exit status 2' and lines[-2:] == ['exit status None', '[]'], out.stdout
  (error,) = [line for line in out.stderr.splitlines() if line.startswith('Error:')]
  assert "Unknown dataset 'pw3d/tset'" in error and \
      'known: mpi_inf_3dhp/test, pw3d/test, pw3d/validation, pw3d/train' in error
  assert 'Traceback' not in out.stderr
  assert '| downtown_c_00 | 3 |' in out.stdout and 'a fixed random subset of 3' in out.stdout
  with open(os.path.join(workdir, 'eval', 'pw3d_validation', 'summary.json')) as f:
    assert json.load(f)['num_poses'] == 3
