"""Human3.6M camera model: calibration, world-to-camera transform, distorted projection.

Units: world and camera coordinates in millimetres, pixels for image coordinates.
"""

import dataclasses
import functools
import importlib.resources
import json

import numpy as np

from tfds_h36m import skeleton


@dataclasses.dataclass(frozen=True)
class Camera:
  """One calibrated camera of one subject's session."""
  camera_id: str
  focal_length: np.ndarray  # (2,) px
  center: np.ndarray  # (2,) px
  radial_distortion: np.ndarray  # (3,) k1, k2, k3
  tangential_distortion: np.ndarray  # (2,) p1, p2
  image_size: tuple  # (width, height) px
  rotation: np.ndarray  # (3, 3) camera-to-world rotation R
  translation: np.ndarray  # (3,) camera centre in world mm

  def intrinsics(self):
    """The camera's intrinsics as the `camera` feature of the datasets."""
    return {
        'focal_length': self.focal_length.astype(np.float32),
        'center': self.center.astype(np.float32),
        'radial_distortion': self.radial_distortion.astype(np.float32),
        'tangential_distortion': self.tangential_distortion.astype(np.float32),
        'image_size': np.asarray(self.image_size, np.int32),
    }

  def with_extrinsics(self):
    """`intrinsics` and the camera's pose: the `camera` feature of datasets whose cameras
    differ per sequence (`features.camera_features(extrinsics=True)`)."""
    return dict(self.intrinsics(), rotation=self.rotation.astype(np.float32),
                centre=self.translation.astype(np.float32))


def quaternion_to_rotation(q):
  """Rotation matrix of a unit quaternion (w, x, y, z)."""
  w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
  return np.array([
      [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
  ])


@functools.lru_cache(maxsize=None)
def _calibration():
  text = importlib.resources.files('tfds_h36m').joinpath(
      'h36m_cameras.json').read_text()
  return json.loads(text)


def load_camera(subject, camera_id):
  """The published calibration of `camera_id` in `subject`'s session."""
  calib = _calibration()
  if subject not in calib['extrinsics']:
    raise KeyError(f'No calibration for subject {subject!r}; known: '
                   f'{sorted(calib["extrinsics"])}')
  intr = calib['intrinsics'][camera_id]
  extr = calib['extrinsics'][subject][camera_id]
  return Camera(
      camera_id=camera_id,
      focal_length=np.array(intr['focal_length'], np.float64),
      center=np.array(intr['center'], np.float64),
      radial_distortion=np.array(intr['radial_distortion'], np.float64),
      tangential_distortion=np.array(intr['tangential_distortion'], np.float64),
      image_size=(int(intr['res_w']), int(intr['res_h'])),
      rotation=quaternion_to_rotation(extr['orientation']),
      translation=np.array(extr['translation'], np.float64),
  )


@functools.lru_cache(maxsize=None)
def intrinsics_by_index():
  """{focal_length (4, 2) px, center (4, 2) px, radial_distortion (4, 3),
  tangential_distortion (4, 2)} (float64), row i of camera `skeleton.CAMERA_IDS[i]`.

  h36m_cameras.json holds one set of intrinsics per camera, shared by every subject's
  session (only the extrinsics differ), so a camera's index alone selects them.
  """
  cams = load_cameras(skeleton.TRAIN_SUBJECTS[0])
  keys = ('focal_length', 'center', 'radial_distortion', 'tangential_distortion')
  return {k: np.stack([getattr(c, k) for c in cams]) for k in keys}


@functools.lru_cache(maxsize=None)
def extrinsics_by_number():
  """{rotation (S, 4, 3, 3) camera-to-world, centre (S, 4, 3) mm, known (S, 4) bool}: row
  [n, i] is camera `skeleton.CAMERA_IDS[i]` of subject 'S<n>' (identity and 0 where the
  calibration has no such subject), for per-example lookups on an accelerator."""
  subjects = _calibration()['extrinsics']
  size = 1 + max(skeleton.subject_number(s) for s in subjects)
  rotation = np.tile(np.eye(3), (size, len(skeleton.CAMERA_IDS), 1, 1))
  centre = np.zeros((size, len(skeleton.CAMERA_IDS), 3))
  known = np.zeros((size, len(skeleton.CAMERA_IDS)), bool)
  for subject in subjects:
    n = skeleton.subject_number(subject)
    for i, camera in enumerate(load_cameras(subject)):
      rotation[n, i], centre[n, i], known[n, i] = camera.rotation, camera.translation, True
  return {'rotation': rotation, 'centre': centre, 'known': known}


def load_cameras(subject):
  """All four cameras of a subject, in the standard order."""
  return [load_camera(subject, cid) for cid in skeleton.CAMERA_IDS]


def world_to_camera(points_world, camera):
  """X_cam = R^T (X_world - t), for points (..., 3) in mm."""
  return (np.asarray(points_world, np.float64) - camera.translation) @ camera.rotation


def camera_to_world(points_cam, camera):
  """Inverse of `world_to_camera`: X_world = R X_cam + t."""
  return np.asarray(points_cam, np.float64) @ camera.rotation.T + camera.translation


def project(points_cam, camera):
  """Projects camera-frame points (..., 3) in mm to pixels (..., 2).

  The dataset's own model: normalised coordinates clipped to [-1, 1], radial
  distortion (k1, k2, k3) and tangential distortion (p1, p2).
  """
  points_cam = np.asarray(points_cam, np.float64)
  u = np.clip(points_cam[..., :2] / points_cam[..., 2:3], -1.0, 1.0)
  r2 = np.sum(u * u, axis=-1, keepdims=True)
  k1, k2, k3 = camera.radial_distortion
  p = camera.tangential_distortion
  radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
  tangential = np.sum(p * u, axis=-1, keepdims=True)
  u_distorted = u * (radial + tangential) + p * r2
  return camera.focal_length * u_distorted + camera.center
