"""Reads the examples of a built `h36m` / `h36m_synthetic` dataset without TensorFlow.

The records are `tf.Example` protos. TFDS's NumPy decoder (`as_data_source`)
decodes every feature of an example in Python, about 0.7 ms an example on 2
cores; the parsers here read only the fields training needs with the protobuf
classes TFDS ships, about 10 us an example, so grain workers and the pose-array
side file (`tfds_h36m.pose_arrays`) read at the speed of the disk.
"""

import re

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from tfds_h36m import cameras
from tfds_h36m import skeleton

_CAMERA_INDEX = {camera_id.encode(): i for i, camera_id in enumerate(skeleton.CAMERA_IDS)}
_J = skeleton.NUM_JOINTS
_VIRTUAL_CAMERA = re.compile(rb'virtual_(\d+)')
# The `camera` feature's intrinsics, each (per-row shape): what a lifter for any camera and
# the camera geometry read of every example.
INTRINSICS = {'focal_length': (2,), 'center': (2,), 'radial_distortion': (3,),
              'tangential_distortion': (2,)}
# Each example's camera pose, as the pose side file names it: camera-to-world rotation and
# centre (mm). Records of datasets whose `camera` feature lacks them (Human3.6M and the
# synthetic set, one calibration per subject and camera) take them from the calibration.
EXTRINSICS = {'camera_rotation': (3, 3), 'camera_centre': (3,)}


_READ_CHUNK = 8192  # records read from an ArrayRecord file at a time


class DamagedRecords(ValueError):
  """A record file that cannot be read whole (cut short, bytes changed): one line naming it."""


def _reason(error):
  """The reader's message up to its first detail ('Corrupted Riegeli/records file')."""
  return str(error).split(':')[0].strip()[:120]


def serialized_examples(paths):
  """The serialised examples of ArrayRecord files, in file order; DamagedRecords (naming the
  file) when one cannot be read."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  for path in paths:
    try:
      reader = array_record_module.ArrayRecordReader(str(path), 'readahead_buffer_size:16777216')
    except (RuntimeError, ValueError) as e:
      raise DamagedRecords(f'{path}: damaged record file ({_reason(e)})') from None
    try:
      for start in range(0, reader.num_records(), _READ_CHUNK):
        try:
          chunk = reader.read(list(range(start, min(start + _READ_CHUNK, reader.num_records()))))
        except (RuntimeError, ValueError) as e:
          raise DamagedRecords(f'{path}: damaged record file ({_reason(e)})') from None
        yield from chunk
    finally:
      reader.close()


def float_array(feature, shape):
  """A float feature of a parsed example as a float32 array of `shape`."""
  return np.asarray(feature.float_list.value, np.float32).reshape(shape)


def example_features(serialized):
  """The feature map of a serialised `tf.Example` (protobuf classes TFDS ships, no TF)."""
  return tf_example_pb2.Example.FromString(serialized).features.feature


def camera_index(camera_id):
  """The index of a camera id (bytes): its position in `skeleton.CAMERA_IDS` for Human3.6M's
  cameras, k for a motion capture dataset's 'virtual_<k>' (the k-th camera of a sequence)."""
  if camera_id in _CAMERA_INDEX:
    return _CAMERA_INDEX[camera_id]
  match = _VIRTUAL_CAMERA.fullmatch(camera_id)
  if not match:
    raise ValueError(f'Unknown camera id {camera_id!r}.')
  return int(match.group(1))


def _poses(feature):
  return {
      'pose_2d': float_array(feature['pose_2d'], (_J, 2)),
      'pose_3d': float_array(feature['pose_3d'], (_J, 3)),
      'action': int(feature['action'].int64_list.value[0]),
      'camera_index': camera_index(feature['camera_id'].bytes_list.value[0]),
  }


def parse_pose(serialized):
  """The pose fields of one serialised example: pose_2d (17, 2) px, pose_3d (17, 3)
  root-relative mm, root_3d (3,) mm, the camera's INTRINSICS (px), and action, subaction,
  frame, camera_index (`camera_index`) and subject_number (9 for 'S9') as ints."""
  feature = example_features(serialized)
  example = _poses(feature)
  example['root_3d'] = float_array(feature['root_3d'], (3,))
  for key, shape in INTRINSICS.items():
    example[key] = float_array(feature[f'camera/{key}'], shape)
  for key in ('subaction', 'frame'):
    example[key] = int(feature[key].int64_list.value[0])
  example['subject_number'] = skeleton.subject_number(
      feature['subject'].bytes_list.value[0].decode())
  example.update(_extrinsics(feature, example['subject_number'], example['camera_index']))
  return example


def _extrinsics(feature, subject_number, camera_index):
  """EXTRINSICS of an example: its own, or the calibration's of (subject, camera); NaN
  where neither is known."""
  if 'camera/rotation' in feature:
    return {'camera_rotation': float_array(feature['camera/rotation'], (3, 3)),
            'camera_centre': float_array(feature['camera/centre'], (3,))}
  table = cameras.extrinsics_by_number()
  if subject_number < len(table['known']) and camera_index < table['known'].shape[1] and (
      table['known'][subject_number, camera_index]):
    return {'camera_rotation': table['rotation'][subject_number, camera_index],
            'camera_centre': table['centre'][subject_number, camera_index]}
  return {'camera_rotation': np.eye(3, dtype=np.float32),
          'camera_centre': np.full(3, np.nan, np.float32)}


def parse_image(serialized):
  """What image training reads of one serialised example: the JPEG bytes ('image'),
  crop_box (3,) (x0, y0, side) px, pose_2d, pose_3d, action, camera_index and principal_x
  (the camera's c_x, px: the mirror's column)."""
  feature = example_features(serialized)
  example = _poses(feature)
  example['image'] = feature['image'].bytes_list.value[0]
  example['principal_x'] = feature['camera/center'].float_list.value[0]
  example['crop_box'] = float_array(feature['crop_box'], (3,))
  return example
