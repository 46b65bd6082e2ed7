"""Readers of the in-the-wild test sets users hold: MPI-INF-3DHP's test set and 3DPW.

TensorFlow-free: the `mpi_inf_3dhp` and `pw3d` builders turn what these return
into examples. Layout facts: ../shared/FORMATS.md. Everything is mapped to the
Human3.6M 17-joint order (tfds_h36m/skeleton.py); units are mm and px.
"""

import dataclasses
import pathlib

import numpy as np

from tfds_h36m import skeleton
from tfds_h36m.safe_pickle import DataFormatError
from tfds_h36m.safe_pickle import load_pickle
from tfds_h36m.sources import MissingDataError

NUM_JOINTS = skeleton.NUM_JOINTS

# MPI-INF-3DHP test joints (FORMATS.md) for each H36M-17 joint. All 17 have one:
# MPI neck -> H36M Thorax, MPI head -> H36M Neck (nose), MPI head_top -> H36M Head.
MPI_TO_H36M = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
MPI_ACTIVITIES = ('Standing/Walking', 'Exercising', 'Sitting', 'Reaching/Crouching',
                  'On the floor', 'Sports', 'Miscellaneous')  # activity_annotation 1..7
MPI_SEQUENCES = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')
MPI_FIELDS = ('annot2', 'annot3', 'univ_annot3', 'valid_frame', 'activity_annotation')

# Test-set cameras, from mpi_inf_3dhp_test_set/README.txt (mm on the sensor, converted to px
# as the literature does): studio TS1-TS4, 2048 x 2048, f 7.32506 mm on a 10 mm sensor,
# centre offset (-0.0322884, 0.0929296) mm, no distortion used; outdoor TS5-TS6, 1920 x
# 1080, f 8.770747185 mm on a 10 x 5.625 mm sensor, pixel aspect 0.993236423, centre offset
# (-0.104908645, 0.104899704) mm, and the distortion below.
MPI_CAMERAS = {
    'studio': {'focal_length': (1500.172288, 1500.172288),
               'center': (1017.38733568, 1043.03198208),
               'radial_distortion': (0.0, 0.0, 0.0), 'tangential_distortion': (0.0, 0.0),
               'image_size': (2048, 2048)},
    'outdoor': {'focal_length': (1683.98345952, 1672.59370772),
                'center': (939.85754016, 560.14074317),
                'radial_distortion': (-0.276859611, 0.131125256, -0.049318332),
                'tangential_distortion': (-0.000360494, -0.001149441),
                'image_size': (1920, 1080)},
}

# 3DPW: OpenPose COCO-18 (2D) and SMPL-24 (3D) joints for each H36M-17 joint, -1 where the
# layout has none that means the same thing. Neither has Spine, Neck (nose-level) or Head
# (top); COCO-18 has no pelvis; SMPL's pelvis (joint 0, the root) and hips sit elsewhere
# than Human3.6M's but are kept, as the root must be.
COCO18_TO_H36M = (-1, 8, 9, 10, 11, 12, 13, -1, 1, -1, -1, 5, 6, 7, 2, 3, 4)
SMPL24_TO_H36M = (0, 2, 5, 8, 1, 4, 7, -1, 12, -1, -1, 16, 18, 20, 17, 19, 21)
PW3D_SPLITS = ('train', 'validation', 'test')
PW3D_IMAGE_SIZE = (1080, 1920)  # (width, height): 3DPW's portrait phone frames


def camera_feature(focal_length, center, radial=(0.0, 0.0, 0.0), tangential=(0.0, 0.0),
                   image_size=(0, 0)):
  """The `camera` feature of the h36m datasets: intrinsics in px, (width, height)."""
  return {'focal_length': np.asarray(focal_length, np.float32),
          'center': np.asarray(center, np.float32),
          'radial_distortion': np.asarray(radial, np.float32),
          'tangential_distortion': np.asarray(tangential, np.float32),
          'image_size': np.asarray(image_size, np.int32)}


def mpi_camera(sequence):
  """The `camera` feature of an MPI-INF-3DHP test sequence ('TS1'..'TS6')."""
  cam = MPI_CAMERAS['outdoor' if sequence in ('TS5', 'TS6') else 'studio']
  return camera_feature(cam['focal_length'], cam['center'], cam['radial_distortion'],
                        cam['tangential_distortion'], cam['image_size'])


