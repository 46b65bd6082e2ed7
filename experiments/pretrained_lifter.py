"""Reproduces the packaged lifters (hpe_jax/lifters/cmu and cmu_temporal, docs/model_card.md)
from the CMU BVH files: builds mocap/cmu, trains configs/mocap.py (the graph network, 10
epochs) and its temporal form configs/mocap.py:window=27 (6 epochs) on it, and packages
their last checkpoints (not the best by test error: the test people choose nothing).

  python -m experiments.pretrained_lifter --cmu_dir=/path/to/cmu_bvh --data_dir=data

Each step is the command a user types (`python -m tfds_h36m.prepare`, `hpe_jax.main`,
`hpe_jax.export --format=package`); a rerun reuses the dataset and resumes the training.
"""

import os

from absl import app
from absl import flags

from experiments import runs
from hpe_jax.inference import packaged

_CMU_DIR = flags.DEFINE_string('cmu_dir', None, 'The CMU BVH files (cgspeed), searched '
                               'recursively.', required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir for mocap/cmu.')
_WORKDIR_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/mocap', 'Where they train '
                                    '(cmu_graph and cmu_temporal_27 in it).')
_OUTPUT_ROOT = flags.DEFINE_string('output_root', packaged.ROOT,
                                   'Where the packaged lifter folders (cmu, cmu_temporal) go.')

# (packaged name, workdir name, Run) of each shipped lifter.
LIFTERS = (('cmu', 'cmu_graph', runs.Run('packaged lifter', 'configs/mocap.py')),
           ('cmu_temporal', 'cmu_temporal_27',
            runs.Run('packaged temporal lifter', 'configs/mocap.py:window=27', num_epochs=6,
                     eval_every_epochs=2)))


def main(argv):
  del argv
  os.makedirs(_WORKDIR_ROOT.value, exist_ok=True)
  runs.run_command(['-m', 'tfds_h36m.prepare', '--dataset=mocap/cmu',
                    f'--manual_dir={_CMU_DIR.value}', f'--data_dir={_DATA_DIR.value}'],
                   os.path.join(_WORKDIR_ROOT.value, 'prepare.log'))
  for name, workdir_name, run in LIFTERS:
    workdir = os.path.join(_WORKDIR_ROOT.value, workdir_name)
    output = os.path.join(_OUTPUT_ROOT.value, name)
    runs.train(run, workdir, _DATA_DIR.value)
    runs.run_command(['-m', 'hpe_jax.export', f'--workdir={workdir}', '--format=package',
                      '--checkpoint=last', f'--output={output}'], workdir + '.log')
    print(f'Wrote {output}; log: {workdir}.log')


if __name__ == '__main__':
  app.run(main)
