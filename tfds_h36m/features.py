"""The feature schema shared by every config of `h36m` and `h36m_synthetic`, and its statistics."""

import io

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from tfds_h36m import cameras
from tfds_h36m import safe_pickle
from tfds_h36m import skeleton

NUM_JOINTS = skeleton.NUM_JOINTS


def camera_features(extrinsics=False):
  """The `camera` feature: intrinsics (px) and distortion, as `cameras.Camera.intrinsics`;
  with `extrinsics`, also the camera's pose (`cameras.Camera.with_extrinsics`), for datasets
  whose cameras differ per sequence (Human3.6M's are tables by subject and camera)."""
  out = {
      'focal_length': tfds.features.Tensor(shape=(2,), dtype=np.float32),
      'center': tfds.features.Tensor(shape=(2,), dtype=np.float32),
      'radial_distortion': tfds.features.Tensor(shape=(3,), dtype=np.float32),
      'tangential_distortion': tfds.features.Tensor(shape=(2,), dtype=np.float32),
      'image_size': tfds.features.Tensor(shape=(2,), dtype=np.int32, doc='(width, height) px'),
  }
  if extrinsics:
    out['rotation'] = tfds.features.Tensor(shape=(3, 3), dtype=np.float32,
                                           doc='Camera-to-world rotation R.')
    out['centre'] = tfds.features.Tensor(shape=(3,), dtype=np.float32,
                                         doc='Camera centre in the world, mm.')
  return out


def features(image_size=None, actions=skeleton.ACTIONS, extrinsics=False):
  """Features of one (frame, camera) example; `image_size` adds the RGB crop; `actions`: the
  dataset's action labels; `extrinsics`: each example carries its camera's pose."""
  feats = {
      'pose_3d': tfds.features.Tensor(shape=(NUM_JOINTS, 3), dtype=np.float32,
                                      doc='Root-relative 3D pose, camera frame, mm.'),
      'root_3d': tfds.features.Tensor(shape=(3,), dtype=np.float32,
                                      doc='Pelvis position in the camera frame, mm.'),
      'pose_2d': tfds.features.Tensor(shape=(NUM_JOINTS, 2), dtype=np.float32,
                                      doc='2D pose in full-image pixels.'),
      'camera': camera_features(extrinsics),
      'subject': tfds.features.Text(),
      'action': tfds.features.ClassLabel(names=actions),
      'subaction': np.int32,
      'camera_id': tfds.features.Text(),
      'frame': np.int32,
  }
  if image_size:
    feats['image'] = tfds.features.Image(
        shape=(image_size, image_size, 3), encoding_format='jpeg',
        doc='Square RGB crop around the person (see tfds_h36m/crop.py).')
    feats['crop_box'] = tfds.features.Tensor(
        shape=(3,), dtype=np.float32,
        doc='(x0, y0, side) of the crop in full-image pixels.')
  return tfds.features.FeaturesDict(feats)


def encode_jpeg(image, quality=90):
  """JPEG bytes of a uint8 (H, W, 3) image (PIL: thread- and fork-safe, no TF)."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=quality)
  return buffer.getvalue()


def sequence_examples(subject, action, subaction, camera, pose_3d_world, pose_2d,
                      frames, images=None, crop_boxes=None):
  """Yields (key, example) for the given frames of one sequence seen by one camera.

  pose_3d_world: (T, 17, 3) mm; pose_2d: (T, 17, 2) px or None to project;
  images: optional {frame: JPEG bytes}; crop_boxes: {frame: (x0, y0, side)}.
  """
  pose_cam = cameras.world_to_camera(pose_3d_world, camera)
  if pose_2d is None:
    pose_2d = cameras.project(pose_cam, camera)
  root = pose_cam[:, :1]
  pose_rel = (pose_cam - root).astype(np.float32)
  intrinsics = camera.intrinsics()
  action_name = action
  for frame in frames:
    example = {
        'pose_3d': pose_rel[frame],
        'root_3d': root[frame, 0].astype(np.float32),
        'pose_2d': np.asarray(pose_2d[frame], np.float32),
        'camera': intrinsics,
        'subject': subject,
        'action': action_name,
        'subaction': subaction,
        'camera_id': camera.camera_id,
        'frame': frame,
    }
    if images is not None:
      if frame not in images:
        continue
      example['image'] = images[frame]
      example['crop_box'] = np.asarray(crop_boxes[frame], np.float32)
    yield f'{subject}/{action}_{subaction}/{camera.camera_id}/{frame:06d}', example


class PoseStatistics:
  """Streaming per-coordinate mean and std of the training split (float64 sums).

  3D: root-relative camera-frame pose of the 16 non-root joints (mm).
  2D: absolute pixel positions of the 16 non-root joints (the thesis keeps the
  absolute position as a perspective cue and drops the root); and, where the
  update gives each pose's camera, the same joints on the normalised image plane
  ((u - c) / f, `pose_2d_camera`): the input of a lifter for any camera.
  """

  def __init__(self):
    self.count = 0
    shapes = (('pose_3d', (16, 3)), ('pose_2d', (16, 2)), ('pose_2d_camera', (16, 2)))
    self._sums = {k: np.zeros(s) for k, s in shapes}
    self._sq_sums = {k: np.zeros_like(v) for k, v in self._sums.items()}
    self._camera_count = 0

  def update(self, pose_3d, pose_2d, focal_length=None, center=None):
    """Adds a batch of poses: pose_3d (N, 17, 3) root-relative mm, pose_2d (N, 17, 2) px, and
    optionally their cameras' focal_length and center ((N, 2) or (2,) px)."""
    values = {'pose_3d': pose_3d, 'pose_2d': pose_2d}
    if focal_length is not None:
      f = np.broadcast_to(np.asarray(focal_length, np.float64), (len(pose_2d), 2))
      c = np.broadcast_to(np.asarray(center, np.float64), (len(pose_2d), 2))
      values['pose_2d_camera'] = (np.asarray(pose_2d, np.float64) - c[:, None]) / f[:, None]
      self._camera_count += len(pose_2d)
    for key, value in values.items():
      value = np.asarray(value, np.float64)[:, 1:]
      self._sums[key] += value.sum(axis=0)
      self._sq_sums[key] += (value * value).sum(axis=0)
    self.count += len(pose_3d)

  def as_metadata(self):
    """JSON-serialisable statistics, stored with the dataset."""
    if not self.count:
      raise safe_pickle.DataFormatError(  # a ValueError: the source files hold no example
          'No training examples (the training split has no source file, or every one was '
          'skipped): cannot compute normalisation statistics.')
    if self._camera_count not in (0, self.count):
      raise ValueError('Some training examples came without their camera.')
    stats = {'num_examples': self.count}
    for key in self._sums:
      if key == 'pose_2d_camera' and not self._camera_count:
        continue
      mean = self._sums[key] / self.count
      var = np.maximum(self._sq_sums[key] / self.count - mean * mean, 0.0)
      stats[f'{key}_mean'] = mean.tolist()
      stats[f'{key}_std'] = np.sqrt(var).tolist()
    return stats
