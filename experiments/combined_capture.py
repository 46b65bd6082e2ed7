"""CMU and Bandai Namco in one training set: does more, and other, motion lower the error on
each dataset's unseen people? Builds `mocap/cmu_bandai` (experiments.combined_build), trains
the packaged config on it for about the packaged lifter's steps, and tests it on mocap/cmu's
and mocap/bandai's test people beside the lifters trained on one dataset
(experiments.mocap_lifters' `cmu_graph`, the packaged run, and `bandai_graph_bend`, trained
and evaluated first by that experiment). The combined run ships as `cmu_bandai`
(experiments.pretrained_lifter), non-commercial.

  python -m experiments.combined_capture --cmu_dir=CMU_BVH --bandai_dir=BANDAI/dataset \
      --data_dir=data --out=docs/experiments/combined_capture.md
"""

import os
import shlex

from absl import app
from absl import flags

from experiments import combined_build
from experiments import runs

_CMU_DIR = flags.DEFINE_string('cmu_dir', None, "CMU's BVH folder (files NN_MM.bvh).",
                               required=True)
_BANDAI_DIR = flags.DEFINE_string('bandai_dir', None, "Bandai Namco's dataset/ folder.",
                                  required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding mocap/cmu and '
                                'mocap/bandai; mocap/cmu_bandai is built there.')
_LINK_DIR = flags.DEFINE_string('link_dir', 'data/cmu_bandai_bvh', 'The folder of links made.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/mocap', "experiments.mocap_lifters' "
                            'runs; the combined run trains there too.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/combined_capture.md', 'The report written.')
_EPOCHS = flags.DEFINE_integer('epochs', 4, 'Training epochs on the combined build.')
_NOISE = flags.DEFINE_float('noise', 0.01, 'Detector-like 2D noise of the noisy evaluations, '
                            'a fraction of the pose size (`hpe_jax.pose_noise`).')

RUNS = (('cmu_graph', 'CMU (packaged `cmu`)'), ('bandai_graph_bend', 'Bandai Namco'),
        (combined_build.WORKDIR, 'CMU and Bandai Namco (packaged `cmu_bandai`)'))


def scores(workdir, dataset, noise):
  """'MPJPE / P-MPJPE / N-MPJPE' (mm, mean over the kinds of motion) on a test set."""
  summary = runs.evaluate(workdir, dataset=dataset, data_dir=_DATA_DIR.value,
                          pose_2d_noise=noise)
  return ' / '.join(f'{error:.1f}' for error in runs.pose_errors(summary))


def main(argv):
  del argv
  counts = combined_build.build(_CMU_DIR.value, _BANDAI_DIR.value, _LINK_DIR.value,
                                _DATA_DIR.value)
  combined = combined_build.run(_EPOCHS.value)
  workdir = os.path.join(_ROOT.value, combined_build.WORKDIR)
  runs.train(combined, workdir, _DATA_DIR.value)
  table = [[trained_on] + [scores(os.path.join(_ROOT.value, name), dataset, noise)
                           for dataset in ('mocap/cmu', 'mocap/bandai')
                           for noise in (None, _NOISE.value)]
           for name, trained_on in RUNS]
  header = ['trained on', 'CMU', f'CMU, 2D noise {_NOISE.value:g}', 'Bandai Namco',
            f'Bandai Namco, 2D noise {_NOISE.value:g}']
  people = ', '.join(f'{person} {n}' for person, n in sorted(counts.items()))
  note = ("MPJPE / P-MPJPE / N-MPJPE in mm on each dataset's test people (CMU subjects 8, 11 "
          "and 14; Bandai Namco's actors 2 and 4), mean over the kinds of motion; 2D noise as "
          "`hpe_jax.pose_noise` draws it, a fraction of each pose's size. The CMU and Bandai "
          "Namco rows are experiments.mocap_lifters' runs of the same config (10 and 6 "
          'epochs). The combined build: `python '
          + shlex.join(combined_build.prepare_command(_LINK_DIR.value, _DATA_DIR.value))
          + f'`; links per person: {people}.')
  command = ('python -m experiments.combined_capture '
             f'--cmu_dir={_CMU_DIR.value} --bandai_dir={_BANDAI_DIR.value} '
             f'--data_dir={_DATA_DIR.value} --workdir_root={_ROOT.value} --epochs={_EPOCHS.value}')
  runs.write_report(_OUT.value, 'One lifter trained on CMU and Bandai Namco', command,
                    [combined.shell_command(workdir, _DATA_DIR.value)],
                    runs.markdown_table(header, table), note)


if __name__ == '__main__':
  app.run(main)
