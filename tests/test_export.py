"""`hpe_jax.export`: the lifter as StableHLO and ONNX, equal to `Lifter.lift` within 0.01 mm."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from conftest import tiny_config
import hpe_jax
from hpe_jax import export
from hpe_jax import files
from hpe_jax.inference import onnx_model
from hpe_jax.inference import restore

TOLERANCE_MM = 0.01


@pytest.fixture(scope='module')
def flip_workdir(tiny_lifting_run, tmp_path_factory):
  """A copy of the tiny run with the test-time flip on (the export must hold it too)."""
  workdir = tmp_path_factory.mktemp('export') / 'flip'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  config['flip_test'] = True
  (workdir / 'config.json').write_text(json.dumps(config))
  return str(workdir)


def _keypoints(stats, n, seed):
  """(n, 17, 2) float32 px around the training split's mean 2D pose."""
  rng = np.random.default_rng(seed)
  joints = stats['pose_2d_mean'] + 0.5 * stats['pose_2d_std'] * rng.standard_normal((n, 16, 2))
  pelvis = 0.5 * (joints[:, 0] + joints[:, 3])
  return np.concatenate([pelvis[:, None], joints], axis=1).astype(np.float32)


def test_stablehlo_equals_lift(tiny_lifting_run, tmp_path):
  workdir = tiny_lifting_run['workdir']  # without the flip; the ONNX test has it
  lifter = hpe_jax.load_lifter(workdir, 'last')
  path = str(tmp_path / 'lifter.stablehlo')
  export.export_file(workdir, path, 'stablehlo', checkpoint='last', platforms=['cpu'])
  exported = export.load_stablehlo(path)
  assert str(exported.in_avals[0]) == 'float32[n,17,2]'
  for n in (1, 37):  # one function for every batch size
    keypoints = _keypoints(lifter.stats, n, seed=n)
    poses = np.asarray(exported.call(keypoints))
    assert poses.shape == (n, 17, 3) and np.all(poses[:, 0] == 0)
    np.testing.assert_allclose(poses, lifter.lift(keypoints).poses_mm, atol=TOLERANCE_MM)
  assert os.listdir(tmp_path) == ['lifter.stablehlo']


def test_onnx_equals_lift(flip_workdir, tmp_path):
  # onnxruntime is in the test extra and `./run.sh test` installs jax2onnx: never skipped.
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  lifter = hpe_jax.load_lifter(flip_workdir, 'last')
  path = str(tmp_path / 'lifter.onnx')
  export.export_file(flip_workdir, path, 'onnx', checkpoint='last')
  session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
  (inp,), (out,) = session.get_inputs(), session.get_outputs()
  assert (inp.name, inp.shape, out.name) == ('keypoints_px', ['N', 17, 2], 'poses_mm')
  meta = session.get_modelmeta().custom_metadata_map
  assert meta['joint_names'].split(',')[:2] == ['Pelvis', 'RHip'] and meta['flip_test'] == 'True'
  f_ref = np.asarray(meta['reference_focal_length_px'].split(','), float)
  np.testing.assert_allclose(f_ref, [1147.3, 1146.2], atol=0.1)
  for n in (1, 37):  # the dynamic batch
    keypoints = _keypoints(lifter.stats, n, seed=n)
    poses, = session.run(None, {'keypoints_px': keypoints})
    assert poses.shape == (n, 17, 3)
    np.testing.assert_allclose(poses, lifter.lift(keypoints).poses_mm, atol=TOLERANCE_MM)


