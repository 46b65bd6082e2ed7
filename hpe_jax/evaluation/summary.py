"""Prints what a finished run left in its workdir: tables, hypothesis numbers, pictures.

  python -m hpe_jax.evaluation.summary --workdir=workdirs/crossmodal_quick

Reads `eval/summary.json`, which `hpe_jax.evaluate` writes (and the pictures of
`hpe_jax.predict`, when it ran); it computes nothing, so it is instant. It is the one
command that prints the tables of an evaluation: training and `hpe_jax.evaluate` log their
means over actions in one line and write the tables to files.
"""

import glob
import json
import os

from absl import app
from absl import flags

from hpe_jax import cli
from hpe_jax import evaluator as evaluator_lib
from hpe_jax import metrics
from hpe_jax.evaluation import hypotheses
from hpe_jax.evaluation import report

PREDICT_PICTURES = ('predict/*.png', 'the example COCO keypoints lifted to 3D')


def _columns(tables):
  """{'2d->3d MPJPE': per-action values, ...} from summary.json's tables, in file order."""
  columns = {}
  for key, table in tables.items():
    name, _, metric = key.rpartition('/')
    if metric in ('mpjpe', 'p_mpjpe'):
      label = f'{name} {"MPJPE" if metric == "mpjpe" else "P-MPJPE"}'
      columns[label] = [float('nan') if v is None else v for v in table['per_action']]
  return columns


def _hypothesis_lines(name, hyp, k):
  """A pair's hypothesis numbers (means over actions) as text; summary.json files written
  before the calibration, reprojection and symmetry numbers give only the first line."""
  get = lambda key, decimals=1: '-' if hyp.get(key) is None else f'{hyp[key]:.{decimals}f}'
  lines = [f'  {name}: posterior mean {get("posterior_mean")} mm, best of {k} '
           f'{get("best_of_k")} mm (oracle), mean of {k} {get("mean_of_k")} mm']
  if 'calibration_error' in hyp:
    lines += [f'      mean / median of the {k} samples {get("sample_mean")} / '
              f'{get("sample_median")} mm, calibration error {get("calibration_error", 3)}',
              f'      reprojection {get("reprojection_samples")} px (posterior mean '
              f'{get("reprojection_posterior_mean")}, ground truth {get("reprojection_gt")}), '
              f'bone symmetry {get("symmetry_samples")} mm (posterior mean '
              f'{get("symmetry_posterior_mean")}, ground truth {get("symmetry_gt")})']
  if all(hyp.get(key) is not None for key in ('spread_mm', 'mean_of_k', 'calibration_error')):
    lines.append('      ' + hypotheses.spread_caption(hyp['spread_mm'], hyp['mean_of_k'],
                                                      hyp['calibration_error']))
  return lines


def _display(path):
  """A path relative to the working directory when it lies below it, else absolute."""
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


class SummaryError(ValueError):
  """A summary.json that is not JSON, or not the summary `hpe_jax.evaluate` writes."""


def summary_text(workdir, eval_dir=None):
  """The summary of `eval_dir` (default: WORKDIR/eval) as text; raises FileNotFoundError if
  the workdir was never evaluated, SummaryError if its summary.json cannot be read."""
  workdir = os.path.abspath(workdir)
  path = os.path.join(eval_dir or os.path.join(workdir, report.EVAL_DIR), report.SUMMARY_FILE)
  again = f'run python -m hpe_jax.evaluate --workdir={workdir}'
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No {path}: {again}')
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
    return _text(workdir, data)
  except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
    raise SummaryError(f'{path} is not a summary of hpe_jax.evaluate ({type(e).__name__}: '
                       f'{e}); {again}.') from None


def _text(workdir, data):
  """The summary's lines from summary.json's contents."""
  out = [data['header'], '', metrics.format_action_table(_columns(data['tables']),
                                                         data['actions']), '']
  if evaluator_lib.jitter_line(data['tables']):
    out += [evaluator_lib.jitter_line(data['tables']), '']
  k = data['num_hypotheses']
  if data['hypotheses']:
    used, total = data.get('num_hypothesis_poses') or data['num_poses'], data['num_poses']
    poses = f'{used} poses' if used == total else f'{used} of the {total} poses'
    origin = ('along the camera rays' if data.get('sampler') == 'rays' else
              'from the posterior')
    out.append(f'Several hypotheses per pose ({k} samples {origin}, {poses}), '
               'mean over actions:')
    for name, hyp in data['hypotheses'].items():
      out.extend(_hypothesis_lines(name, hyp, k))
    out.append('')
  out.append('Pictures:')
  pictures = [(p['path'], p['what']) for p in data['pictures']]
  pattern, what = PREDICT_PICTURES
  pictures += [(p, what) for p in sorted(glob.glob(os.path.join(workdir, pattern)))]
  for picture, note in pictures:
    out.append(f'  {_display(picture)}\n      {note}')
  return '\n'.join(out)


def main(argv):
  cli.no_positional_arguments(argv)
  with cli.errors_as_lines(data=(SummaryError,)):  # and OSError: no summary.json
    print(summary_text(flags.FLAGS.workdir), flush=True)


if __name__ == '__main__':
  # Defined here, not on import: the library function must not claim --workdir for the
  # evaluate and predict commands that share this process's flags in tests.
  flags.DEFINE_string('workdir', None, 'Training workdir that was evaluated.')
  flags.mark_flag_as_required('workdir')
  app.run(main, flags_parser=cli.parse_flags)
