"""Accuracy of `load_lifter`'s engines on a split of the workdir's dataset: the MPJPE of each
engine's poses and their distance to the 'jax' engine's, per joint (mm).

Lifts the split's 2D poses (px, as the evaluation feeds them) with each engine in one
`lift` call (which runs chunks of 1024 poses), in frame order with a sequence id per row
(a temporal lifter's windows stay within their sequence). Prints one JSON line per engine.

  python -m benchmarks.lift_engines --workdir=workdirs/weak_supervision/supervised --data_dir=data
"""

import json

from absl import app
from absl import flags
import numpy as np

import hpe_jax
from hpe_jax import sequences
from hpe_jax.evaluation import report
from hpe_jax.inference import lifter as lifter_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained workdir with a 2D->3D pair.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'last' or a step number.")
_DATA_DIR = flags.DEFINE_string('data_dir', None, "Where the workdir's dataset is built.")
_SPLIT = flags.DEFINE_string('split', 'test', 'The split to lift.')
flags.mark_flags_as_required(['workdir', 'data_dir'])


def main(argv):
  del argv
  lifters = {engine: hpe_jax.load_lifter(_WORKDIR.value, _CHECKPOINT.value, engine=engine)
             for engine in lifter_lib.ENGINES}
  config = lifters['jax'].config
  config.data_dir = _DATA_DIR.value
  arrays = report.EvalData(config, lifters['jax'].stats, _SPLIT.value).pose_arrays()
  arrays = {k: v[sequences.frame_order(arrays)] for k, v in arrays.items()}
  keypoints = arrays['pose_2d'].astype(np.float32)
  sequence_ids = sequences.bounds(arrays)[:, 0]  # each sequence's first row
  poses = {engine: lifter.lift(keypoints, sequence_ids=sequence_ids).poses_mm
           for engine, lifter in lifters.items()}
  for engine, p in poses.items():
    off = np.linalg.norm(p - poses['jax'], axis=-1)[:, 1:]  # non-root joints
    print(json.dumps({
        'benchmark': 'lift_engines', 'engine': engine, 'split': _SPLIT.value,
        'poses': len(p), 'window': lifters['jax'].window,
        'mpjpe_mm': round(float(np.linalg.norm(p - arrays['pose_3d'], axis=-1).mean()), 3),
        'from_jax_mean_mm': round(float(off.mean()), 4),
        'from_jax_p99_mm': round(float(np.percentile(off, 99)), 4),
        'from_jax_max_mm': round(float(off.max()), 4)}), flush=True)


if __name__ == '__main__':
  app.run(main)
