"""Reproduces the packaged lifters (hpe_jax/lifters/, docs/model_card.md) from the BVH files:
builds mocap/cmu, trains configs/mocap.py (the graph network, 10 epochs) and its temporal
form configs/mocap.py:window=27 (6 epochs) on it, and packages their last checkpoints as
`cmu` and `cmu_temporal` (not the best by test error: the test people choose nothing). With
--bandai_dir, also builds CMU and Bandai Namco as one set (experiments.combined_build),
trains configs/mocap.py on it for 4 epochs and packages `cmu_bandai` (non-commercial).

  python -m experiments.pretrained_lifter --cmu_dir=/path/to/cmu_bvh --data_dir=data
  python -m experiments.pretrained_lifter --cmu_dir=/path/to/cmu_bvh \
      --bandai_dir=/path/to/bandai/dataset --data_dir=data

Each step is the command a user types (`python -m tfds_h36m.prepare`, `hpe_jax.main`,
`hpe_jax.export --format=package --licence=...`); a rerun reuses the datasets and resumes
the trainings.
"""

import os

from absl import app
from absl import flags

from experiments import combined_build
from experiments import runs
from hpe_jax.inference import packaged

_CMU_DIR = flags.DEFINE_string('cmu_dir', None, 'The CMU BVH files (cgspeed), searched '
                               'recursively.', required=True)
_BANDAI_DIR = flags.DEFINE_string('bandai_dir', None, "Bandai Namco's dataset/ folder: also "
                                  'makes `cmu_bandai` (CC BY-NC 4.0, non-commercial).')
_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir for the builds.')
_LINK_DIR = flags.DEFINE_string('link_dir', 'data/cmu_bandai_bvh', 'With --bandai_dir: the '
                                'folder of links that mocap/cmu_bandai is built from.')
_WORKDIR_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/mocap', 'Where they train '
                                    '(cmu_graph, cmu_temporal_27, cmu_bandai_graph).')
_OUTPUT_ROOT = flags.DEFINE_string('output_root', packaged.ROOT,
                                   'Where the packaged lifter folders go.')

CMU_LICENCE = ('free for research and commercial use (trained on the CMU Graphics Lab Motion '
               'Capture Database)')
# (packaged name, workdir name, Run, licence) of each shipped lifter trained on mocap/cmu.
LIFTERS = (('cmu', 'cmu_graph', runs.Run('packaged lifter', 'configs/mocap.py'), CMU_LICENCE),
           ('cmu_temporal', 'cmu_temporal_27',
            runs.Run('packaged temporal lifter', 'configs/mocap.py:window=27', num_epochs=6,
                     eval_every_epochs=2), CMU_LICENCE))


def package(name, workdir_name, run, licence):
  """Trains `run` (or resumes it) and packages its last checkpoint as lifter `name`."""
  workdir = os.path.join(_WORKDIR_ROOT.value, workdir_name)
  output = os.path.join(_OUTPUT_ROOT.value, name)
  runs.train(run, workdir, _DATA_DIR.value)
  runs.run_command(['-m', 'hpe_jax.export', f'--workdir={workdir}', '--format=package',
                    '--checkpoint=last', f'--output={output}', f'--licence={licence}'],
                   workdir + '.log')
  print(f'Wrote {output}; log: {workdir}.log')


def main(argv):
  del argv
  os.makedirs(_WORKDIR_ROOT.value, exist_ok=True)
  runs.run_command(['-m', 'tfds_h36m.prepare', '--dataset=mocap/cmu',
                    f'--manual_dir={_CMU_DIR.value}', f'--data_dir={_DATA_DIR.value}'],
                   os.path.join(_WORKDIR_ROOT.value, 'prepare.log'))
  for lifter in LIFTERS:
    package(*lifter)
  if _BANDAI_DIR.value:
    combined_build.build(_CMU_DIR.value, _BANDAI_DIR.value, _LINK_DIR.value, _DATA_DIR.value)
    package('cmu_bandai', combined_build.WORKDIR, combined_build.run(), combined_build.LICENCE)


if __name__ == '__main__':
  app.run(main)
