"""The training command line: one-line errors, nothing left behind, the preemption exit status."""

import os
import signal
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

