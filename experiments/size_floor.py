"""What one view cannot tell costs in MPJPE: a lifter that knew each test pose exactly but
not its body's size, and so gave every pose the training bodies' mean size (the sum of the
16 bone lengths), on the test people of each motion capture build. The 2D pose of a body
scaled about the camera is unchanged, so only its proportions hint at its size.

  python -m experiments.size_floor --data_dir=data --datasets=mocap/cmu,mocap/bandai

Prints a JSON line per test set and training set whose mean size is given: the sizes (mm)
and the oracle's MPJPE (mm, mean over the kinds of motion as the evaluation reports it, and
over poses).
"""

import json

from absl import app
from absl import flags
import numpy as np

from hpe_jax import input_pipeline
from hpe_jax import metrics
from hpe_jax import weak_supervision

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir of the builds.')
_DATASETS = flags.DEFINE_list('datasets', ['mocap/cmu', 'mocap/bandai'], 'Builds to measure.')


def body_size_mm(pose_3d):
  """(N,) the sum of each pose's 16 bone lengths, mm."""
  return np.asarray(weak_supervision.bone_lengths(pose_3d)).sum(axis=-1)


def mean_size_oracle(pose_3d, mean_size_mm):
  """(N, 17, 3) each pose scaled to the given body size: the exact pose, its size guessed."""
  return pose_3d * (mean_size_mm / body_size_mm(pose_3d))[:, None, None]


def load(name, data_dir):
  """(the training bodies' mean size in mm, the test split's pose_3d and action arrays)."""
  builder = input_pipeline.get_builder(name, data_dir)
  train = input_pipeline.load_pose_arrays(builder, 'train', fields=('pose_3d',))['pose_3d']
  test = input_pipeline.load_pose_arrays(builder, 'test', fields=('pose_3d', 'action'))
  return float(body_size_mm(train).mean()), test


def measure(test, mean_size_mm):
  """The oracle's MPJPE on `test` (load's arrays) with the given mean body size."""
  pose_3d = test['pose_3d']
  errors = np.asarray(metrics.mpjpe(mean_size_oracle(pose_3d, mean_size_mm), pose_3d))
  table = metrics.action_table(errors, test['action'])
  return {'train_mean_size_mm': round(mean_size_mm, 1),
          'test_mean_size_mm': round(float(body_size_mm(pose_3d).mean()), 1),
          'oracle_mpjpe_mm': round(float(table['mean_over_actions']), 1),
          'oracle_mpjpe_per_pose_mm': round(float(errors.mean()), 1)}


def main(argv):
  del argv
  builds = {name: load(name, _DATA_DIR.value) for name in _DATASETS.value}
  for test_name, (_, test) in builds.items():
    for trained_on, (mean_size, _) in builds.items():
      print(json.dumps({'tested_on': test_name, 'sizes_of': trained_on,
                        **measure(test, mean_size)}))


if __name__ == '__main__':
  app.run(main)
