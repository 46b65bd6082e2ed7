"""How many poses of each motion capture build sit, crouch or kneel: the share whose two
thighs both turn more than 60 (and 75) degrees from the torso's line (pelvis to thorax,
pointing down). A lifter meets such legs in the wild; a release whose actors only stand,
walk and fight holds none, and `augment.leg_bend` makes them (`hpe_jax.pose_bodies`).

  python -m experiments.leg_flexion --data_dir=data --datasets=mocap/cmu,mocap/bandai

Prints a JSON line per build and split: its poses and the shares, overall and per kind of
motion. `--figure=leg_bend.png` also draws a training pose of the first build, standing,
and bent as `augment.leg_bend` bends legs.
"""

import json

from absl import app
from absl import flags
import numpy as np

from hpe_jax import input_pipeline
from hpe_jax import pose_bodies
from hpe_jax.evaluation import figures
from tfds_h36m import skeleton
from tfds_h36m.mocap import motions

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir of the builds.')
_DATASETS = flags.DEFINE_list('datasets', ['mocap/cmu', 'mocap/bandai'], 'Builds to measure.')
_FIGURE = flags.DEFINE_string('figure', None, 'A PNG of a training pose and its bent legs.')
THRESHOLDS_DEG = (60, 75)
# (title, added flexion in degrees: (right, left) x (hip, knee)) of the figure's bends.
BENDS = (('as captured', ((0, 0), (0, 0))), ('hips 90, knees 90', ((90, 90), (90, 90))),
         ('hips 100, knees 120', ((100, 120), (100, 120))),
         ('right hip 40 and knee 80, left knee 100', ((40, 80), (0, 100))))


def flexed_shares(pose_3d, action):
  """{threshold: share of poses with both thighs flexed beyond it}, overall and per kind."""
  both = pose_bodies.hip_flexion_deg(pose_3d).min(axis=-1)
  shares = {}
  for threshold in THRESHOLDS_DEG:
    flexed = both > threshold
    shares[f'both_thighs_over_{threshold}_deg'] = round(float(flexed.mean()), 4)
    shares[f'per_kind_over_{threshold}_deg'] = {
        motions.ACTIONS[a]: round(float(flexed[action == a].mean()), 4)
        for a in np.unique(action)}
  return shares


def _side_on(pose_mm):
  """A camera-frame pose (17, 3) about its root, turned about the camera's y axis (down) to
  face +x: the figure sees it from its side, where hips and knees bend."""
  joint = lambda name: pose_mm[skeleton.JOINT_NAMES.index(name)]
  front = np.cross(joint('LHip') - joint('RHip'), joint('Thorax') - joint('Pelvis'))
  angle = np.arctan2(front[2], front[0])  # turning by it brings the front onto +x
  cos, sin = np.cos(angle), np.sin(angle)
  turn = np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
  return (pose_mm - pose_mm[:1]) @ turn.T


def bend_figure(pose_3d, path):
  """Draws the most upright of 1,000 seeded training poses (thighs nearest the torso's
  line), seen from its side, with each of BENDS."""
  sample = pose_3d[np.random.default_rng(0).choice(len(pose_3d), 1000, replace=False)]
  upright = _side_on(sample[np.argmin(pose_bodies.hip_flexion_deg(sample).max(axis=-1))])
  bent = pose_bodies.bend_legs(np.repeat(upright[None], len(BENDS), 0),
                               np.radians([flexion for _, flexion in BENDS]))
  figures.save_png(figures.pose_panels(np.asarray(bent), [title for title, _ in BENDS],
                                       what='training pose'), path)


def main(argv):
  del argv
  for index, name in enumerate(_DATASETS.value):
    builder = input_pipeline.get_builder(name, _DATA_DIR.value)
    for split in ('train', 'test'):
      arrays = input_pipeline.load_pose_arrays(builder, split, fields=('pose_3d', 'action'))
      print(json.dumps({'dataset': name, 'split': split, 'poses': len(arrays['pose_3d']),
                        **flexed_shares(arrays['pose_3d'], arrays['action'])}))
      if _FIGURE.value and index == 0 and split == 'train':
        bend_figure(arrays['pose_3d'], _FIGURE.value)


if __name__ == '__main__':
  app.run(main)
