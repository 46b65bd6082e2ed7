"""Time from process start to the first train step of pose training on a full-size build.

Runs `python -m hpe_jax.main` with the lifting config on a built dataset (the
full-size stand-in `benchmarks/build_poses.py` writes, or your own `h36m/poses`),
`steps_per_call=1` so the first jitted call is one step, and times from the
child's start to the lines it logs: the training poses on the devices, and the
first train call done. The child is killed there. The pose side file is made
current first (its writing time is reported when it had to be written). The
runs share a fresh XLA compilation cache: the first run compiles (a config's
first run on a machine), the others find its programs (every later run, resume
or evaluate). Prints JSON lines.

  python -m benchmarks.first_step --data_dir=/tmp/h36m_bench/tfds [--runs=4]
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_DATA_DIR = flags.DEFINE_string('data_dir', '/tmp/h36m_bench/tfds', 'TFDS data directory.')
_DATASET = flags.DEFINE_string('dataset', 'h36m/poses', 'Built dataset to train on.')
_RUNS = flags.DEFINE_integer('runs', 4, 'Processes to time (the first with a cold cache).')
_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'configs',
                       'lifting.py')
_MARKS = {'poses_on_devices_s': 'training poses,',
          'first_step_s': 'First train call of this run done'}


def _ensure_side_file():
  """Seconds spent writing the side file (0 when it was current), in a child process."""
  code = ('import sys, time; import tensorflow_datasets as tfds; import tfds_h36m.builders; '
          'from tfds_h36m import pose_arrays; b = tfds.builder(sys.argv[1], data_dir=sys.argv[2]); '
          't = time.time(); current = True\n'
          'try: pose_arrays.check(b)\n'
          'except pose_arrays.StaleSideFile: current = False; pose_arrays.write(b)\n'
          'print(0.0 if current else time.time() - t)')
  out = subprocess.run([sys.executable, '-c', code, _DATASET.value, _DATA_DIR.value],
                       check=True, capture_output=True, text=True).stdout
  return float(out.strip().splitlines()[-1])


def _time_run(workdir, cache_dir):
  """{mark: seconds from the child's start} of one training process."""
  command = [sys.executable, '-m', 'hpe_jax.main', f'--config={_CONFIG}',
             f'--config.dataset={_DATASET.value}', f'--config.data_dir={_DATA_DIR.value}',
             '--config.steps_per_call=1', f'--workdir={workdir}']
  start = time.perf_counter()
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir)
  child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
  times, tail = {}, []
  try:
    for line in child.stderr:
      tail = (tail + [line])[-20:]
      for mark, text in _MARKS.items():
        if text in line and mark not in times:
          times[mark] = time.perf_counter() - start
      if len(times) == len(_MARKS):
        break
  finally:
    child.send_signal(signal.SIGKILL)
    child.wait()
  if len(times) != len(_MARKS):
    raise SystemExit('The training process ended before its first step:\n' + ''.join(tail))
  return times


def main(argv):
  del argv
  print(json.dumps({'stage': 'side_file_write', 'seconds': round(_ensure_side_file(), 1)}),
        flush=True)
  runs = []
  cache_dir = tempfile.mkdtemp(prefix='first_step_xla_')
  try:
    for run in range(_RUNS.value):
      workdir = tempfile.mkdtemp(prefix='first_step_')
      try:
        runs.append(_time_run(workdir, cache_dir))
      finally:
        shutil.rmtree(workdir, ignore_errors=True)
      print(json.dumps({'stage': 'run', 'run': run, 'compilation_cache': 'warm' if run else 'cold',
                        **{k: round(v, 2) for k, v in runs[-1].items()}}), flush=True)
  finally:
    shutil.rmtree(cache_dir, ignore_errors=True)
  warm = runs[1:] or runs
  print(json.dumps({
      'stage': 'summary', 'dataset': _DATASET.value, 'warm_runs': len(runs) - 1,
      'cpu_count': os.cpu_count(), 'cold_first_step_s': round(runs[0]['first_step_s'], 2),
      **{f'warm_{k}_median': round(float(np.median([r[k] for r in warm])), 2)
         for k in _MARKS}}), flush=True)


if __name__ == '__main__':
  app.run(main)
