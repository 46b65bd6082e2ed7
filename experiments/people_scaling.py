"""Does the lifter's error on unseen people fall with more training people? The packaged
config (`configs/mocap.py`, the graph network) trained on subsets of mocap/cmu's training
people for the same number of steps as the whole set's `--epochs` (each subset's epochs
scaled by its share of the poses, `train_exclude_subjects` leaving the others out), each
evaluated on the same test people (CMU subjects 8, 11 and 14).

  python -m experiments.people_scaling --data_dir=data --out=docs/experiments/people_scaling.md

The subsets (CMU subject numbers) hold 1, 3, 5 (two disjoint halves) and all 10 training
people; subject 13 alone has more poses than the first half, so people and poses part ways.
The legs stay as captured (`augment.leg_bend=0`).
"""

import os

from absl import app
from absl import flags
import numpy as np

from configs import mocap
from experiments import runs
from hpe_jax import input_pipeline
from tfds_h36m import skeleton

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir holding mocap/cmu.')
_ROOT = flags.DEFINE_string('workdir_root', 'workdirs/people', 'Where the runs train.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/people_scaling.md', 'The report written.')
_EPOCHS = flags.DEFINE_integer('epochs', 2, 'Epochs of the run on every training person; '
                               'the subsets train for as many steps.')

# (workdir name, the training people kept).
SUBSETS = (('all', (1, 2, 3, 5, 6, 7, 9, 10, 12, 13)),
           ('half_a', (1, 3, 5, 7, 10)),
           ('half_b', (2, 6, 9, 12, 13)),
           ('three', (1, 7, 10)),
           ('subject_13', (13,)))


def subset_runs(poses_per_subject, epochs):
  """[(name, people, training poses, Run)] with epochs that give each subset about the
  steps of `epochs` over every training person."""
  everyone = sorted(poses_per_subject)
  total = sum(poses_per_subject.values())
  out = []
  for name, people in SUBSETS:
    poses = sum(poses_per_subject[s] for s in people)
    overrides = {'num_epochs': max(1, round(epochs * total / poses)), 'augment.leg_bend': 0.0}
    overrides['eval_every_epochs'] = overrides['num_epochs']
    excluded = tuple(s for s in everyone if s not in people)
    if excluded:
      overrides['train_exclude_subjects'] = ','.join(map(str, excluded))  # a tuple's literal
    out.append((name, people, poses, runs.Run(name, 'configs/mocap.py', **overrides)))
  return out


def trend(people, poses, errors):
  """A sentence: least-squares lines of each error ({'MPJPE': (runs,) mm, ...}) against log2
  of the runs' training poses and of their people (the change per doubling) with their
  correlations."""
  parts = []
  for name, error in errors.items():
    per = [(np.polyfit(x, error, 1)[0], np.corrcoef(x, error)[0, 1])
           for x in (np.log2(poses), np.log2(people))]
    parts.append(f'{name} {per[0][0]:+.1f} mm per doubling of the poses (r = {per[0][1]:.2f}), '
                 f'{per[1][0]:+.1f} per doubling of the people (r = {per[1][1]:.2f})')
  return 'Least-squares lines through the rows: ' + '; '.join(parts) + '.'


def main(argv):
  del argv
  builder = input_pipeline.get_builder('mocap/cmu', _DATA_DIR.value)
  train = input_pipeline.load_pose_arrays(builder, 'train',
                                          fields=('subject_number', 'camera_index'))
  numbers, counts = np.unique(train['subject_number'], return_counts=True)
  frame_share = np.mean(train['camera_index'] == 0)  # 1 / the cameras of every take
  batch_size = mocap.get_config().batch_size
  table, commands, counts_of, errors = [], [], [], {'MPJPE': [], 'P-MPJPE': []}
  for name, people, poses, run in subset_runs(dict(zip(numbers.tolist(), counts.tolist())),
                                             _EPOCHS.value):
    workdir = os.path.join(_ROOT.value, name)
    runs.train(run, workdir, _DATA_DIR.value)
    summary = runs.evaluate(workdir)
    commands.append(run.shell_command(workdir, _DATA_DIR.value))
    scores = [round(error, 1) for error in runs.pose_errors(summary)]
    counts_of.append((len(people), poses))
    errors['MPJPE'].append(scores[0])
    errors['P-MPJPE'].append(scores[1])
    minutes = poses * frame_share / skeleton.FPS / 60
    table.append([', '.join(map(str, people)), len(people), f'{poses:,}', f'{minutes:.1f}',
                  summary['step'], *(f'{score:.1f}' for score in scores)])
  header = ['training people (CMU subjects)', 'people', 'poses', 'motion (min)', 'steps',
            'MPJPE', 'P-MPJPE', 'N-MPJPE']
  note = ('mm on CMU subjects 8, 11 and 14, mean over the kinds of motion; motion: the '
          f"length of the people's takes at {skeleton.FPS} fps (each take filmed by the same "
          'number of cameras). Every run is the packaged config with only its training people '
          f'changed, for about the same number of steps (batches of {batch_size}). '
          f'{trend(*np.transpose(counts_of), errors)}')
  command = ('python -m experiments.people_scaling '
             f'--data_dir={_DATA_DIR.value} --workdir_root={_ROOT.value} --epochs={_EPOCHS.value}')
  runs.write_report(_OUT.value, 'Training people against error on unseen people', command,
                    commands, runs.markdown_table(header, table), note)


if __name__ == '__main__':
  app.run(main)