def test_a_workdir_without_the_lifting_pair_is_one_error(tiny_lifting_run, tmp_path):
  workdir = tmp_path / 'other'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  config['pairs'] = [dict(config['pairs'][0], source='pose_3d')]
  (workdir / 'config.json').write_text(json.dumps(config))
  with pytest.raises(restore.CheckpointError, match='has no pose_2d -> pose_3d pair'):
    export.export_file(str(workdir), str(tmp_path / 'x.stablehlo'))
  assert not os.path.exists(tmp_path / 'x.stablehlo')


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
  def failing_replace(src, dst):
    raise OSError('disk full')

  monkeypatch.setattr(files.os, 'replace', failing_replace)
  with pytest.raises(OSError, match='disk full'):
    files.write_atomic(str(tmp_path / 'lifter.onnx'), b'model')
  assert os.listdir(tmp_path) == []


def _run(code_or_args):
  args = (['-c', code_or_args] if isinstance(code_or_args, str)
          else ['-m', 'hpe_jax.export', *code_or_args])
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


def test_command_line_errors_are_one_line(tmp_path):
  output = f'--output={tmp_path}/x.onnx'
  bad = _run([f'--workdir={tmp_path}/none', '--format=stablehlo', output])
  assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
      f'Error: Workdir {tmp_path}/none does not exist.'), bad.stderr[-2000:]
  stablehlo_int8 = _run([f'--workdir={tmp_path}', '--format=stablehlo', '--quantize=int8',
                         output])
  assert stablehlo_int8.returncode == 2 and stablehlo_int8.stderr.strip().splitlines() == [
      'Error: --quantize=int8 needs --format=onnx.'], stablehlo_int8.stderr
  unknown = _run([f'--workdir={tmp_path}', '--format=tflite', output])
  assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
      "Error: flag --format=tflite: value should be one of <stablehlo|onnx|package>"], unknown.stderr
  # Without the extra (jax2onnx made unimportable): the install command, exit status 2; and
  # neither the export nor the BVH writer imports TensorFlow or training code.
  no_extra = _run(
      "import runpy, sys\nsys.modules['jax2onnx'] = None\n"
      f"sys.argv = ['export', '--workdir={tmp_path}/none', '--format=onnx', '{output}']\n"
      "try:\n  runpy.run_module('hpe_jax.export', run_name='__main__')\nfinally:\n"
      "  import hpe_jax.inference.bvh\n"
      "  print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', "
      "'tensorflow_datasets', 'optax') or m in ('hpe_jax.train', 'hpe_jax.input_pipeline')))")
  assert no_extra.returncode == 2, no_extra.stderr[-2000:]
  assert no_extra.stderr.strip().splitlines()[-1] == (
      "Error: ONNX needs jax2onnx: pip install 'hpe_jax[export]'")
  assert no_extra.stdout.strip() == '[]'
  assert os.listdir(tmp_path) == []


