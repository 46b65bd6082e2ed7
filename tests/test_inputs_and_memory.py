"""Degenerate keypoint inputs (NaN, inf, null, nobody) and the memory budget, on hand-made files."""

import json
import logging
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hpe_jax
from conftest import ROOT, load_config
import test_layouts
from hpe_jax import memory
from hpe_jax import predict
from hpe_jax import ray_spread
from hpe_jax.evaluation import hypotheses
from hpe_jax.inference import camera as camera_lib
from hpe_jax.inference import keypoints
from hpe_jax.inference import layouts
from hpe_jax.inference import resample
from hpe_jax.inference import smoothing
from hpe_jax.inference import tracks
from hpe_jax.models import factory
from tfds_h36m import skeleton

H36M = {name: j for j, name in enumerate(skeleton.JOINT_NAMES)}
COCO = {name: j for j, name in enumerate(layouts.COCO_JOINT_NAMES)}
NUM_FRAMES = 6


def _person(num_joints, frame):
  """Keypoints (J, 2) px of a hand-made person moving right, and confidences (J,) of 0.9."""
  j = np.arange(num_joints, dtype=np.float64)
  return np.stack([400 + 7 * j + 3 * frame, 300 + 11 * j], axis=-1), np.full(num_joints, 0.9)


def _h36m_person(num_frames):
  """H36M-17 keypoints (num_frames, 17, 2) px of tests/test_layouts' hand-made person (a
  pose the lifter's layout check takes), moving right."""
  person = 3 * np.array([test_layouts.H36M[name] for name in skeleton.JOINT_NAMES], float)
  return np.stack([person + (300 + 3 * f, 200) for f in range(num_frames)])


def _triplets(num_joints, frame):
  points, conf = _person(num_joints, frame)
  return np.concatenate([points, conf[:, None]], axis=1).ravel().tolist()


def _results(num_joints, bad_frame, bad_index, bad_value):
  """A detection list of one person in NUM_FRAMES frames; number `bad_index` of frame
  `bad_frame`'s triplets set to bad_value."""
  out = [{'image_id': f, 'score': 0.9, 'keypoints': _triplets(num_joints, f)}
         for f in range(NUM_FRAMES)]
  out[bad_frame]['keypoints'][bad_index] = bad_value
  return out


def _write_input(tmp_path, kind):
  """(path, --format) of a one-person input whose COCO left knee (joint 13) in frame 2 has
  a NaN, inf or null number, in each input format."""
  knee = COCO['left_knee']
  if kind in ('coco_results', 'halpe26'):
    num_joints = layouts.for_format(kind).num_joints
    path = tmp_path / 'results.json'  # json.dumps writes NaN as the literal NaN
    path.write_text(json.dumps(_results(num_joints, 2, 3 * knee, float('nan'))))
    return str(path), kind
  if kind == 'alphapose_null':  # JSON's null, as strict writers put for NaN
    path = tmp_path / 'alphapose.json'
    path.write_text(json.dumps(_results(26, 2, 3 * knee + 1, None)))
    return str(path), 'halpe26'
  if kind == 'openpose25':  # a score of Infinity: the keypoint is missing too
    folder = tmp_path / 'openpose'
    folder.mkdir()
    knee = layouts.OPENPOSE25.joint_names.index('LKnee')
    for f in range(NUM_FRAMES):
      numbers = _triplets(25, f)
      if f == 2:
        numbers[3 * knee + 2] = float('inf')
      (folder / f'v_{f:012d}_keypoints.json').write_text(
          json.dumps({'people': [{'pose_keypoints_2d': numbers}]}))
    return str(folder), kind
  points = np.stack([_person(17, f)[0] for f in range(NUM_FRAMES)])
  points[2, knee, 0] = np.nan
  if kind == 'npz':
    np.savez(tmp_path / 'kp.npz', keypoints=points)
    return str(tmp_path / 'kp.npz'), 'coco'
  columns = [f'{a}{j}' for j in range(17) for a in 'xy']
  lines = [','.join(columns)] + [','.join(str(v) for v in frame.ravel()) for frame in points]
  (tmp_path / 'kp.csv').write_text('\n'.join(lines) + '\n')  # 'nan' in a cell
  return str(tmp_path / 'kp.csv'), 'coco'


