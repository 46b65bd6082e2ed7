"""`h36m_synthetic`: a Human3.6M stand-in that builds with no download, in the same schema.

Per-subject skeletons move through action archetypes (tfds_h36m/synthetic/motion.py),
are seen by the real calibrated cameras, and are rendered as shaded capsules
(tfds_h36m/synthetic/render.py) into crops made exactly like `h36m/images`.
Numbers measured on it are not Human3.6M numbers.
"""

import dataclasses
import functools
import io
import os
import time

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import features
from tfds_h36m import pose_arrays
from tfds_h36m import skeleton
from tfds_h36m import workers as workers_lib
from tfds_h36m.synthetic import motion
from tfds_h36m.synthetic import render


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  """Size of the synthetic dataset.

  Attributes:
    image_size: side of the square RGB crop (px).
    frames_per_sequence: length of each sequence at 50 fps before the stride.
    frame_stride: keep every n-th frame, as `h36m/images` does.
    subactions: sequences per (subject, action).
    train_subjects, test_subjects: the splits' subjects (real camera calibrations).
    seed: everything generated derives from it.
    num_workers: rendering processes; 0 uses every CPU core.
    render_images: False stores one blank crop for every frame (pose-only configs, whose
      every-frame builds would take hours to render).
  """
  image_size: int = 256
  frames_per_sequence: int = 120
  frame_stride: int = 5
  subactions: int = 2
  crop_margin: float = crop.DEFAULT_MARGIN
  train_subjects: tuple = skeleton.TRAIN_SUBJECTS
  test_subjects: tuple = skeleton.TEST_SUBJECTS
  seed: int = 0
  num_workers: int = 0
  render_images: bool = True


class Builder(pose_arrays.BuildsPoseArrays, tfds.core.GeneratorBasedBuilder):
  """Synthetic Human3.6M: poses and rendered crops."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      SyntheticConfig(name='default', description='The embedded default: 256 px crops, '
                      '20,160 examples; builds in under 3 minutes on 2 CPU cores.'),
      SyntheticConfig(name='quick', description="The default's poses, cameras and renders "
                      "with 64 px crops: the CPU demo's (configs/crossmodal.py:quick).",
                      image_size=64),
      SyntheticConfig(name='tiny', description='A few hundred examples, for tests.',
                      image_size=32, frames_per_sequence=20, frame_stride=5, subactions=1,
                      train_subjects=('S1', 'S5'), test_subjects=('S9',), num_workers=1),
      SyntheticConfig(name='poses', description='Poses at 50 fps, every frame of 10 s '
                      'sequences, for temporal models (as h36m/poses); blank 32 px crops. '
                      '420,000 examples; builds in under 3 minutes on 2 CPU cores.',
                      image_size=32, frames_per_sequence=500, frame_stride=1,
                      render_images=False),
      SyntheticConfig(name='tiny_poses', description='Every frame of a few short sequences, '
                      'for tests of temporal models; blank crops.', image_size=32,
                      frames_per_sequence=40, frame_stride=1, subactions=1,
                      train_subjects=('S1', 'S5'), test_subjects=('S9',), num_workers=1,
                      render_images=False),
  ]
  builder_config_cls = SyntheticConfig

  def _info(self):
    return self.dataset_info_from_configs(
        description=__doc__,
        features=features.features(self.builder_config.image_size),
        supervised_keys=('pose_2d', 'pose_3d'),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    cfg = self.builder_config
    return {
        'train': self._generate_examples(cfg.train_subjects, 'train'),
        'test': self._generate_examples(cfg.test_subjects, 'test'),
    }

  def _generate_examples(self, subjects, split):
    cfg = self.builder_config
    tasks = [(cfg, subject, action, subaction) for subject in subjects
             for action in skeleton.ACTIONS for subaction in range(1, cfg.subactions + 1)]
    stats = features.PoseStatistics() if split == 'train' else None
    samples = []
    num_examples = 0
    start = time.time()
    workers = cfg.num_workers or os.cpu_count() or 1
    with workers_lib.pool(workers) as pool:
      results = pool.imap(_render_sequence, tasks) if pool else map(_render_sequence, tasks)
      for done, examples in enumerate(results, 1):
        if stats is not None:
          stats.update(np.stack([ex['pose_3d'] for _, ex in examples]),
                       np.stack([ex['pose_2d'] for _, ex in examples]))
        if len(samples) < 24 and done % max(len(tasks) // 24, 1) == 0:
          samples.append(examples[0][1]['image'])
        num_examples += len(examples)
        yield from examples
        if done % max(len(tasks) // 10, 1) == 0 or done == len(tasks):
          rate = num_examples / max(time.time() - start, 1e-9)
          eta = (len(tasks) - done) * (num_examples / done) / rate
          logging.info('h36m_synthetic/%s %s: %d/%d sequences, %d examples, %.0f examples/s, '
                       'ETA %.0f s', cfg.name, split, done, len(tasks), num_examples, rate, eta)
    self.info.metadata.setdefault('build_summary', {})[split] = {
        'sequences': len(tasks), 'examples': num_examples}
    if stats is not None:
      self.info.metadata['statistics'] = stats.as_metadata()
      if cfg.render_images:
        self._write_sample_grid(samples)

  def _write_sample_grid(self, jpegs):
    """Saves crops from across the actions as sample_grid.png next to the records."""
    images = [np.asarray(Image.open(io.BytesIO(b))) for b in jpegs]
    path = os.path.join(self.data_dir, 'sample_grid.png')
    render.save_sample_grid(images, path)
    logging.info('Wrote a grid of sample crops to %s', path)


@functools.cache
def _blank_crop(image_size):
  """JPEG bytes of a mid-grey crop."""
  return features.encode_jpeg(np.full((image_size, image_size, 3), 128, np.uint8))


def _render_sequence(task):
  """All (key, example) pairs of one (subject, action, subaction) over the 4 cameras."""
  cfg, subject, action, subaction = task
  subject_index = int(subject[1:])
  action_index = skeleton.ACTIONS.index(action)
  rng = np.random.default_rng([cfg.seed, subject_index, action_index, subaction])
  pose_world = motion.generate_sequence(
      rng, motion.subject_bone_lengths(subject), action, cfg.frames_per_sequence)
  frames = range(0, cfg.frames_per_sequence, cfg.frame_stride)
  examples = []
  for cam_index, camera in enumerate(cameras.load_cameras(subject)):
    pose_cam = cameras.world_to_camera(pose_world, camera)
    pose_2d = cameras.project(pose_cam, camera)
    images, boxes = {}, {}
    for frame in frames:
      boxes[frame] = crop.crop_box(pose_2d[frame], cfg.crop_margin)
      if not cfg.render_images:
        images[frame] = _blank_crop(cfg.image_size)
        continue
      # The same background for every frame of one camera, as in a real video.
      scene_rng = np.random.default_rng([cfg.seed, subject_index, action_index, subaction, cam_index])
      image = render.render_crop(pose_cam[frame], camera, boxes[frame], cfg.image_size, scene_rng)
      images[frame] = features.encode_jpeg(image)
    examples.extend(features.sequence_examples(
        subject, action, subaction, camera, pose_world, pose_2d, frames, images, boxes))
  return examples
