"""Accuracy and smoothness of each pose network at equal epochs: the MLP, the skeleton
graph network and the temporal convolutions over 27, 81 and 243 frames (centred, and
causal at 27), every one the lifting VAE with its 2D encoder swapped, on the synthetic
stand-in's every-frame build (h36m_synthetic/poses: the temporal nets need 50 fps
sequences), test split, evaluated by `python -m hpe_jax.evaluate` over whole sequences.

  python -m experiments.pose_nets --data_dir=data --out=docs/experiments/pose_nets.md
"""

import os

from absl import app
from absl import flags

from experiments import runs

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding the dataset.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/pose_nets', 'Where the runs train.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/pose_nets.md', 'The report written.')
_EPOCHS = flags.DEFINE_integer('epochs', 5, 'Training epochs of every run.')

DATASET = 'h36m_synthetic/poses'


def _runs(epochs):
  """(workdir name, Run) of every network, in the order they run."""
  common = dict(num_epochs=epochs, eval_every_epochs=epochs)
  lifting = dict(common, dataset=DATASET)
  return (
      ('mlp', runs.Run('MLP (512 wide)', 'configs/lifting.py:quick', **lifting)),
      # The temporal runs' 3D decoders are 256 wide (their `model.hidden`), as this MLP.
      ('mlp_256', runs.Run('MLP (256 wide)', 'configs/lifting.py:quick', **lifting,
                           **{'model.hidden': 256})),
      ('temporal_27', runs.Run('temporal, 27 frames', 'configs/temporal.py:quick', **common)),
      ('temporal_81', runs.Run('temporal, 81 frames', 'configs/temporal.py:quick,window=81',
                               **common)),
      ('graph', runs.Run('graph (128 per joint)', 'configs/lifting.py:quick',
                         **lifting, **{'model.pose_net': 'graph'})),
      ('temporal_243', runs.Run('temporal, 243 frames', 'configs/temporal.py:quick,window=243',
                                **common)),
      ('temporal_27_causal', runs.Run('temporal, 27 frames, causal', 'configs/temporal.py:quick',
                                      **common, **{'model.causal': True})),
  )


def main(argv):
  del argv
  rows, commands = [], []
  for name, run in _runs(_EPOCHS.value):
    workdir = os.path.join(_ROOT.value, name)
    seconds = runs.train(run, workdir, _DATA_DIR.value)
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    summary = runs.evaluate(workdir)
    mean = lambda key: runs.mean_over_actions(summary, key)
    rows.append([run.name, f'{mean("2d->3d/mpjpe"):.1f}', f'{mean("2d->3d/p_mpjpe"):.1f}',
                 f'{mean("2d->3d/jitter"):.2f}', f'{mean("jitter_gt"):.2f}',
                 f'{seconds / 60:.1f} min'])
  table = runs.markdown_table(['2D encoder', 'MPJPE', 'P-MPJPE', 'jitter', 'ground-truth jitter',
                               'training'], rows)
  runs.write_report(
      _OUT.value, 'Pose networks at equal epochs',
      f'python -m experiments.pose_nets --data_dir={_DATA_DIR.value} --epochs={_EPOCHS.value}',
      commands, table,
      f'{DATASET}, test split (S9, S11: 120,000 poses), mm, mean over actions, '
      f'{_EPOCHS.value} epochs each of 300,000 training poses, on 2 CPU cores. Jitter: mean '
      'joint acceleration, mm / frame^2 at 50 fps, over every frame with both neighbours in '
      'its sequence. Synthetic numbers, not Human3.6M numbers.')


if __name__ == '__main__':
  app.run(main)
