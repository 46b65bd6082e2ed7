"""Feature schema pieces shared by the `mpi_inf_3dhp` and `pw3d` builders (names as `h36m`)."""

import numpy as np
import tensorflow_datasets as tfds

from tfds_h36m import features as h36m_features
from tfds_h36m import skeleton

NUM_JOINTS = skeleton.NUM_JOINTS


def pose_features():
  """pose_3d, root_3d, pose_2d, joint_valid and camera, as in `h36m` where they apply."""
  return {
      'pose_3d': tfds.features.Tensor(shape=(NUM_JOINTS, 3), dtype=np.float32,
                                      doc='Root-relative 3D pose, camera frame, mm; 0 where '
                                          'joint_valid is false.'),
      'root_3d': tfds.features.Tensor(shape=(3,), dtype=np.float32,
                                      doc='Root (pelvis) position in the camera frame, mm.'),
      'pose_2d': tfds.features.Tensor(shape=(NUM_JOINTS, 2), dtype=np.float32,
                                      doc='2D pose in full-image pixels; 0 where missing.'),
      'joint_valid': tfds.features.Tensor(shape=(NUM_JOINTS,), dtype=np.bool_,
                                          doc='The 3D joint has a counterpart in the source.'),
      'camera': h36m_features.camera_features(),
      'sequence': tfds.features.Text(),
      'frame': np.int32,
  }


def dataset_info(builder, extra_features, *, description, homepage, citation):
  """The DatasetInfo of a test-set builder: `pose_features` plus `extra_features`."""
  return builder.dataset_info_from_configs(
      description=description,
      features=tfds.features.FeaturesDict({**pose_features(), **extra_features}),
      supervised_keys=('pose_2d', 'pose_3d'),
      homepage=homepage,
      citation=citation,
      metadata=tfds.core.MetadataDict(),
  )


class ArrayRecordByDefault:
  """Builder mixin: new builds are ArrayRecord files, as the `h36m` builders write."""

  FILE_FORMAT = 'array_record'

  def download_and_prepare(self, *, file_format=None, **kwargs):
    super().download_and_prepare(file_format=file_format or self.FILE_FORMAT, **kwargs)
