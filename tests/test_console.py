"""The console of a tiny end-to-end run as ./run.sh shows it (train, evaluate, predict and
summary, each in its own process): lines of at most 300 characters, no warning from Orbax or
absl, no ETA from the compiling steps, each table printed once."""

import os
import re
import subprocess
import sys

import jax
import pytest

from conftest import ROOT
from hpe_jax import summary_writer

MAX_LINE = 300
# Two pairs of the cross-modal tiny preset: an image pair (whose checkpoints hold the input
# stream's state beside the train state) and the lifter, each its own compiled step.
CONFIG = '''
from configs import common, crossmodal

def get_config():
  config = crossmodal.get_config('tiny')
  config.pairs = [common.pair('image', 'pose_3d'), common.pair('pose_2d', 'pose_3d')]
  config.num_epochs = 1
  return config
'''
PROGRESS = re.compile(r'\d steps/s, [\d.]+% \(\d+/\d+\)')
ETA = re.compile(r'ETA \d+ s')
# absl's warning and error lines, with the file that logged them; Python's warnings; the
# C++ start-up notes of TensorFlow and XLA.
ABSL_WARNING = re.compile(r'^[WE]\d{4} [\d:.]+ +\d+ ([\w.]+):\d+\]')
OTHER_WARNING = re.compile(r'Warning: |^WARNING')
# The project's own modules, whose warnings are about the user's data (e.g. predict's
# low-confidence poses).
OWN_FILES = {f for _, _, names in os.walk(os.path.join(ROOT, 'hpe_jax')) for f in names
             if f.endswith('.py')}


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2')
  out = subprocess.run([sys.executable, '-m', module, *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout, out.stderr


@pytest.fixture(scope='module')
def console(tiny_data_dir, tmp_path_factory):
  """{command: (stdout, stderr)} of the four commands on one tiny workdir."""
  folder = tmp_path_factory.mktemp('console')
  (folder / 'two_pairs.py').write_text(CONFIG)
  workdir = str(folder / 'run')
  return {
      'train': _run('hpe_jax.main', f'--config={folder / "two_pairs.py"}',
                    f'--config.data_dir={tiny_data_dir}', f'--workdir={workdir}'),
      'evaluate': _run('hpe_jax.evaluate', f'--workdir={workdir}', '--num_hypotheses=4',
                       '--umap_neighbors='),
      'predict': _run('hpe_jax.predict', f'--workdir={workdir}', '--format=coco',
                      '--input=docs/examples/coco_keypoints.json',
                      f'--output={folder / "poses.json"}'),
      'summary': _run('hpe_jax.evaluation.summary', f'--workdir={workdir}'),
  }


def test_lines_are_short_and_no_library_warns(console):
  long_lines, warnings = [], []
  for command, (stdout, stderr) in console.items():
    for line in (stdout + stderr).splitlines():
      if len(line) > MAX_LINE:
        long_lines.append((command, line))
      absl = ABSL_WARNING.match(line)
      if (absl and absl.group(1) not in OWN_FILES) or OTHER_WARNING.search(line):
        warnings.append((command, line))
      elif 'was found in the checkpoint' in line:  # Orbax's, on restoring part of the items
        warnings.append((command, line))
  assert not long_lines and not warnings, (long_lines, warnings)


def test_progress_has_no_eta_from_compiling_and_one_line_per_report(console):
  lines = console['train'][1].splitlines()
  assert not [line for line in lines if 'steps_per_sec' in line]
  progress = [i for i, line in enumerate(lines) if PROGRESS.search(line)]
  compiling = [i for i, line in enumerate(lines) if 'Compiling the train step of 2d->3d' in line]
  assert compiling and progress
  after_compile = min(i for i in progress if i > compiling[0])
  assert 'no ETA yet' in lines[after_compile] and not ETA.search(lines[after_compile])
  assert any(ETA.search(lines[i]) for i in progress if i > after_compile)


def test_each_table_once(console):
  everything = ''.join(out + err for out, err in console.values())
  assert everything.count('| Action |') == 1
  assert everything.count('| **Average** |') == 1
  assert '| Action |' in console['summary'][0]


def test_an_interval_that_compiled_gives_no_eta(tmp_path, monkeypatch):
  lines = []
  monkeypatch.setattr(summary_writer.logging, 'info', lambda fmt, *a: lines.append(fmt % a))
  writer = summary_writer.SummaryWriter(str(tmp_path))
  report = summary_writer.ProgressReport(num_train_steps=30, writer=writer, every_secs=0.0)
  report(10)  # after the first call
  jax.jit(lambda x: x * 3 + 1)(1.0)  # a compilation during the next call
  report(20)
  report(25)
  report.close()
  writer.close()
  assert len(lines) == 2 and 'no ETA yet' in lines[0] and 'compiling' in lines[0]
  assert ETA.search(lines[1])
