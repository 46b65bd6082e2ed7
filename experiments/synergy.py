"""Does cross-modal training help a pair? Each pair ending in 3D trained alone for N steps
against the cross-modal set-up in which that pair itself gets N steps (the thesis's
"synergy" question, at equal steps per pair rather than an equal budget).

The cross-modal set-up (`configs/crossmodal.py:quick`, 64 px) takes its five pairs in
turn, one per step, so a run of 5 N steps gives rgb->3d and 2d->3d N steps each; the same
run answers both directions. The single-pair runs use the same batch (64), optimiser and
schedule settings:
  rgb->3d alone: configs/image.py:quick for N steps;
  2d->3d alone:  configs/lifting.py with batch 64 for N steps.
Test split, mm, mean over actions (17 joints, root included).

  python -m experiments.synergy --data_dir=data --epochs=2 --out=docs/experiments/synergy.md
"""

import os

from absl import app
from absl import flags
from absl import logging

from experiments import runs

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding the dataset.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/synergy', 'Where the runs train.')
_EPOCHS = flags.DEFINE_integer('epochs', 2, 'Epochs of each pair alone (N = epochs x 225 '
                               'steps of 64 on the synthetic default); the cross-modal run '
                               'trains 5x as many.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/synergy.md', 'The report written.')


# The set-up the table was measured with (the quick preset of 29 November): 64 px crops of
# the default build, the image decoder 256 channels wide.
IMAGE_SET_UP = {'dataset': 'h36m_synthetic/default', 'image_size': 64,
                'model.image_decoder_channels': 256}


def _runs(epochs):
  single = dict(num_epochs=epochs, eval_every_epochs=epochs)
  return [
      runs.Run('rgb->3d alone', 'configs/image.py:quick', **single, **IMAGE_SET_UP),
      runs.Run('2d->3d alone', 'configs/lifting.py', batch_size=64, **single),
      runs.Run('all five pairs, round robin', 'configs/crossmodal.py:quick',
               num_epochs=5 * epochs, eval_every_epochs=5 * epochs, **IMAGE_SET_UP),
  ]


def _row(run, summary, seconds, steps):
  cells = [run.name]
  for pair in ('rgb->3d', '2d->3d'):
    for metric in ('mpjpe', 'p_mpjpe'):
      key = f'{pair}/{metric}'
      cells.append(f'{runs.mean_over_actions(summary, key):.1f}' if key in summary['tables']
                   else '-')
  cells += [steps, f'{seconds / 60:.1f} min']
  return cells


def main(argv):
  del argv
  rows, commands = [], []
  n = _EPOCHS.value * 225
  for run in _runs(_EPOCHS.value):
    workdir = os.path.join(_ROOT.value, run.name.split()[0].replace('->', '_to_'))
    seconds = runs.train(run, workdir, _DATA_DIR.value)
    summary = runs.evaluate(workdir)
    steps = f'{5 * n} ({n} per pair)' if 'round robin' in run.name else str(n)
    rows.append(_row(run, summary, seconds, steps))
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    logging.info('%s: %s', run.name, rows[-1])
  table = runs.markdown_table(
      ['trained', 'rgb->3d MPJPE', 'rgb->3d P-MPJPE', '2d->3d MPJPE', '2d->3d P-MPJPE',
       'steps', 'training wall time'], rows)
  runs.write_report(
      _OUT.value, 'Cross-modal synergy at equal steps per pair',
      f'python -m experiments.synergy --data_dir={_DATA_DIR.value} --epochs={_EPOCHS.value}',
      commands, table, f'N = {n} steps of 64 examples per pair; test split, mm, mean over '
      'actions. Wall times on the 2-core CPU, with other jobs running at times.')


if __name__ == '__main__':
  app.run(main)
