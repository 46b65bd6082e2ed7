"""MPI-INF-3DHP test set (TS1-TS6) from the user's own copy: `mpi_inf_3dhp/test`.

One example per valid frame, joints in the Human3.6M 17-joint order. Build with
`python -m tfds_h36m.prepare --dataset=mpi_inf_3dhp/test --manual_dir=DIR`.
"""

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from tfds_h36m import wild
from tfds_h36m import wild_features

_DESCRIPTION = """
MPI-INF-3DHP test set (Mehta et al., 3DV 2017), one example per valid frame of
TS1-TS6, in the Human3.6M 17-joint order: `pose_3d` is the root-relative
univ_annot3 (scaled to Human3.6M's universal skeleton: what the literature
evaluates), `pose_3d_annot3` the metric annot3, both camera frame, mm; `root_3d`
the annot3 pelvis (mm), `pose_2d` annot2 (px), the published test-camera
intrinsics and the activity label.
"""

_CITATION = """
@inproceedings{mehta2017monocular,
  author = {Mehta, Dushyant and Rhodin, Helge and Casas, Dan and Fua, Pascal and Sotnychenko, Oleksandr and Xu, Weipeng and Theobalt, Christian},
  title = {Monocular 3D Human Pose Estimation In The Wild Using Improved CNN Supervision},
  booktitle = {International Conference on 3D Vision (3DV)},
  year = {2017}}
"""


class Builder(wild_features.ArrayRecordByDefault, tfds.core.GeneratorBasedBuilder):
  """MPI-INF-3DHP test-set poses from a user-supplied copy."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='test', description='TS1-TS6, valid frames.')]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
MPI-INF-3DHP is licence-gated: accept the licence at the dataset's site, run its
download script for the test set, and point --manual_dir at the directory that
holds the extracted test set:
  <manual_dir>/mpi_inf_3dhp_test_set/TS1/annot_data.mat
  ... TS2 .. TS6 (MATLAB v7.3/HDF5 or an older .mat version).
Images are not read.
"""

  def _info(self):
    extra = {
        'pose_3d_annot3': tfds.features.Tensor(
            shape=(wild.NUM_JOINTS, 3), dtype=np.float32,
            doc='Root-relative annot3 (metric, true subject size), camera frame, mm.'),
        'activity': tfds.features.ClassLabel(names=wild.MPI_ACTIVITIES),
    }
    return wild_features.dataset_info(self, extra, description=_DESCRIPTION,
                                      homepage='https://vcai.mpi-inf.mpg.de/3dhp-dataset/',
                                      citation=_CITATION)

  def _split_generators(self, dl_manager):
    paths = wild.mpi_paths(dl_manager.manual_dir)
    return {'test': self._generate_examples(paths)}

  def _generate_examples(self, paths):
    invalid, num_examples = {}, 0
    for name, path in paths.items():
      seq = wild.read_mpi_sequence(path, name)
      invalid[name] = seq.num_invalid
      logging.info('%s: %d valid frames, %d invalid frames skipped', name, len(seq.frames),
                   seq.num_invalid)
      camera = wild.mpi_camera(name)
      root = seq.pose_3d[:, :1]
      for i, frame in enumerate(seq.frames):
        num_examples += 1
        yield f'{name}/{frame:06d}', {
            'pose_3d': (seq.pose_3d_univ[i] - seq.pose_3d_univ[i, :1]).astype(np.float32),
            'pose_3d_annot3': (seq.pose_3d[i] - root[i]).astype(np.float32),
            'root_3d': root[i, 0].astype(np.float32),
            'pose_2d': seq.pose_2d[i].astype(np.float32),
            'joint_valid': np.ones(wild.NUM_JOINTS, bool),
            'camera': camera,
            'sequence': name,
            'frame': int(frame),
            'activity': int(seq.activity[i]),
        }
    summary = {'sequences': len(paths), 'examples': num_examples, 'invalid_frames': invalid}
    logging.info('Build summary (test): %s', summary)
    self.info.metadata.setdefault('build_summary', {})['test'] = summary
