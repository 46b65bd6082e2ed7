"""`hpe_jax.export`: the lifter as StableHLO and ONNX, equal to `Lifter.lift` within 0.01 mm."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
import hpe_jax
from hpe_jax import export
from hpe_jax import files
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
  unknown = _run([f'--workdir={tmp_path}', '--format=tflite', output])
  assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
      "Error: flag --format=tflite: value should be one of <stablehlo|onnx>"], unknown.stderr
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
      "Error: The ONNX export needs jax2onnx: pip install 'hpe_jax[export]'")
  assert no_extra.stdout.strip() == '[]'
  assert os.listdir(tmp_path) == []
