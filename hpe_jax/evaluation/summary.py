"""Prints what a finished run left in its workdir: tables, hypothesis numbers, pictures.

  python -m hpe_jax.evaluation.summary --workdir=workdirs/crossmodal_quick

Reads the files `hpe_jax.evaluate` (and `hpe_jax.predict`, when it ran) wrote;
it computes nothing, so it is instant.
"""

import csv
import glob
import os
import re

from absl import app
from absl import flags

from hpe_jax.evaluation import report

# What each picture shows, by file-name pattern (in eval/ unless the pattern has a folder).
PICTURES = (
    ('*_predictions.png', '25 test poses: prediction, ground truth, per-joint errors (mm)'),
    ('*_errors.png', 'per-pose MPJPE by action'),
    ('latent_*_action.png', 'UMAP of the latent space, coloured by action'),
    ('latent_*_camera.png', 'UMAP of the latent space, coloured by camera'),
    ('*_spread.png', 'per-joint spread of the sampled hypotheses'),
    ('images.png', 'test crops, reconstructions, images generated from 2D/3D poses'),
    ('../predict/*.png', 'the example COCO keypoints lifted to 3D'),
)


def hypothesis_lines(eval_dir):
  """'rgb->3d: posterior mean 80.1 mm, best of 50 ...' from every {pair}_hypotheses.csv
  (K from the first line of the matching .md: '{pair}: K samples per pose ...')."""
  lines = []
  for path in sorted(glob.glob(os.path.join(eval_dir, '*_hypotheses.csv'))):
    with open(path, newline='') as f:
      rows = {row['action']: row for row in csv.DictReader(f)}
    with open(path[:-len('.csv')] + '.md') as f:
      k = re.search(r': (\d+) samples per pose', f.readline()).group(1)
    average = rows['Average']
    pair = os.path.basename(path)[:-len('_hypotheses.csv')].replace('_to_', '->')
    lines.append(f'  {pair}: posterior mean {float(average["posterior_mean_mpjpe_mm"]):.1f} mm, '
                 f'best of {k} {float(average["best_of_k_mpjpe_mm"]):.1f} mm (oracle), '
                 f'mean of {k} {float(average["mean_of_k_mpjpe_mm"]):.1f} mm')
  return lines


def summary_text(workdir):
  """The summary as text; raises FileNotFoundError if the workdir was never evaluated."""
  eval_dir = os.path.join(os.path.abspath(workdir), report.EVAL_DIR)
  results = os.path.join(eval_dir, 'results.md')
  if not os.path.isfile(results):
    raise FileNotFoundError(f'No {results}: run python -m hpe_jax.evaluate --workdir={workdir}')
  with open(results) as f:
    out = [f.read().rstrip(), '']
  hypotheses = hypothesis_lines(eval_dir)
  if hypotheses:
    out += ['Several hypotheses per pose (K samples from the posterior), mean over actions:']
    out += hypotheses + ['']
  out.append('Pictures:')
  for pattern, what in PICTURES:
    for path in sorted(glob.glob(os.path.join(eval_dir, pattern))):
      out.append(f'  {os.path.normpath(path)}\n      {what}')
  return '\n'.join(out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  try:
    print(summary_text(flags.FLAGS.workdir), flush=True)
  except FileNotFoundError as e:
    raise SystemExit(f'Error: {e}') from e


if __name__ == '__main__':
  # Defined here, not on import: the library function must not claim --workdir for the
  # evaluate and predict commands that share this process's flags in tests.
  flags.DEFINE_string('workdir', None, 'Training workdir that was evaluated.')
  flags.mark_flag_as_required('workdir')
  app.run(main)
