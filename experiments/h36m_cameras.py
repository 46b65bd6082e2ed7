"""The packaged lifter with a studio's cameras: the test people of each motion capture build
filmed again by Human3.6M's four calibrated cameras (about 1.5 m high and 5 m from the
centre, aimed slightly down, a 1000 px square image and a 47-degree field of view) instead of
the build's virtual ones, lifted with each camera's intrinsics and exact 2D.

  python -m experiments.h36m_cameras --data_dir=data --datasets=mocap/cmu,mocap/bandai

Each test take, seen by its first virtual camera (every `stride`-th frame), is put back in its
world, turned z-up, its lowest joint on the floor and its mean pelvis at the centre of the
cameras' floor positions, and projected by the four cameras of Human3.6M's test subject S9
(even takes) or S11 (odd takes): with the pinhole model, and with the calibration's lens
distortion as Human3.6M's own 2D holds it (the lifter takes pinhole keypoints). Frames with a
joint outside an image or nearer than 0.5 m to a camera are left out of that camera. Each
take's view is one sequence, so a temporal lifter (`--workdir`, with `--stride=1`) sees its
track.

Prints a JSON line per build and view: the poses, and MPJPE / P-MPJPE / N-MPJPE (mm, mean
over the kinds of motion as the evaluation reports them); the studio's lines hold the virtual
line's frames seen by four cameras, less those out of view.
"""

import dataclasses
import json

from absl import app
from absl import flags
import numpy as np

from experiments import runs
import hpe_jax
from hpe_jax import input_pipeline
from hpe_jax import metrics
from tfds_h36m import cameras

_DATA_DIR = flags.DEFINE_string('data_dir', 'data', 'TFDS data dir of the builds.')
_DATASETS = flags.DEFINE_list('datasets', ['mocap/cmu', 'mocap/bandai'], 'Test people.')
_STRIDE = flags.DEFINE_integer('stride', 5, 'Every stride-th frame of a take (50 fps).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A lifter workdir or packaged lifter folder '
                               '(hpe_jax/lifters/cmu_temporal: give --stride=1); none: cmu.')

_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_MIN_DEPTH_MM = 500.0
_FIELDS = ('pose_2d', 'pose_3d', 'root_3d', 'action', 'subject_number', 'subaction', 'frame',
           'camera_index', 'focal_length', 'center', 'camera_rotation', 'camera_centre')


def takes_in_world(arrays, stride):
  """[(virtual view's rows, world poses (T, 17, 3) mm, z up)] of each take's first camera."""
  out = []
  first = arrays['camera_index'] == 0
  take_ids = runs.take_ids(arrays)
  for take in np.unique(take_ids[first]):
    rows = np.flatnonzero(first & (take_ids == take))
    rows = rows[np.argsort(arrays['frame'][rows])][::stride]
    pose_cam = arrays['pose_3d'][rows] + arrays['root_3d'][rows, None]
    rotation, centre = arrays['camera_rotation'][rows], arrays['camera_centre'][rows]
    world = np.einsum('nij,nkj->nki', rotation, pose_cam) + centre[:, None]
    out.append((rows, world @ _Y_UP_TO_Z_UP.T))
  return out


def place_in_studio(world_z_up, studio):
  """The take moved so its lowest joint is on the floor (z = 0) and its mean pelvis above
  the centre of the studio cameras' floor positions, mm."""
  target = np.mean([camera.translation[:2] for camera in studio], axis=0)
  shift = np.append(target - world_z_up[:, 0, :2].mean(axis=0), -world_z_up[..., 2].min())
  return world_z_up + shift


def film(world, camera):
  """(root-relative camera-frame poses (T, 17, 3) mm, {view: (keypoints (T, 17, 2) px, in
  view (T,))}) of a placed take seen by a Human3.6M camera, pinhole and with its distortion."""
  pose_cam = cameras.world_to_camera(world, camera)
  pinhole = dataclasses.replace(camera, radial_distortion=np.zeros(3),
                                tangential_distortion=np.zeros(2))
  in_front = (pose_cam[..., 2] > _MIN_DEPTH_MM).all(-1)
  views = {}
  for name, model in (('h36m_pinhole', pinhole), ('h36m_distorted', camera)):
    pose_2d = cameras.project(pose_cam, model)
    views[name] = pose_2d, in_front & ((pose_2d >= 0) & (pose_2d <= camera.image_size)).all(
        (-2, -1))
  return pose_cam - pose_cam[:, :1], views


def _scores(lifter, view):
  lifted = lifter.lift(view['pose_2d'].astype(np.float32), focal_length=view['focal_length'],
                       center=view['center'], keypoint_noise=0.0,
                       sequence_ids=view['sequence'])
  errors = metrics.pose_errors(lifted.poses_mm, view['pose_3d'])
  return {name: round(float(metrics.action_table(np.asarray(errors[name]), view['action'])
                            ['mean_over_actions']), 1)
          for name in ('mpjpe', 'p_mpjpe', 'n_mpjpe')}


def measure(lifter, arrays, stride):
  """{view: its poses and scores}: the virtual view, Human3.6M's cameras pinhole and
  distorted."""
  studios = {number: cameras.load_cameras(f'S{number}') for number in (9, 11)}
  takes = takes_in_world(arrays, stride)
  rows = np.concatenate([take_rows for take_rows, _ in takes])
  keys = ('pose_2d', 'pose_3d', 'focal_length', 'center', 'action', 'sequence')
  views = {'virtual': {key: arrays[key][rows] for key in keys[:-1]}}
  views['virtual']['sequence'] = np.repeat(np.arange(len(takes)),
                                           [len(take_rows) for take_rows, _ in takes])
  chunks = {'h36m_pinhole': [], 'h36m_distorted': []}
  for index, (take_rows, world) in enumerate(takes):
    studio = studios[(9, 11)[index % 2]]
    world = place_in_studio(world, studio)
    for camera in studio:
      pose_3d, filmed = film(world, camera)
      for name, (pose_2d, keep) in filmed.items():
        count = int(keep.sum())
        chunks[name].append((pose_2d[keep], pose_3d[keep],
                             np.tile(camera.focal_length, (count, 1)),
                             np.tile(camera.center, (count, 1)),
                             arrays['action'][take_rows[keep]], np.full(count, len(chunks[name]))))
  for name, parts in chunks.items():
    views[name] = {key: np.concatenate([part[i] for part in parts]) for i, key in enumerate(keys)}
  return {name: dict(poses=len(view['pose_2d']), **_scores(lifter, view))
          for name, view in views.items()}


def main(argv):
  del argv
  lifter = hpe_jax.load_lifter(_WORKDIR.value)
  for name in _DATASETS.value:
    builder = input_pipeline.get_builder(name, _DATA_DIR.value)
    arrays = input_pipeline.load_pose_arrays(builder, 'test', fields=_FIELDS)
    for view, scores in measure(lifter, arrays, _STRIDE.value).items():
      print(json.dumps({'tested_on': name, 'view': view, **scores}), flush=True)


if __name__ == '__main__':
  app.run(main)
