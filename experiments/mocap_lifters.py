"""Lifters on real motion: unseen people of the CMU and Bandai Namco motion capture, each
lifter tested on its own dataset's test people and on the other dataset's, with exact 2D and
with detector-like 2D noise: the packaged config (the graph network, a fifth of its training
poses' legs bent, `augment.leg_bend`) and, with the legs as captured, the MLP at full length,
both networks at equal short lengths, the MLP without flips, both trained on Bandai Namco
(the graph network also with bent legs: its actors never sit), and the temporal lifter.

  python -m tfds_h36m.prepare --dataset=mocap/cmu --manual_dir=CMU_BVH --data_dir=data
  python -m tfds_h36m.prepare --dataset=mocap/bandai --manual_dir=BANDAI --data_dir=data
  python -m experiments.mocap_lifters --data_dir=data --out=docs/experiments/mocap_lifters.md
"""

import os

from absl import app
from absl import flags

from experiments import runs

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding both datasets.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/mocap', 'Where the runs train.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/mocap_lifters.md', 'The report written.')
_EPOCHS = flags.DEFINE_integer('epochs', 2, 'Training epochs of the comparison runs.')
_BANDAI_EPOCHS = flags.DEFINE_integer('bandai_epochs', 10, 'Training epochs of the graph '
                                      'network on Bandai Namco (the packaged config the other '
                                      'way round; about 6 min an epoch on 2 cores).')
_BEND_EPOCHS = flags.DEFINE_integer('bend_epochs', 6, 'Training epochs of the graph network '
                                    'on Bandai Namco with bent legs (augment.leg_bend).')
_TEMPORAL_EPOCHS = flags.DEFINE_integer('temporal_epochs', 6, 'Training epochs of the temporal '
                                        'lifter (`configs/mocap.py:window=27`, the packaged '
                                        'one for tracks; about 3x slower than the MLP).')
_NOISE = flags.DEFINE_float('noise', 0.01, 'Detector-like 2D noise of the noisy evaluations, '
                            'a fraction of the pose size (`hpe_jax.pose_noise`).')

DATASETS = {'mocap/cmu': 'CMU', 'mocap/bandai': 'Bandai Namco'}


def _runs(epochs, bandai_epochs, bend_epochs, temporal_epochs):
  """(workdir name, Run) of every lifter, in the order they run; every one configs/mocap.py."""
  short = dict(num_epochs=epochs, eval_every_epochs=epochs)
  mlp = {'model.pose_net': 'mlp'}
  upright = {'augment.leg_bend': 0.0}  # the comparison runs: legs as captured
  bandai_graph = lambda name, epochs, **options: runs.Run(
      name, 'configs/mocap.py', dataset='mocap/bandai', num_epochs=epochs,
      eval_every_epochs=max(1, epochs // 2), **options)
  return (
      ('cmu_graph', runs.Run('graph, flips, legs bent (packaged)', 'configs/mocap.py')),
      ('cmu_mlp', runs.Run('MLP, flips', 'configs/mocap.py', **mlp, **upright)),
      ('cmu_graph_short', runs.Run('graph, flips', 'configs/mocap.py', **short, **upright)),
      ('cmu_mlp_short', runs.Run('MLP, flips', 'configs/mocap.py', **short, **mlp, **upright)),
      ('cmu_mlp_noflip', runs.Run('MLP, no flips', 'configs/mocap.py', **short, **mlp,
                                  **upright, **{'augment.flip_prob': 0.0, 'flip_test': False})),
      ('bandai_graph', bandai_graph('graph, flips', bandai_epochs, **upright)),
      ('bandai_graph_bend', bandai_graph('graph, flips, legs bent', bend_epochs)),
      ('bandai_mlp', runs.Run('MLP, flips', 'configs/mocap.py', **short, **mlp, **upright,
                              dataset='mocap/bandai')),
      ('cmu_temporal_27', runs.Run('temporal, 27 frames, flips (packaged for tracks)',
                                   'configs/mocap.py:window=27', num_epochs=temporal_epochs,
                                   eval_every_epochs=2)),
  )


def _row(run, trained_on, summary, epochs, test, noise=''):
  jitter = summary['tables'].get('2d->3d/jitter')
  return [run.name, DATASETS[trained_on], str(epochs), DATASETS[test] + noise,
          *(f'{error:.1f}' for error in runs.pose_errors(summary)),
          f'{jitter["mean_over_actions"]:.2f}' if jitter else '-']


def main(argv):
  del argv
  rows, commands = [], []
  for name, run in _runs(_EPOCHS.value, _BANDAI_EPOCHS.value, _BEND_EPOCHS.value,
                         _TEMPORAL_EPOCHS.value):
    workdir = os.path.join(_ROOT.value, name)
    trained_on = run.overrides.get('dataset', 'mocap/cmu')
    runs.train(run, workdir, _DATA_DIR.value)
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    epochs = run.overrides.get('num_epochs', 10)
    rows.append(_row(run, trained_on, runs.evaluate(workdir), epochs, trained_on))
    if name != 'cmu_mlp_noflip':
      noisy = runs.evaluate(workdir, pose_2d_noise=_NOISE.value)
      rows.append(_row(run, trained_on, noisy, epochs, trained_on, f', 2D noise {_NOISE.value:g}'))
      other = next(d for d in DATASETS if d != trained_on)
      rows.append(_row(run, trained_on, runs.evaluate(workdir, dataset=other,
                                                      data_dir=_DATA_DIR.value),
                       epochs, other))
  table = runs.markdown_table(['lifter', 'trained on', 'epochs', 'tested on (unseen people)',
                               'MPJPE', 'P-MPJPE', 'N-MPJPE', 'jitter'], rows)
  runs.write_report(
      _OUT.value, 'Lifters on real motion capture',
      f'python -m experiments.mocap_lifters --data_dir={_DATA_DIR.value} '
      f'--workdir_root={_ROOT.value} --epochs={_EPOCHS.value} '
      f'--bandai_epochs={_BANDAI_EPOCHS.value} --bend_epochs={_BEND_EPOCHS.value} '
      f'--temporal_epochs={_TEMPORAL_EPOCHS.value} '
      f'--noise={_NOISE.value:g}',
      commands, table,
      'mm, mean over the kinds of motion (`tfds_h36m/mocap/motions.py`), 17 joints; jitter: '
      'mean joint acceleration (mm / frame^2 at 50 fps). Test people: CMU subjects 8, 11 and 14, '
      'Bandai Namco actors bandai2 and bandai4 (`tfds_h36m/mocap`), never seen in training; '
      'each take filmed by its own virtual cameras, with its own body proportions. 2D noise: '
      'Gaussian, its std the given fraction of each pose\'s 2D size (`hpe_jax.pose_noise`).')


if __name__ == '__main__':
  app.run(main)
