"""The light install (`pip install hpe_jax`, no extras): lifting with neither TensorFlow, TFDS
nor the rest of the train extra (pyproject.toml)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from conftest import ROOT

# Packages of the train, export and test extras that the base install lacks.
NOT_IN_LIGHT_INSTALL = ('tensorflow', 'tensorflow_datasets', 'tensorboard', 'grain',
                        'array_record', 'clu', 'umap', 'cdflib', 'h5py', 'dm_pix', 'simplejpeg',
                        'torch', 'jax2onnx', 'onnx', 'onnxruntime')
TRAINING_MODULES = ('hpe_jax.train', 'hpe_jax.main', 'hpe_jax.optim', 'hpe_jax.input_pipeline',
                    'hpe_jax.batches', 'hpe_jax.image_stream', 'hpe_jax.summary_writer')
EXAMPLE = os.path.join(ROOT, 'docs', 'examples', 'coco_keypoints.json')

# Run first in a subprocess: the packages above look uninstalled there (find_spec gives None,
# import raises ModuleNotFoundError), as in a light install.
HIDE_PACKAGES = f"""
import importlib.machinery, sys
class _LightInstall(importlib.machinery.PathFinder):
  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name.partition('.')[0] in {NOT_IN_LIGHT_INSTALL!r}:
      return None
    return super().find_spec(name, path, target)
sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = _LightInstall
"""

# The packaged lifter's poses of the example file, and what the process imported.
LIFT = f"""
import json, sys, importlib.util, numpy as np, hpe_jax
from hpe_jax.inference import keypoints
with open({EXAMPLE!r}) as f:
  pose_2d_px, _ = keypoints.coco_to_h36m(np.asarray(json.load(f)['keypoints'])[..., :2])
print(json.dumps({{
    'shape': hpe_jax.load_lifter().lift(pose_2d_px, image_size=(1000, 1000)).poses_mm.shape,
    'hpe_jax': hpe_jax.__file__,
    'installed': [m for m in {NOT_IN_LIGHT_INSTALL!r} if importlib.util.find_spec(m)],
    'imported': sorted({{m.partition('.')[0] for m in sys.modules}} & set({NOT_IN_LIGHT_INSTALL!r})),
    'training': sorted(set(sys.modules) & set({TRAINING_MODULES!r}))}}))
"""


def _predict_args(output, workdir=None):
  return (['--input=' + EXAMPLE, '--format=coco', '--output=' + output]
          + ([f'--workdir={workdir}'] if workdir else []))


def _assert_poses(path, num_poses=24):
  with open(path) as f:
    poses = np.asarray(json.load(f)['poses_3d_mm'])
  assert poses.shape == (num_poses, 17, 3) and np.isfinite(poses).all()
  assert np.ptp(poses[:, :, 1], axis=1).min() > 500  # a body: over 0.5 m from head to feet


def _check_run(out):
  assert out.returncode == 0, out.stderr[-3000:]
  return out


def test_lifting_imports_nothing_of_the_train_extra(tiny_lifting_run, tmp_path):
  """predict (packaged lifter, then a training workdir), the export command's module, every
  inference module and load_lifter().lift, with the train extra's packages hidden."""
  code = HIDE_PACKAGES + f"""
import pkgutil, importlib
from absl import app
import hpe_jax.inference
from hpe_jax import export, predict
for module in pkgutil.iter_modules(hpe_jax.inference.__path__):
  importlib.import_module('hpe_jax.inference.' + module.name)
for args in ({_predict_args(str(tmp_path / 'packaged.json'))!r},
             {_predict_args(str(tmp_path / 'workdir.json'), tiny_lifting_run['workdir'])!r}):
  sys.argv = ['predict', *args]
  try:
    app.run(predict.main)
  except SystemExit as e:
    assert not e.code, e.code
""" + LIFT
  out = _check_run(subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300))
  report = json.loads(out.stdout.strip().splitlines()[-1])
  assert report['installed'] == [] and report['imported'] == [] and report['training'] == []
  assert report['shape'] == [24, 17, 3]
  _assert_poses(tmp_path / 'packaged.json')
  _assert_poses(tmp_path / 'workdir.json')


def _copy_project(dest):
  """What the wheel is built from, so the build leaves nothing in the repository."""
  for name in ('pyproject.toml', 'README.md'):
    shutil.copy(os.path.join(ROOT, name), dest)
  for name in ('hpe_jax', 'tfds_h36m', 'configs'):
    shutil.copytree(os.path.join(ROOT, name), os.path.join(dest, name),
                    ignore=shutil.ignore_patterns('__pycache__'))