@pytest.mark.parametrize('kind', ['coco_results', 'halpe26', 'alphapose_null', 'openpose25',
                                  'npz', 'csv'])
def test_a_non_finite_keypoint_is_missing_in_every_format(tmp_path, kind, caplog):
  path, fmt = _write_input(tmp_path, kind)
  caplog.set_level(logging.WARNING)
  rows = predict.read_input(path, predict.Options(fmt=fmt))
  said = [r.getMessage() for r in caplog.records if 'NaN or infinite' in r.getMessage()]
  assert len(said) == 1 and ': 1 of ' in said[0], said
  knee = H36M['LKnee']
  assert np.all(np.isfinite(rows.keypoints))  # filled in time, between its neighbours
  np.testing.assert_allclose(rows.keypoints[2, knee], (rows.keypoints[1, knee] +
                                                       rows.keypoints[3, knee]) / 2)
  assert rows.confidences[2, knee] == 0  # flagged like an undetected joint
  others = np.delete(rows.confidences, knee, axis=1)
  assert np.all(rows.confidences[[0, 1, 3, 4, 5]] > 0) and np.all(others[2] > 0)


def test_read_keypoints_marks_nan_missing_and_gives_confidences(tmp_path):
  points = np.ones((3, 17, 2))
  points[1, 4] = np.inf
  np.savez(tmp_path / 'kp.npz', keypoints=points)
  kp = keypoints.read_keypoints(str(tmp_path / 'kp.npz'))
  assert np.all(np.isnan(kp.keypoints[1, 4])) and kp.confidences[1, 4] == 0
  assert np.sum(kp.confidences == 0) == 1 and np.all(kp.confidences[kp.confidences > 0] == 1)


def test_lifting_a_nan_keypoint_flags_it_in_the_outputs(tmp_path):
  path, fmt = _write_input(tmp_path, 'coco_results')
  out = predict.predict_file(hpe_jax.load_lifter(), path, str(tmp_path / 'poses.npz'), fmt=fmt)
  assert out['confidences'][2, H36M['LKnee']] == 0
  assert np.all(np.isfinite(out['keypoints_2d_px'])) and np.all(np.isfinite(out['poses_3d_mm']))


def _openpose_folder(tmp_path, people):
  folder = tmp_path / 'openpose'
  folder.mkdir()
  for f in range(2):
    (folder / f'v_{f}_keypoints.json').write_text(json.dumps({'people': people}))
  return str(folder)


@pytest.mark.parametrize('fmt, make, message', [
    ('coco_results', lambda p: (p / 'r.json').write_text('[]'),
     r'r\.json: no people/keypoints in the file$'),
    ('halpe26', lambda p: (p / 'r.json').write_text('[]'), r'r\.json: no people/keypoints in '),
    ('openpose25', lambda p: (p / 'r.json').write_text('{"people": []}'),
     r'r\.json: no people/keypoints in the file$'),
    ('openpose25', lambda p: _openpose_folder(p, []),
     r'openpose: no people/keypoints in its 2 OpenPose frames$'),
    ('coco_results', lambda p: (p / 'r.json').write_text('[{"image_id": 1, "keypoints": []}]'),
     r'r\.json: detection 0 holds no keypoints\.$'),
    ('openpose25', lambda p: _openpose_folder(p, [{'pose_keypoints_2d': []}]),
     r"person 0's pose_keypoints_2d holds no keypoints\.$"),
    ('openpose25', lambda p: os.mkdir(p / 'empty'), r'holds no \.json files'),
    ('h36m', lambda p: np.savez(p / 'kp.npz', keypoints=np.zeros((0, 17, 2))), 'holds no frames'),
    ('coco_results', lambda p: (p / 'r.json').write_text(json.dumps(
        [{'image_id': 0, 'keypoints': [float('nan')] * 51}])),
     'no person has every joint in some frame'),
])
def test_inputs_with_nobody_are_one_data_error(tmp_path, fmt, make, message):
  made = make(tmp_path)
  path = made if isinstance(made, str) else str(next(tmp_path.iterdir()))
  with pytest.raises(keypoints.KeypointError, match=message) as error:
    predict.read_input(path, predict.Options(fmt=fmt))
  assert predict.exit_status(error.value) == predict.EXIT_DATA == 1


