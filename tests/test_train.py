"""The lifting training stack end to end on the tiny synthetic dataset."""

import importlib.util
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from hpe_jax import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name='lifting', preset='tiny'):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def tiny_config(data_dir, **overrides):
  config = load_config()
  config.data_dir = data_dir
  config.update(overrides)
  return config


def _params(workdir, config):
  """Final parameters restored from a workdir's latest checkpoint."""
  model = train.create_model(config)
  tx = train.create_optimizer(config, 1)
  state = train.create_train_state(config, model, tx, jax.random.PRNGKey(0))
  manager = train.checkpoint_manager(workdir, config)
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
  return restored


@pytest.mark.slow
def test_training_lowers_test_mpjpe_and_writes_outputs(tiny_data_dir, tmp_path):
  untrained = train.train_and_evaluate(tiny_config(tiny_data_dir, num_epochs=0),
                                       str(tmp_path / 'untrained'))
  config = tiny_config(tiny_data_dir, num_epochs=30)
  summary = train.train_and_evaluate(config, str(tmp_path / 'run'))
  before = untrained['2d->3d/mpjpe']['mean_over_actions']
  after = summary['2d->3d/mpjpe']['mean_over_actions']
  assert after < 0.75 * before, (before, after)
  assert summary['2d->3d/p_mpjpe']['mean_over_actions'] <= after
  assert summary['2d->3d/mpjpe']['per_action'].shape == (15,)
  workdir = tmp_path / 'run'
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(workdir))
  assert (workdir / 'config.json').exists()
  table = (workdir / 'results.md').read_text()
  assert 'Average' in table and 'WalkDog' in table
  steps = train.checkpoint_manager(str(workdir), config).all_steps()
  assert steps and max(steps) == 30 * (480 // 32)


@pytest.mark.slow
def test_sigterm_then_resume_equals_uninterrupted_run(tiny_data_dir, tmp_path, monkeypatch):
  config = tiny_config(tiny_data_dir, num_epochs=3)
  train.train_and_evaluate(config, str(tmp_path / 'straight'))

  make_chunk = train.make_train_chunk
  calls = []

  def interrupting_make_chunk(*args, **kwargs):
    chunk = make_chunk(*args, **kwargs)

    def wrapped(*a, **k):
      calls.append(1)
      if len(calls) == 5:  # Mid-epoch 2: the preemption signal arrives.
        os.kill(os.getpid(), signal.SIGTERM)
      return chunk(*a, **k)
    return wrapped

  monkeypatch.setattr(train, 'make_train_chunk', interrupting_make_chunk)
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  interrupted_at = train.checkpoint_manager(str(tmp_path / 'resumed'), config).latest_step()
  assert 0 < interrupted_at < 3 * (480 // 32)
  monkeypatch.setattr(train, 'make_train_chunk', make_chunk)
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))

  straight = _params(str(tmp_path / 'straight'), config)
  resumed = _params(str(tmp_path / 'resumed'), config)
  assert int(resumed.step) == int(straight.step) == 3 * (480 // 32)
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_non_finite_loss_stops_with_the_step(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir, num_epochs=2)
  config.optimizer.learning_rate = 1e30
  config.optimizer.grad_clip_norm = 0.0
  with pytest.raises(FloatingPointError, match=r'Non-finite loss at step \d+'):
    train.train_and_evaluate(config, str(tmp_path / 'nan'))


_MULTI_DEVICE_SCRIPT = r'''
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {root!r})
from tests.test_train import load_config
from hpe_jax import schedules, train

config = load_config()
config.model.dropout = 0.1
config.steps_per_call = 3
rng = np.random.default_rng(0)
data = {{'pose_2d': rng.standard_normal((96, 16, 2), np.float32),
         'pose_3d': rng.standard_normal((96, 16, 3), np.float32)}}
results = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = train.make_data_mesh(devices)
  sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  model = train.create_model(config)
  tx = train.create_optimizer(config, 3)
  state = jax.device_put(train.create_train_state(config, model, tx, jax.random.PRNGKey(0)), replicated)
  chunk = train.make_train_chunk(model, tx, config, schedules.beta_schedule('constant', 1.0, 3), sharded)
  perm = jax.device_put(jnp.arange(96), replicated)
  state, metrics, bad = chunk(state, jax.device_put(data, sharded), perm, 0, 3)
  results.append([np.asarray(x).tolist() for x in jax.tree.leaves((state.params, state.batch_stats))])
  print(len(devices), 'devices, loss', float(metrics.compute()['loss']))
for a, b in zip(*results):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
print('EQUAL')
'''


def test_four_devices_equal_one_device():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', _MULTI_DEVICE_SCRIPT.format(root=ROOT)],
                       env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout + out.stderr
  assert '4 devices' in out.stdout and 'EQUAL' in out.stdout


def _free_port():
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_agree_with_one(tiny_data_dir, tmp_path):
  """Two JAX processes on localhost (one CPU device each) train like one process."""
  overrides = [f'--config.data_dir={tiny_data_dir}', '--config.num_epochs=2',
               '--config.model.dropout=0.0']
  base = [sys.executable, '-m', 'hpe_jax.main', f'--config={ROOT}/configs/lifting.py:tiny']
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  single = subprocess.run(base + overrides + [f'--workdir={tmp_path}/one'], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert single.returncode == 0, single.stderr[-3000:]
  port = _free_port()
  procs = []
  for process_id in range(2):
    penv = dict(env, JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', JAX_NUM_PROCESSES='2',
                JAX_PROCESS_ID=str(process_id))
    procs.append(subprocess.Popen(base + overrides + [f'--workdir={tmp_path}/two'], env=penv,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True))
  outputs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  assert 'JAX process: 1 / 2' in outputs[1][1]
  one = (tmp_path / 'one' / 'results.md').read_text()
  two = (tmp_path / 'two' / 'results.md').read_text()

  def numbers(table):
    return np.array([float(x) for line in table.splitlines() if line.startswith('|')
                     for x in line.split('|')[2:-1] if x.strip().replace('.', '', 1).isdigit()])

  np.testing.assert_allclose(numbers(one), numbers(two), rtol=1e-3, atol=0.15)
  assert len(numbers(one)) == 32  # 15 actions + average, MPJPE and P-MPJPE


def test_resuming_a_checkpoint_of_another_model_names_the_problem(tiny_lifting_run, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'copy'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = tiny_lifting_run['config'].copy_and_resolve_references()
  config.model.latent_dim += 1
  with pytest.raises(ValueError, match='does not fit the model of this config'):
    train.train_and_evaluate(config, str(workdir))