def map_joints(points, mapping):
  """(..., J, C) points in another layout -> ((..., 17, C) H36M order, (17,) bool valid);
  joints without a counterpart are 0."""
  points = np.asarray(points)
  index = np.asarray(mapping)
  valid = index >= 0
  out = np.zeros(points.shape[:-2] + (NUM_JOINTS, points.shape[-1]), points.dtype)
  out[..., valid, :] = points[..., index[valid], :]
  return out, valid


@dataclasses.dataclass
class MpiSequence:
  """One test sequence, valid frames only; H36M-17 order, camera frame."""
  name: str
  frames: np.ndarray  # (N,) indices into the sequence's frames
  pose_2d: np.ndarray  # (N, 17, 2) px
  pose_3d: np.ndarray  # (N, 17, 3) mm, annot3
  pose_3d_univ: np.ndarray  # (N, 17, 3) mm, univ_annot3
  activity: np.ndarray  # (N,) 0-based index into MPI_ACTIVITIES
  num_invalid: int  # frames skipped: valid_frame == 0


def _read_mat(path):
  """{field: array in MATLAB's axis order} of an annot_data.mat, v7.3 (HDF5) or older."""
  # Imported here: only an MPI-INF-3DHP build needs them (0.6 s on every other import).
  import h5py  # pylint: disable=g-import-not-at-top
  import scipy.io  # pylint: disable=g-import-not-at-top
  try:
    if h5py.is_hdf5(path):
      with h5py.File(path, 'r') as f:
        missing = [k for k in MPI_FIELDS if k not in f]
        data = {k: np.asarray(f[k]).T for k in MPI_FIELDS if k in f}  # HDF5 reverses axes
    else:
      mat = scipy.io.loadmat(path)
      missing = [k for k in MPI_FIELDS if k not in mat]
      data = {k: mat[k] for k in MPI_FIELDS if k in mat}
  except FileNotFoundError as e:
    raise MissingDataError(f'{path} is missing') from e
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise DataFormatError(f'{path}: not a readable .mat file (truncated or corrupted?): {e}') from e
  if missing:
    raise DataFormatError(f'{path}: has no {missing}; expected the fields {list(MPI_FIELDS)}')
  return data


def _frames_array(array, num_frames, tail, field, path):
  """MATLAB (frames, 1, 17, C) or (frames, 17, C), or their transpose -> (frames, 17, C)."""
  for candidate in (array, array.T):
    squeezed = candidate.reshape([n for n in candidate.shape if n != 1] or [1])
    if squeezed.shape == (num_frames,) + tail:
      return squeezed.astype(np.float64)
  raise DataFormatError(f'{path}: {field} has shape {array.shape}, expected {num_frames} frames '
                        f'of {tail}')


def mpi_paths(manual_dir):
  """{'TS1': path, ...} of the six annot_data.mat; MissingDataError naming the first missing."""
  root = pathlib.Path(manual_dir) / 'mpi_inf_3dhp_test_set'
  paths = {name: root / name / 'annot_data.mat' for name in MPI_SEQUENCES}
  for name, path in paths.items():
    if not path.is_file():
      raise MissingDataError(f'{path} is missing (expected mpi_inf_3dhp_test_set/{name}/'
                             'annot_data.mat for TS1-TS6)')
  return paths


def read_mpi_sequence(path, name):
  """The valid frames of one TS*/annot_data.mat as an MpiSequence."""
  path = pathlib.Path(path)
  data = _read_mat(str(path))
  valid = np.asarray(data['valid_frame']).ravel().astype(bool)
  num = len(valid)
  arrays = {k: _frames_array(np.asarray(data[k]), num, (17, c), k, path)
            for k, c in (('annot2', 2), ('annot3', 3), ('univ_annot3', 3))}
  activity = np.asarray(data['activity_annotation']).ravel().astype(np.int64)
  if len(activity) != num:
    raise DataFormatError(f'{path}: activity_annotation has {len(activity)} frames, '
                          f'valid_frame {num}')
  frames = np.flatnonzero(valid)
  bad = [a for a in np.unique(activity[frames]) if not 1 <= a <= len(MPI_ACTIVITIES)]
  if bad:
    raise DataFormatError(f'{path}: activity_annotation values {bad} outside 1..7')
  mapped = {k: map_joints(v[frames], MPI_TO_H36M)[0] for k, v in arrays.items()}
  return MpiSequence(name, frames, mapped['annot2'], mapped['annot3'], mapped['univ_annot3'],
                     activity[frames] - 1, int(num - len(frames)))


