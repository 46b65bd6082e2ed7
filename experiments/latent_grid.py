"""The thesis's next experiments (section 5.1.2): latent dimension x beta x beta schedule of
the lifting VAE, beside the conditional-prior formulation and the deterministic baseline,
all at equal epochs on the synthetic default, each with K sampled hypotheses.

The grid is a subset of latent {8, 32, 100} x beta {0.001, 0.01, 0.1} x schedule
{constant, linear, cyclical}: every latent x beta with the constant schedule, and the
linear and cyclical schedules at latent 32, beta 0.1 (annealing matters where the KL
weight is large). Per run: the single answer (the pose decoded from the latent mean),
best-of-K (the oracle), their ratio, the mean of K, the calibration error, and the
samples' depth spread at the end joints (wrists, ankles) against the rest.

  python -m experiments.latent_grid --data_dir=data --epochs=20 --num_hypotheses=200 \
      --out=docs/experiments/latent_grid.md
"""

import json
import os

from absl import app
from absl import flags
from absl import logging

from experiments import runs

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding the dataset.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/latent_grid', 'Where the runs train.')
_EPOCHS = flags.DEFINE_integer('epochs', 20, 'Epochs of every run.')
_NUM_HYPOTHESES = flags.DEFINE_integer('num_hypotheses', 200, 'Samples per test pose.')
_MAX_POSES = flags.DEFINE_integer(
    'max_hypothesis_poses', 2000, 'Test poses (a fixed random subset) of the hypothesis '
    'numbers; 0: all. The single-answer MPJPE is over the same subset.')
_ONLY = flags.DEFINE_list('only', [], 'Names of the runs to make (default: all).')
_OUT = flags.DEFINE_string('out', 'docs/experiments/latent_grid.md', 'The report written.')


def _runs(epochs):
  grid = []
  for latent in (8, 32, 100):
    for beta in (0.001, 0.01, 0.1):
      grid.append(runs.Run(f'vae_z{latent}_b{beta}_constant', f'configs/lifting.py:beta={beta}',
                           **{'model.latent_dim': latent}))
  for kind in ('linear', 'cyclical'):
    grid.append(runs.Run(f'vae_z32_b0.1_{kind}', 'configs/lifting.py:beta=0.1',
                         **{'model.latent_dim': 32, 'beta_schedule.kind': kind}))
  grid.append(runs.Run('cvae_z100', 'configs/cvae.py'))
  grid.append(runs.Run('deterministic', 'configs/baseline.py'))
  for run in grid:
    run.overrides.update(num_epochs=epochs, eval_every_epochs=epochs)
  return grid


def _row(run, config, summary, seconds):
  hyp = summary['hypotheses']['2d->3d']
  single, best = hyp['posterior_mean'], hyp['best_of_k']
  end, rest = runs.depth_spread(hyp)
  return [run.name, config['model']['latent_dim'], config['pairs'][0]['beta'],
          config['beta_schedule']['kind'], config['prior']['kind'],
          f'{single:.1f}', f'{hyp["sample_mean"]:.1f}', f'{best:.1f}', f'{best / single:.2f}',
          f'{hyp["mean_of_k"]:.1f}', f'{hyp["calibration_error_all_poses"]:.3f}',
          f'{end:.1f} / {rest:.1f}', f'{seconds:.0f} s']


def main(argv):
  del argv
  rows, commands = [], []
  for run in _runs(_EPOCHS.value):
    if _ONLY.value and run.name not in _ONLY.value:
      continue
    workdir = os.path.join(_ROOT.value, run.name)
    seconds = runs.train(run, workdir, _DATA_DIR.value)
    summary = runs.evaluate(workdir, num_hypotheses=_NUM_HYPOTHESES.value,
                            max_poses=_MAX_POSES.value)
    with open(os.path.join(workdir, 'config.json')) as f:
      config = json.load(f)
    rows.append(_row(run, config, summary, seconds))
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    logging.info('%s', rows[-1])
  k = _NUM_HYPOTHESES.value
  table = runs.markdown_table(
      ['run', 'latent', 'beta', 'schedule', 'prior', 'single answer', f'mean pose of {k}',
       f'best of {k} (oracle)', 'best / single', f'{k} MPJPEs averaged', 'calibration error',
       'depth spread: end / other joints', 'training'], rows)
  note = (f'Each run then `python -m hpe_jax.evaluate --workdir=... --checkpoint=last '
          f'--num_hypotheses={k} --max_hypothesis_poses={_MAX_POSES.value}`. MPJPE in mm on '
          f'that subset of the test split (mean over actions). Single answer: the pose '
          f'decoded from the latent mean; mean pose of {k}: the per-coordinate mean of the '
          f'samples; best of {k}: the sample closest to the ground truth (an oracle); {k} '
          f'MPJPEs averaged: each sample\'s MPJPE, averaged. Depth spread: the samples\' standard '
          'deviation along the camera axis (mm), averaged over the wrists and ankles, and '
          'over the other non-root joints. Training wall times on the 2-core CPU, with other '
          'jobs running at times.')
  runs.write_report(
      _OUT.value, 'Latent dimension, beta and schedules of the lifting VAE',
      f'python -m experiments.latent_grid --data_dir={_DATA_DIR.value} --epochs={_EPOCHS.value} '
      f'--num_hypotheses={k} --max_hypothesis_poses={_MAX_POSES.value}', commands, table, note)


if __name__ == '__main__':
  app.run(main)