@pytest.fixture(scope='module')
def temporal_workdirs(tiny_poses_data_dir, tmp_path_factory):
  """{'centred': configs/temporal.py:tiny (window 9) trained 2 epochs, 'causal': a copy read
  as causal windows with the test-time flip on (same parameters, other windows)}."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('export_temporal')
  train.train_and_evaluate(tiny_config(tiny_poses_data_dir, name='temporal'),
                           str(root / 'centred'))
  shutil.copytree(root / 'centred', root / 'causal')
  config = json.loads((root / 'causal' / 'config.json').read_text())
  config['model']['causal'], config['flip_test'] = True, True
  (root / 'causal' / 'config.json').write_text(json.dumps(config))
  return {name: str(root / name) for name in ('centred', 'causal')}


def _docs_windows(reference, meta):
  """The windows (F, T, 17, 2) of one sequence `reference` (F, 17, 2) px, built by the numpy
  recipe of docs/export.md (its code block, run without the session)."""
  text = open(os.path.join(ROOT, 'docs', 'export.md'), encoding='utf-8').read()
  section = text.split('## Temporal lifters')[1]
  code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  namespace = {'meta': meta, 'reference': reference}
  exec('\n'.join(line for line in code.splitlines() if 'session' not in line), namespace)  # pylint: disable=exec-used
  return namespace['windows']


def test_temporal_stablehlo_takes_the_docs_windows(temporal_workdirs, tmp_path):
  for name, workdir in temporal_workdirs.items():
    lifter = hpe_jax.load_lifter(workdir, 'last')
    path = str(tmp_path / f'{name}.stablehlo')
    export.export_file(workdir, path, 'stablehlo', checkpoint='last', platforms=['cpu'])
    exported = export.load_stablehlo(path)
    assert str(exported.in_avals[0]) == 'float32[n,9,17,2]'
    assert str(exported.out_avals[0]) == 'float32[n,17,3]'
    meta = {'window': '9', 'causal': str(name == 'causal')}
    for n in (3, 20):  # shorter and longer than the window
      sequence = _keypoints(lifter.stats, n, seed=n)
      windows = _docs_windows(sequence, meta)
      assert windows.shape == (n, 9, 17, 2) and windows.dtype == np.float32
      poses = np.asarray(exported.call(windows))
      np.testing.assert_allclose(poses, lifter.lift(sequence).poses_mm, atol=TOLERANCE_MM,
                                 err_msg=name)


def test_temporal_onnx_equals_lift(temporal_workdirs, tmp_path):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  workdir = temporal_workdirs['centred']  # the StableHLO test has the causal window, flipped
  lifter = hpe_jax.load_lifter(workdir, 'last')
  path = str(tmp_path / 'lifter.onnx')
  export.export_file(workdir, path, 'onnx', checkpoint='last')
  session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
  (inp,), (out,) = session.get_inputs(), session.get_outputs()
  assert (inp.name, inp.shape, out.name) == ('keypoints_px', ['N', 9, 17, 2], 'poses_mm')
  meta = session.get_modelmeta().custom_metadata_map
  assert (meta['window'], meta['causal'], meta['flip_test']) == ('9', 'False', 'False')
  assert meta['input'].startswith('keypoints_px (N, 9, 17, 2) float32: windows of 9')
  assert "window's centre frame" in meta['output']
  sequence = _keypoints(lifter.stats, 20, seed=0)
  poses, = session.run(None, {'keypoints_px': _docs_windows(sequence, meta)})
  np.testing.assert_allclose(poses, lifter.lift(sequence).poses_mm, atol=TOLERANCE_MM)
  # The onnx engine builds the same windows from the keypoints, per sequence.
  ids = np.repeat([3, 1], 10)
  np.testing.assert_allclose(
      hpe_jax.load_lifter(workdir, 'last', engine='onnx').lift(sequence, sequence_ids=ids)
      .poses_mm, lifter.lift(sequence, sequence_ids=ids).poses_mm, atol=TOLERANCE_MM)


def test_single_frame_metadata_has_no_window(tiny_lifting_run):
  meta = onnx_model.metadata(hpe_jax.load_lifter(tiny_lifting_run['workdir'], 'last'))
  assert 'window' not in meta and 'causal' not in meta
  assert meta['input'].startswith('keypoints_px (N, 17, 2) float32: H36M-17 keypoints')


def _affine_graph(weights, bias, mean, scale, offset):
  """x (N, 3) -> max((x W + bias - mean) * scale + offset, 0), written as jax2onnx writes a
  Dense layer with a BatchNorm at inference (Gemm, Sub, Mul, Add, Max with 0)."""
  from onnx import helper, numpy_helper, TensorProto  # pylint: disable=g-import-not-at-top
  constants = {'W': weights, 'c': bias, 'm': mean, 's': scale, 'o': offset,
               'zero': np.float32(0.0)}
  nodes = [helper.make_node('Gemm', ['x', 'W', 'c'], ['y0'], name='dense'),
           helper.make_node('Sub', ['y0', 'm'], ['y1']),
           helper.make_node('Mul', ['y1', 's'], ['y2']),
           helper.make_node('Add', ['y2', 'o'], ['y3']),
           helper.make_node('Max', ['y3', 'zero'], ['y'])]
  graph = helper.make_graph(
      nodes, 'affine', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3])],
      [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 2])],
      [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in constants.items()])
  return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])


def test_batch_norm_folding_is_exact_on_a_hand_made_layer():
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  weights = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  bias, mean, scale, offset = [1.0, 2.0], [0.5, -1.0], [2.0, 0.25], [-1.0, 4.0]
  model = onnx_model.relu(onnx_model.fold_affine(
      _affine_graph(weights, bias, mean, scale, offset)))
  assert [n.op_type for n in model.graph.node] == ['MatMul', 'Add', 'Relu']
  constants = {t.name: numpy_helper.to_array(t)
               for t in model.graph.initializer}
  # By hand: W' = W * scale per column, b' = (bias - mean) * scale + offset.
  np.testing.assert_allclose(constants['dense_folded_weights'],
                             [[2.0, -0.5], [1.0, 0.0], [6.0, 0.25]])
  np.testing.assert_allclose(constants['dense_folded_bias'], [0.0, 4.75])
  x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]], np.float32)
  y, = ort.InferenceSession(model.SerializeToString(),
                            providers=['CPUExecutionProvider']).run(None, {'x': x})
  expected = np.maximum((x @ weights + bias - mean) * scale + offset, 0.0)
  np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_int8_engine_and_export(tiny_lifting_run, tmp_path):
  import onnx  # pylint: disable=g-import-not-at-top
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  workdir = tiny_lifting_run['workdir']
  reference = hpe_jax.load_lifter(workdir, 'last')
  keypoints = _keypoints(reference.stats, 300, seed=3)
  expected = reference.lift(keypoints).poses_mm
  np.testing.assert_allclose(hpe_jax.load_lifter(workdir, 'last', engine='onnx')
                             .lift(keypoints).poses_mm, expected, atol=TOLERANCE_MM)
  int8 = hpe_jax.load_lifter(workdir, 'last', engine='onnx_int8')
  assert int8.engine == 'onnx_int8'
  poses = int8.lift(keypoints).poses_mm
  assert poses.shape == expected.shape and np.all(poses[:, 0] == 0)
  # Close to float32 (1.3 mm on average for the full-size model, docs/export.md), not equal.
  error = np.linalg.norm(poses - expected, axis=-1)[:, 1:]
  size = np.linalg.norm(expected, axis=-1)[:, 1:].mean()
  assert 0 < error.mean() < 0.01 * size, (error.mean(), size)
  # The hypotheses still come from JAX.
  _, samples = int8.lift(keypoints[:4], num_hypotheses=3)
  assert samples.shape == (4, 3, 17, 3)
  path = str(tmp_path / 'int8.onnx')
  export.export_file(workdir, path, 'onnx', checkpoint='last', quantize='int8')
  model = onnx.load(path)
  ops = [n.op_type for n in model.graph.node]
  linear = [n for n in model.graph.node if n.op_type in ('MatMul', 'MatMulInteger', 'Gemm')]
  # The hidden layers are int8, the first and the last stay float32; no BatchNorm pass left.
  assert [n.op_type for n in (linear[0], linear[-1])] == ['MatMul', 'MatMul']
  assert ops.count('MatMulInteger') == len(linear) - 2 > 0 and 'Gemm' not in ops
  assert 'Sub' not in ops[ops.index('MatMulInteger'):]
  meta = {p.key: p.value for p in model.metadata_props}
  assert meta['quantization'].startswith('int8') and meta['joint_names'].startswith('Pelvis')
  exported, = ort.InferenceSession(path, providers=['CPUExecutionProvider']).run(
      None, {'keypoints_px': keypoints})
  np.testing.assert_allclose(exported, poses, atol=1e-4)


def test_unknown_engine_and_missing_extra():
  from hpe_jax import predict  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="Unknown engine 'tflite'; use one of"):
    hpe_jax.load_lifter('unused', engine='tflite')
  assert predict.exit_status(onnx_model.MissingExtra('ONNX needs onnx')) == 2
