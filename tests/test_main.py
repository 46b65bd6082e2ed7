"""The training command line: one-line errors, nothing left behind, the preemption exit status."""

import os
import signal
import socket
import subprocess
import sys
import time

from conftest import ROOT
from hpe_jax import checkpointing


def _main(*args, timeout=300, **kwargs):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'hpe_jax.main', *args], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, **kwargs)


def _error_lines(stderr):
  return [line for line in stderr.splitlines() if line.startswith('Error:')]


def test_unknown_config_field_is_one_line_with_near_matches(tmp_path):
  workdir = tmp_path / 'run'
  out = _main('--config=configs/lifting.py:tiny', '--config.model.latnt_dim=3',
              f'--workdir={workdir}')
  assert out.returncode == 2
  assert _error_lines(out.stderr) == [
      "Error: Unknown config field 'model.latnt_dim' (did you mean 'model.latent_dim'?)."]
  assert 'Traceback' not in out.stderr and not workdir.exists()
  out = _main('--config=configs/lifting.py:huge', f'--workdir={workdir}')
  assert out.returncode == 2 and "Unknown preset 'huge'" in out.stderr
  assert 'Traceback' not in out.stderr and not workdir.exists()


def test_unknown_dataset_is_one_line_and_writes_nothing(tiny_data_dir, tmp_path):
  workdir = tmp_path / 'run'
  out = _main('--config=configs/lifting.py:tiny', '--config.dataset=h36m_synthetc/tiny',
              f'--config.data_dir={tiny_data_dir}', f'--workdir={workdir}')
  assert out.returncode == 2, out.stderr[-2000:]
  (line,) = _error_lines(out.stderr)
  assert "Unknown dataset 'h36m_synthetc/tiny' (did you mean 'h36m_synthetic/tiny'" in line
  assert 'Traceback' not in out.stderr and not workdir.exists()


def test_a_tfrecord_image_dataset_is_one_line_saying_how_to_rebuild(tfrecord_data_dir,
                                                                     tmp_path):
  workdir = tmp_path / 'run'
  out = _main('--config=configs/crossmodal.py:tiny', f'--config.data_dir={tfrecord_data_dir}',
              f'--workdir={workdir}')
  assert out.returncode == 1, out.stderr[-2000:]
  (line,) = _error_lines(out.stderr)
  assert 'is stored as tfrecord' in line and 'Rebuild it' in line and \
      '--dataset=h36m_synthetic/tiny' in line
  assert 'Traceback' not in out.stderr and not workdir.exists()


def test_sigterm_saves_and_exits_with_the_preemption_status(tiny_data_dir, tmp_path):
  workdir = tmp_path / 'run'
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  proc = subprocess.Popen(
      [sys.executable, '-m', 'hpe_jax.main', '--config=configs/lifting.py:tiny',
       f'--config.data_dir={tiny_data_dir}', '--config.num_epochs=100000',
       '--config.eval_every_epochs=100000', '--config.checkpoint_every_epochs=100000',
       f'--workdir={workdir}'], env=env, cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while time.time() < deadline and not (workdir / 'normalization.json').exists():
    time.sleep(0.5)  # written once the data is on the devices, just before training
  time.sleep(8)  # training is under way
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == checkpointing.EXIT_PREEMPTED, err[-3000:]
  assert 'Rerun the same command to resume' in err
  steps = [int(s) for s in os.listdir(workdir / 'checkpoints') if s.isdigit()]
  assert len(steps) == 1 and steps[0] > 0
  assert not (workdir / 'train.lock').exists()



def test_sigterm_to_one_host_stops_every_host_at_the_same_step(tiny_data_dir, tmp_path):
  """Two JAX processes on localhost: a SIGTERM to one reaches Orbax's preemption sync point on
  both, which save one checkpoint together and exit with the preemption status."""
  workdir = tmp_path / 'run'
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  procs = []
  try:
    for process_id in range(2):
      env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
                 JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(process_id))
      procs.append(subprocess.Popen(
          [sys.executable, '-m', 'hpe_jax.main', '--config=configs/lifting.py:tiny',
           f'--config.data_dir={tiny_data_dir}', '--config.num_epochs=100000',
           '--config.eval_every_epochs=100000', '--config.checkpoint_every_epochs=100000',
           f'--workdir={workdir}'], env=env, cwd=ROOT, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE, text=True))
    deadline = time.time() + 240
    while time.time() < deadline and not (workdir / 'normalization.json').exists():
      time.sleep(0.5)
    time.sleep(10)  # both are training
    procs[1].send_signal(signal.SIGTERM)
    errors = [p.communicate(timeout=180)[1] for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, err in zip(procs, errors):
    assert p.returncode == checkpointing.EXIT_PREEMPTED, err[-3000:]
    assert 'Reached preemption sync point' in err
  steps = [int(s) for s in os.listdir(workdir / 'checkpoints') if s.isdigit()]
  assert len(steps) == 1 and steps[0] > 0
