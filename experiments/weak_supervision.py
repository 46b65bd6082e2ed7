"""Lifting without 3D labels against lifting with them, at equal epochs on the synthetic
default: which weak losses are on, where the root comes from, P1, P2 and N-MPJPE.

The weak runs are configs/weakly_supervised.py:quick (20 epochs) with single losses
switched off by config overrides; the supervised run is configs/lifting.py:quick. Test
split, mm, mean over actions (17 joints, root included).

  python -m experiments.weak_supervision --data_dir=data --out=docs/experiments/weak_supervision.md
"""

import os

from absl import app
from absl import flags
from absl import logging

from experiments import runs

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding the dataset.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/weak_supervision', 'Where the runs train.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/weak_supervision.md', 'The report written.')

WEAK = 'configs/weakly_supervised.py:quick'
# name, config, the losses on, the root, overrides
RUNS = (
    ('supervised', 'configs/lifting.py:quick', '3D labels (MSE)', '-', {}),
    ('weak_known_root', WEAK + ',root=known',
     'reprojection, multi-view (extrinsics), bone symmetry + consistency', 'known', {}),
    ('weak', WEAK, 'reprojection, multi-view (extrinsics), bone symmetry + consistency',
     'fit', {}),
    ('weak_rigid', WEAK, 'reprojection, multi-view (rigid), bone symmetry + consistency',
     'fit', {'weak.multiview_kind': 'rigid'}),
    ('weak_no_bones', WEAK, 'reprojection, multi-view (extrinsics)', 'fit',
     {'weak.bone_symmetry': 0.0, 'weak.bone_consistency': 0.0}),
    ('weak_single_view', WEAK, 'reprojection, bone symmetry + consistency', 'fit',
     {'weak.multiview': 0.0}),
)


def main(argv):
  del argv
  rows, commands = [], []
  for name, config, losses, root, overrides in RUNS:
    run = runs.Run(name, config, **overrides)
    workdir = os.path.join(_ROOT.value, name)
    seconds = runs.train(run, workdir, _DATA_DIR.value)
    summary = runs.evaluate(workdir)
    rows.append([name, losses, root] + [f'{error:.1f}' for error in runs.pose_errors(summary)]
                + [f'{seconds / 60:.1f} min'])
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    logging.info('%s: %s', name, rows[-1])
  table = runs.markdown_table(['run', 'losses on', 'root', 'P1 (MPJPE)', 'P2 (P-MPJPE)',
                               'N-MPJPE', 'training wall time'], rows)
  runs.write_report(
      _OUT.value, 'Lifting without 3D labels (weak supervision)',
      f'python -m experiments.weak_supervision --data_dir={_DATA_DIR.value}', commands, table,
      '20 epochs each; test split, mm, mean over actions. Root "known": the records\' '
      'root_3d places each answer for the reprojection and the multi-view placement, which '
      'leaks the person\'s metric size; "fit": the least-squares root from the 2D pose, no '
      '3D information at all (the metric scale then comes only from the extrinsic '
      'multi-view term; without it P1 is in an arbitrary scale and N-MPJPE is the fair '
      'number). Wall times on the 2-core CPU, with other jobs running at times.')


if __name__ == '__main__':
  app.run(main)