@pytest.mark.parametrize('value', [
    [[['1.5', '2']] * 17],  # numbers written as strings
    np.ones((1, 17, 2), complex),
    [[[10 ** 400, 1]] * 17],  # beyond float64
])
def test_keypoints_that_are_not_real_numbers_are_refused(value):
  with pytest.raises(keypoints.KeypointError, match='ragged lists, text or complex numbers'):
    keypoints.validate(value)


def test_json_nested_too_deep_or_with_huge_numbers_is_one_data_error(tmp_path):
  (tmp_path / 'deep.json').write_text('[' * 100000 + ']' * 100000)
  (tmp_path / 'big.json').write_text(json.dumps([{'image_id': 1, 'keypoints': [10**400] * 51}]))
  for name, message in (('deep.json', 'deep.json: JSON nested too deep to read'),
                        ('big.json', 'detection 0 holds a number beyond the float64 range')):
    with pytest.raises(keypoints.KeypointError, match=message) as error:
      predict.read_input(str(tmp_path / name), predict.Options(fmt='coco_results'))
    assert predict.exit_status(error.value) == predict.EXIT_DATA
  with pytest.raises(keypoints.UsageError, match=r'--min_confidence must be in \[0, 1\]'):
    predict.check_options(predict.Options(min_confidence=5.0))
  with pytest.raises(keypoints.UsageError, match='--keypoint_noise must be a number >= 0'):
    predict.check_options(predict.Options(keypoint_noise=-0.1))


def test_a_pose_with_every_keypoint_at_one_point_has_an_unknown_root(caplog):
  """Its depth is undetermined: the root is NaN (was numpy's LinAlgError), the others fit."""
  lifted = hpe_jax.load_lifter().lift(np.stack([np.full((17, 2), 500.0), _person(17, 0)[0]]))
  assert np.all(np.isnan(lifted.root_mm[0])) and np.all(np.isfinite(lifted.root_mm[1]))
  assert np.all(np.isfinite(lifted.poses_mm))
  assert '1 of 2 poses have every keypoint at one point' in caplog.text


def test_an_empty_detection_list_is_one_line_and_exit_status_1(tmp_path):
  (tmp_path / 'empty.json').write_text('[]')
  run = subprocess.run(
      [sys.executable, '-m', 'hpe_jax.predict', '--input=empty.json', '--format=halpe26',
       '--output=poses.npz'], cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, PYTHONPATH=ROOT))
  assert run.returncode == 1, run.stderr
  assert run.stderr.strip().splitlines()[-1] == (
      'Error: empty.json: no people/keypoints in the file')
  assert sorted(os.listdir(tmp_path)) == ['empty.json']


@pytest.mark.parametrize('fps', [float('inf'), 0.0, -25.0, float('nan')])
def test_time_functions_refuse_a_rate_that_is_not_positive_and_finite(fps):
  frames = np.arange(5)
  with pytest.raises(keypoints.UsageError, match='fps must be a positive finite number'):
    tracks.times_s(frames, fps)
  with pytest.raises(ValueError, match='resampling rate must be a positive finite'):
    resample.through_rate(lambda v: v, np.zeros((5, 2)), frames / 25.0, fps)
  with pytest.raises(ValueError, match='min_cutoff_hz must be a positive finite'):
    smoothing.one_euro(np.zeros((5, 1, 2)), frames / 25.0, min_cutoff_hz=fps, beta=0.0)


def test_times_of_an_infinite_fps_are_refused_where_they_are_used():
  frames = np.arange(5)
  with np.errstate(divide='ignore', invalid='ignore'):
    zeros = frames / np.inf  # what fps=inf made: every frame at 0 s
  with pytest.raises(ValueError, match='times must increase; got 0 s then 0 s'):
    smoothing.one_euro(np.zeros((5, 1, 2)), zeros, min_cutoff_hz=1.0, beta=0.0)
  with pytest.raises(ValueError, match='Resampling: times must increase'):
    resample.through_rate(lambda v: v, np.zeros((5, 2)), zeros, 50.0)
  with pytest.raises(ValueError, match='times must be finite'):
    with np.errstate(over='ignore'):
      resample.uniform_times(frames / 1e-320, 50.0)