@dataclasses.dataclass
class Pw3dActor:
  """One actor of one 3DPW sequence, frames with a valid camera pose; H36M-17 order."""
  sequence: str
  actor: int
  frames: np.ndarray  # (N,) indices into the sequence's frames
  image_frames: np.ndarray  # (N,) img_frame_ids of those frames
  pose_2d: np.ndarray  # (N, 17, 2) px, 0 where missing
  confidence_2d: np.ndarray  # (N, 17) OpenPose confidence, 0 where missing
  joints_cam: np.ndarray  # (N, 17, 3) camera frame, mm, 0 where missing
  joint_valid: np.ndarray  # (17,) bool: the 3D joint has a SMPL counterpart
  intrinsics: np.ndarray  # (3, 3) px
  num_invalid: int  # frames skipped: campose_valid == 0


def world_to_camera(points_world, cam_poses):
  """(T, J, 3) world points, (T, 4, 4) world-to-camera poses -> (T, J, 3) camera points
  (X_cam = R X_world + t, in the units of the points and t: metres for 3DPW)."""
  rotation, translation = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
  return np.einsum('tij,tkj->tki', rotation, points_world) + translation[:, None]


def _field(data, key, path):
  if key not in data:
    raise DataFormatError(f'{path}: has no {key!r}; its keys: {sorted(data)}')
  return data[key]


def _pw3d_arrays(data, path):
  """The fields of a sequence dict as arrays, shapes checked."""
  cam_poses = np.asarray(_field(data, 'cam_poses', path), np.float64)
  num = len(cam_poses)
  out = {'cam_poses': cam_poses,
         'intrinsics': np.asarray(_field(data, 'cam_intrinsics', path), np.float64),
         'img_frame_ids': np.asarray(_field(data, 'img_frame_ids', path)).ravel()}
  per_actor = {'poses2d': (num, 3, 18), 'jointPositions': (num, 24, 3), 'campose_valid': (num,)}
  for key, shape in per_actor.items():
    try:
      out[key] = [np.asarray(a, np.float64).reshape(shape) for a in _field(data, key, path)]
    except (ValueError, TypeError) as e:
      raise DataFormatError(f'{path}: {key} is not one {shape} array per actor: {e}') from e
  if cam_poses.shape[1:] != (4, 4) or out['intrinsics'].shape != (3, 3):
    raise DataFormatError(f'{path}: cam_poses {cam_poses.shape} / cam_intrinsics '
                          f'{out["intrinsics"].shape}, expected (T, 4, 4) / (3, 3)')
  if len(out['img_frame_ids']) != num:
    raise DataFormatError(f'{path}: img_frame_ids has {len(out["img_frame_ids"])} frames, '
                          f'cam_poses {num}')
  return out


def read_pw3d_sequence(path):
  """One sequenceFiles/<split>/<name>.pkl as a list of Pw3dActor (restricted unpickler)."""
  path = pathlib.Path(path)
  data = load_pickle(path, encoding='latin1')
  if not isinstance(data, dict):
    raise DataFormatError(f'{path}: holds a {type(data).__name__}, expected a dict')
  arrays = _pw3d_arrays(data, path)
  name = str(data.get('sequence', path.stem))
  actors = []
  for actor, valid in enumerate(arrays['campose_valid']):
    frames = np.flatnonzero(valid > 0)
    poses2d = arrays['poses2d'][actor][frames].transpose(0, 2, 1)  # (N, 18, 3): x, y, c
    pose_2d, _ = map_joints(poses2d[..., :2], COCO18_TO_H36M)
    confidence, _ = map_joints(poses2d[..., 2:], COCO18_TO_H36M)
    joints_cam_m = world_to_camera(arrays['jointPositions'][actor][frames],
                                   arrays['cam_poses'][frames])
    joints_cam, joint_valid = map_joints(joints_cam_m * 1000.0, SMPL24_TO_H36M)
    actors.append(Pw3dActor(name, actor, frames, arrays['img_frame_ids'][frames], pose_2d,
                            confidence[..., 0], joints_cam, joint_valid, arrays['intrinsics'],
                            int(len(valid) - len(frames))))
  return actors


def pw3d_files(manual_dir, split):
  """The sorted sequenceFiles/<split>/*.pkl; MissingDataError naming the folder if none."""
  folder = pathlib.Path(manual_dir) / 'sequenceFiles' / split
  files = sorted(folder.glob('*.pkl'))
  if not files:
    raise MissingDataError(f'{folder} has no .pkl files (expected 3DPW\'s '
                           f'sequenceFiles/{split}/<sequence>.pkl)')
  return files
