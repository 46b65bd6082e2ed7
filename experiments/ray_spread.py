"""Hypotheses along the camera rays (`hpe_jax.ray_spread`) against each model's own samples,
on the workdirs of `experiments.latent_grid`: the single answer, best-of-K, calibration,
the depth spread at the end joints and the samples' reprojection and bone symmetry.

For each workdir: `python -m hpe_jax.fit_spread` (one training per training subject, in
WORKDIR/spread_folds), then `python -m hpe_jax.evaluate --sampler=latent` and
`--sampler=rays` on the fixed subset of test poses.

  python -m experiments.ray_spread --workdirs=workdirs/latent_grid/deterministic,\
workdirs/latent_grid/vae_z100_b0.001_constant,workdirs/latent_grid/cvae_z100
"""

import os

from absl import app
from absl import flags
from absl import logging

from experiments import runs

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Trained workdirs with a 2D->3D pair.')
_NUM_HYPOTHESES = flags.DEFINE_integer('num_hypotheses', 200, 'Samples per test pose.')
_MAX_POSES = flags.DEFINE_integer('max_hypothesis_poses', 2000,
                                  'Test poses (the evaluation\'s fixed subset, seed 0).')
_OUT = flags.DEFINE_string('out', 'docs/experiments/ray_spread.md', 'The report written.')
flags.mark_flag_as_required('workdirs')


def _row(workdir, sampler, summary):
  hyp = summary['hypotheses']['2d->3d']
  single, best = hyp['posterior_mean'], hyp['best_of_k']
  end, rest = runs.depth_spread(hyp)
  return [os.path.basename(workdir.rstrip('/')), sampler, f'{single:.1f}', f'{best:.1f}',
          f'{best / single:.2f}', f'{hyp["calibration_error_all_poses"]:.3f}',
          f'{end:.1f} / {rest:.1f}', f'{hyp["reprojection_samples"]:.1f}',
          f'{hyp["symmetry_samples"]:.1f}']


def main(argv):
  del argv
  k, rows = _NUM_HYPOTHESES.value, []
  for workdir in _WORKDIRS.value:
    runs.fit_spread(workdir)
    for sampler in ('latent', 'rays'):
      summary = runs.evaluate(workdir, num_hypotheses=k, max_poses=_MAX_POSES.value,
                              sampler=sampler)
      rows.append(_row(workdir, sampler, summary))
      logging.info('%s', rows[-1])
  table = runs.markdown_table(
      ['workdir', 'sampler', 'single answer', f'best of {k} (oracle)', 'best / single',
       'calibration error', 'depth spread: end / other joints', 'reprojection (px)',
       'bone symmetry'], rows)
  note = (f'Each workdir: `python -m hpe_jax.fit_spread --workdir=...`, then `python -m '
          f'hpe_jax.evaluate --workdir=... --checkpoint=last --num_hypotheses={k} '
          f'--max_hypothesis_poses={_MAX_POSES.value} --sampler=latent|rays`. MPJPE in mm on '
          'that subset of the test split (mean over actions). Single answer: the pose decoded '
          'from the latent mean, for rays moved onto the camera rays of the input 2D pose. '
          'Calibration error over all poses. Depth spread: the samples\' standard deviation '
          'along the camera axis (mm), over the wrists and ankles / the other non-root joints. '
          'Reprojection: of the samples at the true root (px); bone symmetry of the samples (mm).')
  runs.write_report(
      _OUT.value, 'Hypotheses along the camera rays',
      f'python -m experiments.ray_spread --workdirs={",".join(_WORKDIRS.value)} '
      f'--num_hypotheses={k} --max_hypothesis_poses={_MAX_POSES.value}',
      ['# trained by python -m experiments.latent_grid (docs/experiments/latent_grid.md)'],
      table, note)


if __name__ == '__main__':
  app.run(main)