def test_predict_refuses_an_infinite_fps_in_the_api(tmp_path):
  path, fmt = _write_input(tmp_path, 'npz')
  for smooth in ('2d', 'none'):
    with pytest.raises(keypoints.UsageError, match='fps must be a positive finite') as error:
      predict.predict_file(hpe_jax.load_lifter(), path, str(tmp_path / 'poses.npz'), fmt=fmt,
                           fps=float('inf'), smooth=smooth)
    assert predict.exit_status(error.value) == 2
  assert sorted(os.listdir(tmp_path)) == ['kp.npz']


def test_a_resampling_grid_over_the_budget_is_refused_before_it_is_made():
  def lift(values):
    raise AssertionError(f'lifted {len(values)} grid frames')
  start = time.perf_counter()
  with pytest.raises(memory.BudgetError, match=r'Resampling a track \(24 frames over 2\.3e\+06 '
                     r's\) onto 115000001 frames at 50 fps would need about 6[0-9.]* GB, over '
                     r'the 2 GB budget \(--memory_budget_gb\); check the frame rate'):
    resample.through_rate(lift, np.zeros((24, 17, 2)), np.arange(24) / 1e-5, 50.0)
  assert time.perf_counter() - start < 1.0
  assert resample.through_rate(lambda v: v + 1, np.zeros((24, 17, 2)), np.arange(24) / 25.0,
                               50.0, budget=100.0).shape == (24, 17, 2)


class _TemporalStub:
  """What predict's --resample uses of a temporal lifter; lifting fails the test."""
  frame_rate_hz = 50.0

  def lift(self, points, **unused):
    raise AssertionError(f'lifted {len(points)} grid frames')


def test_predict_checks_every_track_s_grid_before_resampling():
  rows = tracks.sort(tracks.Rows(np.zeros((8, 17, 2)), None, np.r_[0:4, 0:40:10],
                                 np.r_[[0] * 4, [1] * 4], 40))
  camera = camera_lib.Intrinsics.of(1000.0, (500.0, 500.0), 'given')
  # Person 0's grid (150001 frames, 0.8 GB) fits; person 1's is 10 times longer.
  with pytest.raises(memory.BudgetError, match=r"^Resampling person 1's track \(4 frames over "
                     r'30000 s\) onto 1500001 frames at 50 fps would need about 8\.2 GB'):
    lift_resampled = predict._lift_resampled  # pylint: disable=protected-access
    lift_resampled(_TemporalStub(), rows.keypoints, rows, predict.Options(fps=1e-3), camera)


def test_predict_reads_the_budget_flag(tmp_path):
  path, _ = _write_input(tmp_path, 'coco_results')
  run = subprocess.run(
      [sys.executable, '-m', 'hpe_jax.predict', f'--input={path}', '--format=coco_results',
       '--num_hypotheses=1000', '--memory_budget_gb=0.001', '--output=poses.npz'],
      cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, PYTHONPATH=ROOT))
  assert run.returncode == 2, run.stderr
  assert run.stderr.strip().splitlines()[-1] == (
      'Error: 1000 hypotheses of 6 poses need about 1.53 MB, over the 0.001 GB budget '
      '(--memory_budget_gb); lower --num_hypotheses (about 650 fit) or raise the budget.')
  assert sorted(os.listdir(tmp_path)) == ['results.json']


def _tiny_model():
  config = load_config('lifting', 'tiny')
  model = factory.create_model(config)
  stats = {'pose_2d_mean': np.full((16, 2), 500.0, np.float32),
           'pose_2d_std': np.full((16, 2), 100.0, np.float32),
           'pose_3d_mean': np.zeros((16, 3), np.float32),
           'pose_3d_std': np.full((16, 3), 200.0, np.float32)}
  return model, factory.init_variables(config, model, jax.random.PRNGKey(0)), stats


