"""Human3.6M from the user's own copy: `h36m/poses` and `h36m/images`.

One example per (frame, camera). Build with
`python -m tfds_h36m.prepare --dataset=h36m/poses --manual_dir=DIR` (see
MANUAL_DOWNLOAD_INSTRUCTIONS), or `tfds build tfds_h36m/h36m --config=poses --manual_dir=DIR`.
"""

import dataclasses
import time

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import features
from tfds_h36m import pose_arrays
from tfds_h36m import skeleton
from tfds_h36m import sources

_DESCRIPTION = """
Human3.6M (Ionescu et al., TPAMI 2014) 3D human poses, one example per (frame,
camera): root-relative camera-frame 3D pose (mm), camera-frame root position,
2D pose (px), the camera's intrinsics and the sequence's labels; the `images`
config adds a square RGB crop around the person. Normalisation statistics of the
training split are stored in the dataset's metadata (`statistics`).
"""

_CITATION = """
@article{h36m_pami,
  author = {Ionescu, Catalin and Papava, Dragos and Olaru, Vlad and Sminchisescu, Cristian},
  title = {Human3.6M: Large Scale Datasets and Predictive Methods for 3D Human Sensing in Natural Environments},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  year = {2014}}
"""


@dataclasses.dataclass
class H36mConfig(tfds.core.BuilderConfig):
  """What to build from the manual directory.

  Attributes:
    source: 'auto' (preprocessed npz files if present, else the original CDF
      files), 'npz' or 'cdf'.
    keypoints_2d: 2D source of the npz layout: 'gt' or a detection file's
      suffix, e.g. 'cpn_ft_h36m_dbb' for data_2d_h36m_cpn_ft_h36m_dbb.npz. The
      CDF layout computes 2D by projecting the 3D poses through the cameras.
    frame_stride: keep every n-th frame (50 fps sources).
    image_size: side of the square RGB crop in px; 0 for no images.
    crop_margin: crop side as a multiple of the 2D-pose bounding box.
    train_subjects, test_subjects: the splits' subjects.
  """
  source: str = 'auto'
  keypoints_2d: str = 'gt'
  frame_stride: int = 1
  image_size: int = 0
  crop_margin: float = crop.DEFAULT_MARGIN
  train_subjects: tuple = skeleton.TRAIN_SUBJECTS
  test_subjects: tuple = skeleton.TEST_SUBJECTS


