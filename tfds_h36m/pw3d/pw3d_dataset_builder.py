"""3DPW from the user's own copy: `pw3d`, splits train, validation and test.

One example per (frame, actor) with a valid camera pose, joints in the Human3.6M
17-joint order where 3DPW's layouts have them. Build with
`python -m tfds_h36m.prepare --dataset=pw3d --manual_dir=DIR`.
"""

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from tfds_h36m import wild
from tfds_h36m import wild_features

_DESCRIPTION = """
3DPW (von Marcard et al., ECCV 2018), one example per (frame, actor) with a valid
camera pose. `pose_3d`: SMPL joints mapped to the Human3.6M 17-joint order,
camera frame, mm, relative to the SMPL pelvis (`root_3d`); `pose_2d`: the
OpenPose COCO-18 detections mapped likewise (px) with their confidences. Joints
without a counterpart are 0 and marked false in `joint_valid` / `joint_valid_2d`.
"""

_CITATION = """
@inproceedings{vonMarcard2018,
  author = {von Marcard, Timo and Henschel, Roberto and Black, Michael and Rosenhahn, Bodo and Pons-Moll, Gerard},
  title = {Recovering Accurate 3D Human Pose in The Wild Using IMUs and a Moving Camera},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year = {2018}}
"""


class Builder(wild_features.ArrayRecordByDefault, tfds.core.GeneratorBasedBuilder):
  """3DPW poses from a user-supplied copy."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
3DPW is licence-gated: accept the licence at the dataset's site, download
sequenceFiles.zip, and point --manual_dir at the directory holding it extracted:
  <manual_dir>/sequenceFiles/train/<sequence>.pkl
  <manual_dir>/sequenceFiles/validation/<sequence>.pkl
  <manual_dir>/sequenceFiles/test/<sequence>.pkl
The pickles are read with a restricted unpickler (no code runs). Images are not read.
"""

  def _info(self):
    extra = {
        'joint_valid_2d': tfds.features.Tensor(
            shape=(wild.NUM_JOINTS,), dtype=np.bool_,
            doc='The 2D joint has a COCO-18 counterpart and a confidence above 0.'),
        'confidence_2d': tfds.features.Tensor(shape=(wild.NUM_JOINTS,), dtype=np.float32,
                                              doc='OpenPose confidence of pose_2d.'),
        'actor': np.int32,
        'image_frame': np.int32,
    }
    return wild_features.dataset_info(self, extra, description=_DESCRIPTION,
                                      homepage='https://virtualhumans.mpi-inf.mpg.de/3DPW/',
                                      citation=_CITATION)

  def _split_generators(self, dl_manager):
    files = {split: wild.pw3d_files(dl_manager.manual_dir, split) for split in wild.PW3D_SPLITS}
    return {split: self._generate_examples(paths, split) for split, paths in files.items()}

  def _generate_examples(self, paths, split):
    invalid, num_examples = {}, 0
    for path in paths:
      for actor in wild.read_pw3d_sequence(path):
        invalid[f'{actor.sequence}/{actor.actor}'] = actor.num_invalid
        for key, example in _actor_examples(actor):
          num_examples += 1
          yield key, example
      logging.info('%s: %s read, %d examples so far', split, path.name, num_examples)
    summary = {'sequences': len(paths), 'examples': num_examples,
               'invalid_camera_frames': invalid}
    logging.info('Build summary (%s): %s', split, summary)
    self.info.metadata.setdefault('build_summary', {})[split] = summary


def _actor_examples(actor):
  """(key, example) for each frame of one actor."""
  k = actor.intrinsics
  camera = wild.camera_feature((k[0, 0], k[1, 1]), (k[0, 2], k[1, 2]),
                               image_size=wild.PW3D_IMAGE_SIZE)
  root = actor.joints_cam[:, 0]
  pose_3d = np.where(actor.joint_valid[:, None], actor.joints_cam - root[:, None], 0.0)
  valid_2d = actor.confidence_2d > 0
  for i, frame in enumerate(actor.frames):
    yield f'{actor.sequence}/{actor.actor}/{frame:06d}', {
        'pose_3d': pose_3d[i].astype(np.float32),
        'root_3d': root[i].astype(np.float32),
        'pose_2d': np.where(valid_2d[i, :, None], actor.pose_2d[i], 0.0).astype(np.float32),
        'joint_valid': actor.joint_valid,
        'joint_valid_2d': valid_2d[i],
        'confidence_2d': actor.confidence_2d[i].astype(np.float32),
        'camera': camera,
        'sequence': actor.sequence,
        'actor': actor.actor,
        'frame': int(frame),
        'image_frame': int(actor.image_frames[i]),
    }