def _install_commands(venv, project):
  """Commands creating `venv` and installing `project` into it: uv's where it is installed
  (seconds with its cache), else venv and pip."""
  python = os.path.join(venv, 'bin', 'python')
  if importlib.util.find_spec('uv'):
    import uv  # pylint: disable=g-import-not-at-top
    return [[uv.find_uv_bin(), 'venv', '--quiet', '--python', sys.executable, venv],
            [uv.find_uv_bin(), 'pip', 'install', '--quiet', '--python', python, project]]
  return [[sys.executable, '-m', 'venv', venv],
          [python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', project]]


def test_light_install_lifts(tiny_lifting_run, tmp_path):
  """`pip install hpe_jax` (from PyPI, no extras) into a fresh venv, then there: predict with
  the packaged lifter (and a picture) and with a training workdir, the StableHLO export and
  load_lifter().lift; TensorFlow and TFDS are not installed. A minute or two cold with pip,
  seconds with uv."""
  project, venv = tmp_path / 'project', str(tmp_path / 'venv')
  project.mkdir()
  _copy_project(project)
  start = time.monotonic()
  for command in _install_commands(venv, str(project)):
    _check_run(subprocess.run(command, capture_output=True, text=True, timeout=600))
  print(f'light install: {time.monotonic() - start:.0f} s')
  python = os.path.join(venv, 'bin', 'python')
  workdir = tiny_lifting_run['workdir']
  for args in (['-m', 'hpe_jax.predict', *_predict_args(str(tmp_path / 'poses.json')),
                f'--plot={tmp_path}/poses.png'],
               ['-m', 'hpe_jax.predict', *_predict_args(str(tmp_path / 'workdir.json'), workdir)],
               ['-m', 'hpe_jax.export', f'--workdir={workdir}', '--format=stablehlo',
                f'--output={tmp_path}/lifter.stablehlo'],
               ['-c', LIFT]):
    # Outside the repository, so that the installed package is the one imported.
    out = _check_run(subprocess.run([python, *args], cwd=tmp_path, capture_output=True,
                                    text=True, timeout=300,
                                    env=dict(os.environ, JAX_PLATFORMS='cpu')))
  report = json.loads(out.stdout.strip().splitlines()[-1])
  assert report['hpe_jax'].startswith(venv) and report['shape'] == [24, 17, 3]
  assert report['installed'] == [], report['installed']  # tensorflow, tensorflow_datasets...
  _assert_poses(tmp_path / 'poses.json')
  _assert_poses(tmp_path / 'workdir.json')
  assert (tmp_path / 'poses.png').stat().st_size > 10_000
  assert (tmp_path / 'lifter.stablehlo').stat().st_size > 1000


def _dry_run(tmp_path, *args, **variables):
  """`./run.sh ARGS` with HPE_DRY_RUN=1 (detection only) and a fake nvidia-smi listing one GPU
  first on the PATH."""
  fake = tmp_path / 'nvidia-smi'
  fake.write_text('#!/bin/sh\n[ "$1" = -L ] && echo "GPU 0: NVIDIA Fake (UUID: GPU-0)"\n')
  fake.chmod(0o755)
  env = {k: v for k, v in os.environ.items() if k != 'HPE_ACCELERATOR'}
  env.update(HPE_DRY_RUN='1', PATH=f'{tmp_path}:{os.environ["PATH"]}', **variables)
  return subprocess.run([os.path.join(ROOT, 'run.sh'), *args], env=env, capture_output=True,
                        text=True, timeout=60)


def test_run_sh_installs_jax_for_the_accelerator_found(tmp_path):
  gpu = _dry_run(tmp_path)
  assert gpu.returncode == 0, gpu.stderr
  assert 'Accelerator: cuda (nvidia-smi lists 1 GPU(s): GPU 0: NVIDIA Fake' in gpu.stdout
  assert gpu.stdout.strip().endswith("pip install -e '.[train,cuda]'"), gpu.stdout
  for accelerator, target in (('cpu', '.[train]'), ('tpu', '.[train,tpu]'),
                              ('cuda13', '.[train,cuda13]')):
    out = _dry_run(tmp_path, HPE_ACCELERATOR=accelerator)
    assert out.stdout.strip().endswith(f"pip install -e '{target}'"), out.stdout
  bad = _dry_run(tmp_path, HPE_ACCELERATOR='rocm')
  assert bad.returncode == 2 and bad.stderr.strip() == (
      "HPE_ACCELERATOR must be cpu, cuda, cuda13 or tpu, got 'rocm'")
  tests = _dry_run(tmp_path, 'test')
  assert "pip install -e '.[test]'" in tests.stdout and 'jax2onnx' in tests.stdout