class Builder(pose_arrays.BuildsPoseArrays, tfds.core.GeneratorBasedBuilder):
  """Human3.6M poses (and crops) from a user-supplied copy."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      H36mConfig(name='poses', description='3D and 2D poses, every frame.'),
      H36mConfig(name='images', description='Poses and 256x256 RGB crops, every 5th frame.',
                 frame_stride=5, image_size=256),
  ]
  builder_config_cls = H36mConfig
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
Human3.6M is licence-gated: register at the dataset's site, download it yourself,
and point --manual_dir at a directory holding ONE of these layouts:

1. The widely used preprocessed files (poses config):
     <manual_dir>/data_3d_h36m.npz                 (key positions_3d, metres)
     <manual_dir>/data_2d_h36m_gt.npz              (key positions_2d, pixels)
   or a detection file instead of gt, e.g. data_2d_h36m_cpn_ft_h36m_dbb.npz,
   selected with  python -m tfds_h36m.prepare --dataset=h36m --manual_dir=DIR
     --config='{"name": "poses_cpn", "keypoints_2d": "cpn_ft_h36m_dbb"}'

2. The original release, extracted (poses and images configs):
     <manual_dir>/S1/MyPoseFeatures/D3_Positions/Directions 1.cdf
     <manual_dir>/S1/Videos/Directions 1.54138969.mp4
     ... for S1, S5, S6, S7, S8, S9, S11.

The images config needs the Videos folders (layout 2); its poses come from the
npz files when present, else from the CDF files.
"""

  def _info(self):
    cfg = self.builder_config
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=features.features(cfg.image_size or None),
        supervised_keys=('pose_2d', 'pose_3d'),
        homepage='http://vision.imar.ro/human3.6m/',
        citation=_CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    manual_dir = dl_manager.manual_dir
    layout = sources.detect_layout(manual_dir, cfg.keypoints_2d) if cfg.source == 'auto' else cfg.source
    if layout not in ('npz', 'cdf'):
      raise ValueError(f"source must be 'auto', 'npz' or 'cdf', got {cfg.source!r}")
    if cfg.image_size:
      sources.require_videos(manual_dir, cfg.train_subjects + cfg.test_subjects)
    logging.info('Building h36m/%s from the %s layout in %s.', cfg.name, layout, manual_dir)
    return {
        'train': self._generate_examples(manual_dir, layout, cfg.train_subjects, 'train'),
        'test': self._generate_examples(manual_dir, layout, cfg.test_subjects, 'test'),
    }

  def _sequences(self, manual_dir, layout, subjects, skipped):
    if layout == 'npz':
      return sources.iter_npz_sequences(manual_dir, subjects, self.builder_config.keypoints_2d,
                                        skipped=skipped)
    return sources.iter_cdf_sequences(manual_dir, subjects, skipped=skipped)

  def _generate_examples(self, manual_dir, layout, subjects, split):
    cfg = self.builder_config
    stats = features.PoseStatistics() if split == 'train' else None
    skipped_sequences, skipped_videos = [], []
    num_sequences = num_examples = 0
    start = time.time()
    for seq in self._sequences(manual_dir, layout, subjects, skipped_sequences):
      num_sequences += 1
      frames = range(0, len(seq.pose_3d_world), cfg.frame_stride)
      for cam_index, camera in enumerate(cameras.load_cameras(seq.subject)):
        pose_2d = seq.pose_2d[cam_index] if seq.pose_2d is not None else None
        images = boxes = None
        if cfg.image_size:
          video = sources.video_path(manual_dir, seq.subject, seq.name, camera.camera_id)
          try:
            images, boxes = self._crops(video, seq, camera, frames)
          except sources.VideoError as e:
            logging.warning('Skipping unreadable video: %s', e)
            skipped_videos.append(str(video))
            continue
        examples = list(features.sequence_examples(
            seq.subject, seq.action, seq.subaction, camera, seq.pose_3d_world, pose_2d,
            frames, images, boxes))
        if stats is not None and examples:
          stats.update(np.stack([ex['pose_3d'] for _, ex in examples]),
                       np.stack([ex['pose_2d'] for _, ex in examples]))
        num_examples += len(examples)
        yield from examples
      logging.info('%s: %d sequences, %d examples (%.0f examples/s)', split, num_sequences,
                   num_examples, num_examples / max(time.time() - start, 1e-9))
    if num_examples == 0:
      raise sources.MissingDataError(
          f'No {split} examples for subjects {list(subjects)} in {manual_dir}.')
    summary = {'sequences': num_sequences, 'examples': num_examples,
               'skipped_sequences': skipped_sequences, 'skipped_videos': skipped_videos}
    logging.info('Build summary (%s): %s', split, summary)
    self.info.metadata.setdefault('build_summary', {})[split] = summary
    if stats is not None:
      self.info.metadata['statistics'] = stats.as_metadata()

  def _crops(self, video, seq, camera, frames):
    """JPEG crops {frame: bytes} around the projected ground-truth pose, and their boxes."""
    cfg = self.builder_config
    pose_2d = cameras.project(cameras.world_to_camera(seq.pose_3d_world, camera), camera)
    images, boxes = {}, {}
    for frame, rgb in sources.read_video_frames(video, list(frames)):
      box = crop.crop_box(pose_2d[frame], cfg.crop_margin)
      images[frame] = features.encode_jpeg(crop.crop_image(rgb, box, cfg.image_size))
      boxes[frame] = box
    return images, boxes
