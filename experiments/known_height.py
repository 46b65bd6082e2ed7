"""What knowing a person's height gives: the packaged lifter on the test people of each motion
capture build, guessing their size as it must from one view, and told each body's height
(`Lifter.lift(height_mm=...)`), exactly or a few percent off.

  python -m experiments.known_height --data_dir=data --datasets=mocap/cmu,mocap/bandai

A test take's body has one height: the median over its poses of their ankle-to-head-top
chain (`body_height.chain_mm`) over `body_height.CHAIN_PER_HEIGHT`. `--max_poses` test poses
(a fixed random subset), with exact 2D and with detector-like noise (`pose_noise`, Gaussian,
1% of the pose's size), lifted with their cameras' intrinsics and the matching
`keypoint_noise`. Prints a JSON line per build, noise and height: MPJPE / P-MPJPE / N-MPJPE
(mm, mean over the kinds of motion as the evaluation reports them) and the error of the
root's distance from the camera (mean over poses, mm and % of the distance).
"""

import json

from absl import app
from absl import flags
import jax
import numpy as np

from experiments import runs
import hpe_jax
from hpe_jax import input_pipeline
from hpe_jax import metrics
from hpe_jax import pose_noise
from hpe_jax.inference import body_height

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir of the builds.')
_DATASETS = flags.DEFINE_list('datasets', ['mocap/cmu', 'mocap/bandai'], 'Test people.')
_MAX_POSES = flags.DEFINE_integer('max_poses', 20000, 'Test poses per build (seed 0).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A lifter workdir or packaged lifter folder; '
                               'none: the packaged cmu.')
_HEIGHT_ERRORS = (-0.05, 0.05)  # a height given this fraction off, as well as exactly
_NOISE = 0.01
_FIELDS = ('pose_2d', 'pose_3d', 'root_3d', 'action', 'subject_number', 'subaction',
           'focal_length', 'center')


def take_heights_mm(arrays):
  """(N,) each pose's body height, mm: its take's median chain over CHAIN_PER_HEIGHT."""
  take = runs.take_ids(arrays)
  chain = body_height.chain_mm(arrays['pose_3d'])
  heights = np.empty(len(chain))
  for value in np.unique(take):
    rows = take == value
    heights[rows] = np.median(chain[rows]) / body_height.CHAIN_PER_HEIGHT
  return heights


def subset(arrays, max_poses):
  """A fixed random subset (seed 0) of `max_poses` of the arrays' rows, in order."""
  n = len(arrays['pose_3d'])
  rows = np.sort(np.random.default_rng(0).choice(n, min(n, max_poses), replace=False))
  return {key: np.asarray(value)[rows] for key, value in arrays.items()}


def scores(lifted, arrays):
  """MPJPE / P-MPJPE / N-MPJPE (mean over the kinds of motion) and the root's distance error."""
  errors = metrics.pose_errors(lifted.poses_mm, arrays['pose_3d'])
  out = {name: round(float(metrics.action_table(np.asarray(errors[name]), arrays['action'])
                           ['mean_over_actions']), 1)
         for name in ('mpjpe', 'p_mpjpe', 'n_mpjpe')}
  distance = np.linalg.norm(arrays['root_3d'], axis=-1)
  miss = np.abs(np.linalg.norm(lifted.root_mm, axis=-1) - distance)
  out.update(root_distance_error_mm=round(float(miss.mean()), 1),
             root_distance_error_pct=round(float(100 * (miss / distance).mean()), 2))
  return out


def measure(lifter, arrays):
  """[(noise, height given, scores)] on the arrays: no height, the true one, and the true one
  off by each of _HEIGHT_ERRORS, with exact and noisy 2D."""
  heights = take_heights_mm(arrays)
  out = []
  for noise in (0.0, _NOISE):
    pose_2d = arrays['pose_2d'].astype(np.float32)
    if noise:
      pose_2d = np.asarray(pose_noise.corrupt(jax.random.PRNGKey(0), pose_2d, noise, 0.0,
                                              variable=False))
    for label, given in [('none', None), ('true', heights)] + [
        (f'{error:+.0%}', heights * (1 + error)) for error in _HEIGHT_ERRORS]:
      lifted = lifter.lift(pose_2d, focal_length=arrays['focal_length'],
                           center=arrays['center'], keypoint_noise=noise, height_mm=given)
      out.append((noise, label, scores(lifted, arrays)))
  return out


def main(argv):
  del argv
  lifter = hpe_jax.load_lifter(_WORKDIR.value)
  for name in _DATASETS.value:
    builder = input_pipeline.get_builder(name, _DATA_DIR.value)
    arrays = subset(input_pipeline.load_pose_arrays(builder, 'test', fields=_FIELDS),
                    _MAX_POSES.value)
    for noise, height, result in measure(lifter, arrays):
      print(json.dumps({'tested_on': name, 'pose_2d_noise': noise, 'height_given': height,
                        **result}), flush=True)


if __name__ == '__main__':
  app.run(main)
