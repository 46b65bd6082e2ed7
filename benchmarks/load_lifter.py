"""Start-up cost of a trained lifter: `hpe_jax.load_lifter` in a fresh process vs `import jax`.

Times, in fresh Python processes, the wall time from starting the process to the end of
  (a) `python -c "import jax"`, and
  (b) `python -c "import hpe_jax; hpe_jax.load_lifter(WORKDIR)"` (a loaded lifter),
each --repeats times (alternating, after one untimed run of each to warm the file cache),
and lists the tensorflow* / tensorflow_datasets* modules that (b) imported (there should
be none: the lifter needs no TensorFlow). Target: loading a lifter takes at most 3x a bare
`import jax` (median over median). Prints JSON lines: one per timed run, then a summary.

  python -m benchmarks.load_lifter --workdir=/tmp/w_lift [--checkpoint=best] [--repeats=5]

The workdir is a trained one, e.g. written by
  python -m hpe_jax.main --config=configs/lifting.py:tiny --config.data_dir=/tmp/tfds_tiny \\
      --workdir=/tmp/w_lift
"""

import json
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained workdir with a 2D->3D pair.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'last' or a step number.")
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs of each command.')
flags.mark_flag_as_required('workdir')

TARGET_RATIO = 3.0
# Both children end alike: the time at the end, and the TensorFlow modules they imported.
_REPORT = ('import json, sys, time\n'
           'end = time.time()\n'
           "tf = sorted(m for m in sys.modules if m.split('.')[0].startswith('tensorflow'))\n"
           "print(json.dumps({'end': end, 'tf_modules': tf}))\n")


def _commands(workdir, checkpoint):
  load = (f'import hpe_jax\n'
          f'hpe_jax.load_lifter({workdir!r}, checkpoint={checkpoint!r})\n')
  return {'import_jax': 'import jax\n' + _REPORT, 'load_lifter': load + _REPORT}


def _run(code):
  """(seconds from process start to the end of `code`, tensorflow modules it imported)."""
  start = time.time()
  done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        check=False)
  if done.returncode:
    raise SystemExit(f'Child failed ({done.returncode}):\n{done.stderr[-3000:]}')
  report = json.loads(done.stdout.strip().splitlines()[-1])
  return report['end'] - start, report['tf_modules']


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  commands = _commands(_WORKDIR.value, _CHECKPOINT.value)
  for code in commands.values():
    _run(code)  # warm-up: file cache, .pyc files
  seconds = {name: [] for name in commands}
  tf_modules = set()
  for repeat in range(_REPEATS.value):
    for name, code in commands.items():
      elapsed, tf = _run(code)
      seconds[name].append(elapsed)
      if name == 'load_lifter':
        tf_modules.update(tf)
      print(json.dumps({'benchmark': 'load_lifter', 'command': name, 'repeat': repeat,
                        'seconds': round(elapsed, 3), 'tf_modules': len(tf)}), flush=True)
  medians = {name: statistics.median(values) for name, values in seconds.items()}
  ratio = medians['load_lifter'] / medians['import_jax']
  print(json.dumps({
      'benchmark': 'load_lifter', 'summary': True, 'workdir': _WORKDIR.value,
      'checkpoint': _CHECKPOINT.value, 'repeats': _REPEATS.value,
      'import_jax_median_s': round(medians['import_jax'], 3),
      'load_lifter_median_s': round(medians['load_lifter'], 3),
      'ratio': round(ratio, 2), 'target_ratio': TARGET_RATIO,
      'meets_target': ratio <= TARGET_RATIO,
      'tensorflow_imported': bool(tf_modules), 'tf_modules': sorted(tf_modules)}), flush=True)


if __name__ == '__main__':
  app.run(main)