def _batch(n, seed=0):
  """A batch of n poses as report.EvalData.hypothesis_batches gives them (hand-made)."""
  rng = np.random.default_rng(seed)
  f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
  widths = {'focal_length': 2, 'center': 2, 'radial_distortion': 3, 'tangential_distortion': 2}
  batch = {'pose_2d': f32(n, 16, 2), 'pose_3d_mm': 100 * f32(n, 17, 3),
           'pose_2d_px': 500 + 50 * f32(n, 17, 2), 'root_3d': np.tile([0, 0, 5000.0], (n, 1)),
           'action': rng.integers(0, 15, n).astype(np.int32), 'valid': np.arange(n) < n - 1}
  batch.update({k: np.full((n, w), 1000.0 if k == 'focal_length' else 0.0, np.float32)
                for k, w in widths.items()})
  batch['root_3d'] = batch['root_3d'].astype(np.float32)
  assert set(ray_spread.INTRINSICS) <= set(batch)
  return batch


def _evaluate(model, variables, stats, batches, k, budget=None):
  return hypotheses.evaluate_hypotheses(
      model, variables, 'pose_2d', stats, batches, num_samples=k, temperature=1.0, seed=3,
      num_actions=15, memory_budget_gb=budget)


def test_a_huge_k_is_refused_before_anything_is_sampled():
  model, variables, stats = _tiny_model()
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  start = time.perf_counter()
  with pytest.raises(memory.BudgetError, match=r'^100000000 hypotheses of one pose need about '
                     r'[0-9.]+ GB, over the 2 GB budget \(--memory_budget_gb\); lower '
                     r'--num_hypotheses \(about [0-9]+ fit\) or raise the budget\.$'):
    _evaluate(model, variables, stats, [_batch(8)], 10 ** 8)
  lifter = hpe_jax.load_lifter()
  with pytest.raises(memory.BudgetError, match=r'^10000000 hypotheses of 24 poses need about'):
    lifter.lift(_h36m_person(24), num_hypotheses=10 ** 7)
  with pytest.raises(memory.BudgetError, match=r'^100000 hypotheses of 24 poses need about 9'):
    predict.check_memory(24, predict.Options(num_hypotheses=10 ** 5), ['poses.json'])
  predict.check_memory(24, predict.Options(num_hypotheses=10 ** 5), ['poses.npz'])
  assert time.perf_counter() - start < 15.0
  assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000  # kB


def test_hypotheses_in_chunks_of_poses_give_the_same_numbers():
  model, variables, stats = _tiny_model()
  k, batches = 16, [_batch(8, 0), _batch(8, 1)]
  evaluate = hypotheses.make_hypothesis_metrics(model, 'pose_2d', stats, k, 15)
  per_pose = memory.peak_bytes(evaluate, variables, jax.tree.map(
      lambda a: jax.ShapeDtypeStruct((1,) + a.shape[1:], a.dtype), batches[0]),
      jax.random.PRNGKey(0), jnp.int32(0), jnp.float32(1.0))
  budget = 3.5 * per_pose / memory.GB
  assert hypotheses.rows_per_call(evaluate, variables, batches[0], k) == 8
  assert hypotheses.rows_per_call(evaluate, variables, batches[0], k, budget) == 3
  whole, whole_counts = _evaluate(model, variables, stats, batches, k)
  chunked, chunked_counts = _evaluate(model, variables, stats, batches, k, budget)
  assert len(whole['best_of_k']) == 14  # padding rows dropped
  for key in whole:
    np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-5, atol=1e-4, err_msg=key)
  np.testing.assert_array_equal(chunked_counts, whole_counts)
  assert whole_counts.sum() > 0 and np.all(whole['spread_xyz'][:, 1:] > 0)


def test_the_sorting_network_holds_no_table_of_its_stages():
  samples = jax.ShapeDtypeStruct((10 ** 6, 1), jnp.float32)  # 4 MB; a (210, 2^20) table: 1 GB
  sort = hypotheses._sorted_samples  # pylint: disable=protected-access
  assert memory.peak_bytes(sort, samples) < 50e6
