"""Reproduces the packaged lifter (hpe_jax/lifters/cmu, docs/model_card.md) from the CMU BVH
files: builds mocap/cmu, trains configs/mocap.py on it, and packages its last checkpoint (not the
best by test error: the test people choose nothing).

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
_WORKDIR = flags.DEFINE_string('workdir', 'workdirs/mocap/cmu_mlp', 'Where it trains.')
_OUTPUT = flags.DEFINE_string('output', packaged.path_of(packaged.DEFAULT),
                              'The packaged lifter folder written.')


def main(argv):
  del argv
  log = _WORKDIR.value + '.log'
  os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
  runs.run_command(['-m', 'tfds_h36m.prepare', '--dataset=mocap/cmu',
                    f'--manual_dir={_CMU_DIR.value}', f'--data_dir={_DATA_DIR.value}'], log)
  runs.train(runs.Run('packaged lifter', 'configs/mocap.py'), _WORKDIR.value, _DATA_DIR.value)
  runs.run_command(['-m', 'hpe_jax.export', f'--workdir={_WORKDIR.value}', '--format=package',
                    '--checkpoint=last', f'--output={_OUTPUT.value}'], log)
  print(f'Wrote {_OUTPUT.value}; log: {log}')


if __name__ == '__main__':
  app.run(main)
