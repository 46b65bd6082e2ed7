"""`mocap`: motion capture (BVH files) as lifting data, filmed by virtual cameras.

  python -m tfds_h36m.prepare --dataset=mocap/cmu --manual_dir=/path/to/cmu_bvh
  python -m tfds_h36m.prepare --dataset=mocap/bandai --manual_dir=/path/to/bandai_namco
  python -m tfds_h36m.prepare --dataset=mocap --manual_dir=/path/to/your_bvh \
      --config='{"name": "studio", "rig": "/path/to/mapping.json", "subjects": "folder",
                 "test_subjects": ["actor3"]}'

Every .bvh file under the manual directory (searched recursively) is one sequence: its
rig's joints become Human3.6M's 17 (`rigs.py`; CMU, Bandai Namco, or a JSON mapping file),
in mm, resampled to 50 fps (linear interpolation of the joint positions), and seen by
`cameras_per_sequence` virtual cameras drawn per sequence (`virtual_cameras.py`: phones to
telephoto, 720p to 4K, landscape and portrait, the person in frame and in front). Examples
have the schema of `h36m/poses` (the 2D pose is the projection in px, and each carries its
camera's intrinsics), so every pose config trains on it; the action label is a kind of
motion (`motions.py`). Splits are by person: test subjects are never seen in training. A
file that cannot be read is skipped with a one-line warning and listed in the build summary.
"""

import dataclasses
import os
import re
import time
import zlib

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from hpe_jax.inference import bvh
from hpe_jax.inference import resample
from tfds_h36m import cameras
from tfds_h36m import features
from tfds_h36m import pose_arrays
from tfds_h36m import skeleton
from tfds_h36m import workers as workers_lib
from tfds_h36m.mocap import motions
from tfds_h36m.mocap import rigs
from tfds_h36m.mocap import virtual_cameras

FPS = 50.0  # the frame rate of every built sequence (Human3.6M's, the temporal nets')
SUBJECT_RULES = ('cmu', 'bandai', 'folder')
# Bandai Namco does not name its three actors per file; the files' rest poses (the Hips
# OFFSET, one per capture set-up) fall in groups that coincide with styles, taken here as
# the actors: (dataset number, style) -> actor.
BANDAI_ACTORS = {
    **{(2, s): 1 for s in ('active', 'elderly', 'exhausted')},
    **{(2, s): 2 for s in ('feminine', 'youthful')},
    **{(2, s): 3 for s in ('masculine', 'normal')},
    **{(1, s): 4 for s in ('angry', 'feminine', 'happy', 'musical', 'normal', 'not-confident',
                           'proud', 'sad')},
    **{(1, s): 5 for s in ('active', 'childish', 'chimpira', 'giant', 'masculinity', 'old',
                           'tired')}}
# CMU's test people: of each pair of subjects who perform the same kind of motion in CMU's
# subjects 1-14 (walk: 7 and 8; soccer kicks: 10 and 11; everyday behaviours: 13 and 14), the
# second; so the test measures unseen people, not unseen kinds of motion (subjects whose
# kind of motion nobody else performs train: 1 playground, 5 modern dance, 6 basketball).
CMU_TEST_SUBJECTS = ('cmu08', 'cmu11', 'cmu14')
_CMU_NAME = re.compile(r'(\d+)_(\d+)')
_BANDAI_NAME = re.compile(r'dataset-(\d+)_(.+)_([a-z-]+)_(\d+)')
_FOLDER_SUBJECT = re.compile(r'[A-Za-z]+\d+')


@dataclasses.dataclass
class MocapConfig(tfds.core.BuilderConfig):
  """What to build from a folder of BVH files.

  Attributes:
    rig: '' to recognise each file's rig among the built-in ones (`rigs.RIGS`), a built-in
      rig's name, or the path of a JSON mapping file (`rigs.load_rig`).
    subjects: how a file's person is named: 'cmu' ('cmu05' for 05_01.bvh), 'bandai' (the
      actor of the file's style, `BANDAI_ACTORS`: 'bandai2'), or 'folder' (the name of the
      file's folder, letters then a number such as 'actor3').
    test_subjects: the test split's subjects; test_every: also every subject whose number is
      a multiple of it (0: none). Every other subject trains.
    cameras_per_sequence: virtual cameras drawn per sequence (each an example per frame).
    body_variation: bodies of other proportions: each take's bones (left and right alike,
      the torso's two halves alike) are scaled by exp(N(0, body_variation)) (`vary_body`);
      motion capture releases retarget every performer onto one skeleton, real people
      differ. 0: the file's bone proportions.
    size_variation: then the whole body is scaled by exp(N(0, size_variation)). 0: the
      file's size.
    hip_width_mm, shoulder_width_mm: the ranges (uniform, before the whole body's scale) of
      the distance between the hip joints and between the shoulder joints of the varied
      bodies: the rigs' thigh and upper-arm roots sit 13-18 and 20-23 cm apart, Human3.6M's
      joints and detectors' keypoints about 26 and 30-38 cm.
    seed: the cameras and bodies derive from it and the file's path relative to the folder.
    min_seconds: shorter files are skipped.
    num_workers: processes reading the files; 0 uses every CPU core.
  """
  rig: str = ''
  subjects: str = 'folder'
  test_subjects: tuple = ()
  test_every: int = 0
  cameras_per_sequence: int = 4
  body_variation: float = 0.1
  size_variation: float = 0.05
  hip_width_mm: tuple = (180.0, 320.0)
  shoulder_width_mm: tuple = (240.0, 400.0)
  seed: int = 0
  min_seconds: float = 1.0
  num_workers: int = 0


def subject_of(path, rule):
  """(subject name, take label) of a BVH file by the config's `subjects` rule; BvhError (a
  ValueError, one line) when the path does not fit the rule."""
  stem = os.path.splitext(os.path.basename(path))[0]
  if rule == 'cmu':
    match = _CMU_NAME.fullmatch(stem)
    if match:
      return f'cmu{int(match.group(1)):02d}', stem
  elif rule == 'bandai':
    match = _BANDAI_NAME.fullmatch(stem)
    if match and (int(match.group(1)), match.group(3)) in BANDAI_ACTORS:
      return f'bandai{BANDAI_ACTORS[int(match.group(1)), match.group(3)]}', stem
  elif rule == 'folder':
    folder = os.path.basename(os.path.dirname(path))
    if _FOLDER_SUBJECT.fullmatch(folder):
      return folder, stem
  expected = {'cmu': 'NN_MM.bvh (CMU subject and take numbers)',
              'bandai': "dataset-<n>_<motion>_<style>_<take>.bvh with a known style",
              'folder': 'a folder named letters then a number (actor3)'}[rule]
  raise bvh.BvhError(f'{path}: not {expected}')


def _is_test(subject, cfg):
  number = int(re.search(r'\d+$', subject).group())
  return subject in cfg.test_subjects or (cfg.test_every > 0 and number % cfg.test_every == 0)


class Builder(pose_arrays.BuildsPoseArrays, tfds.core.GeneratorBasedBuilder):
  """Motion capture seen by virtual cameras: poses only."""

  VERSION = tfds.core.Version('1.2.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': "Each example carries its camera's pose (camera/rotation, centre).",
                   '1.2.0': 'Kinds of motion read from whole words and their inflections, '
                            'CamelCase names split ("sit on stepstool" is no walk; '
                            '"NormalWalk" is one).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  A folder of BVH files (searched recursively). CMU: the cgspeed BVH conversion of the CMU
  Graphics Lab Motion Capture Database (https://mocap.cs.cmu.edu, free for research and
  commercial use; BVH at https://sites.google.com/a/cgspeed.com/cgspeed/motion-capture),
  files named NN_MM.bvh. Bandai Namco: https://github.com/BandaiNamcoResearchInc/
  Bandai-Namco-Research-Motiondataset (CC BY-NC 4.0, non-commercial), its dataset/ folder.
  """
  BUILDER_CONFIGS = [
      MocapConfig(name='cmu', description='CMU motion capture (cgspeed BVH, 120 fps), 16 '
                  'virtual cameras per take; test subjects 8, 11 and 14 (CMU_TEST_SUBJECTS).',
                  rig='cmu', subjects='cmu', test_subjects=CMU_TEST_SUBJECTS,
                  cameras_per_sequence=16),
      MocapConfig(name='bandai', description='Bandai Namco Research Motiondataset 1 and 2 '
                  '(30 fps), two virtual cameras per take (3,000 short takes); test actors '
                  'bandai2 and bandai4 (the two groups of feminine styles).', rig='bandai',
                  subjects='bandai', test_subjects=('bandai2', 'bandai4'),
                  cameras_per_sequence=2),
  ]
  builder_config_cls = MocapConfig

  def _info(self):
    return self.dataset_info_from_configs(
        description=__doc__,
        features=features.features(None, motions.ACTIONS, extrinsics=True),
        supervised_keys=('pose_2d', 'pose_3d'),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    if cfg.subjects not in SUBJECT_RULES:
      raise ValueError(f'Unknown subjects rule {cfg.subjects!r}; use one of {SUBJECT_RULES}.')
    rig = rigs.load_rig(cfg.rig) if cfg.rig.endswith('.json') else (
        rigs.RIGS[cfg.rig] if cfg.rig else None)
    folder = str(dl_manager.manual_dir)
    paths = sorted(str(p) for p in bvh_files(folder))
    if not paths:
      raise FileNotFoundError(f'No .bvh files under {folder}.')
    descriptions = motions.read_index(folder)
    takes = {'train': [], 'test': []}
    for path in paths:
      subject, take = subject_of(path, cfg.subjects)
      action = motions.action_of(descriptions.get(take, take))
      takes['test' if _is_test(subject, cfg) else 'train'].append(
          (path, os.path.relpath(path, folder), subject, action))
    for split, items in takes.items():
      if not items:
        raise FileNotFoundError(
            f'No {split} subjects among the {len(paths)} files of {folder} (test_subjects '
            f'{cfg.test_subjects}, test_every {cfg.test_every}).')
    return {split: self._generate_examples(items, split, rig)
            for split, items in takes.items()}

  def _generate_examples(self, takes, split, rig):
    cfg = self.builder_config
    subaction = {}
    tasks = []
    for path, relative, subject, action in takes:
      subaction[subject] = subaction.get(subject, 0) + 1
      tasks.append((cfg, rig, path, relative, subject, action, subaction[subject]))
    summary = _Summary(split, len(tasks))
    stats = features.PoseStatistics() if split == 'train' else None
    workers = cfg.num_workers or os.cpu_count() or 1
    with workers_lib.pool(workers) as pool:
      results = pool.imap(_film_take, tasks) if pool else map(_film_take, tasks)
      for task, result in zip(tasks, results):
        if isinstance(result, str):
          logging.warning('Skipping %s', result)
          summary.skip(result)
          continue
        yield from _examples(task, result, stats)
        summary.add(task[4], result)
    self.info.metadata.setdefault('build_summary', {})[split] = summary.as_metadata()
    self.info.metadata['cameras'] = virtual_cameras.describe(
        virtual_cameras.CameraDistribution())
    if stats is not None:
      self.info.metadata['statistics'] = stats.as_metadata()


def bvh_files(folder):
  """The .bvh files under `folder`, at any depth (links followed), folder by folder in
  sorted order."""
  for root, names in motions.walk(folder):
    for name in names:
      if name.lower().endswith('.bvh'):
        yield os.path.join(root, name)


def positions_50fps(motion, rig):
  """(T, 17, 3) mm of a Motion's H36M-17 joints (`rigs.h36m_positions`), resampled from the
  file's frame rate to 50 fps over its duration."""
  positions = rigs.h36m_positions(motion, rig or rigs.detect_rig(motion.names))
  times = np.arange(len(positions)) * motion.frame_time
  grid = np.arange(0.0, times[-1] + 1e-9, 1.0 / FPS)
  return resample.interpolate(positions, times, grid)


def _film_take(task):
  """(pose_world (T, 17, 3) mm, cameras) of one take, or a one-line reason to skip it."""
  cfg, rig, path, relative = task[:4]
  try:
    motion = bvh.read_bvh(path)
    if len(motion.frames) * motion.frame_time < cfg.min_seconds:
      return f'{path}: shorter than {cfg.min_seconds} s'
    pose_world = positions_50fps(motion, rig)
  except ValueError as e:  # BvhError, a rig that does not fit: already one line
    return str(e) if str(e).startswith(path) else f'{path}: {e}'
  rng = np.random.default_rng([cfg.seed, zlib.crc32(relative.encode())])
  pose_world = vary_body(pose_world, rng, cfg.body_variation, cfg.size_variation,
                         {('RHip', 'LHip'): cfg.hip_width_mm,
                          ('LShoulder', 'RShoulder'): cfg.shoulder_width_mm})
  return pose_world, virtual_cameras.sample_cameras(pose_world, cfg.cameras_per_sequence, rng)


# Bones scaled together: the torso's halves (Spine stays mid-way), each limb bone with its
# mirror, the neck and head; by child joint, in `skeleton.JOINT_NAMES`.
_BONE_GROUPS = (('Spine', 'Thorax'), ('RHip', 'LHip'), ('RKnee', 'LKnee'),
                ('RAnkle', 'LAnkle'), ('Neck',), ('Head',), ('LShoulder', 'RShoulder'),
                ('LElbow', 'RElbow'), ('LWrist', 'RWrist'))


def vary_body(pose_world, rng, spread, size_spread, widths=None):
  """The H36M-17 motion (T, 17, 3) mm of a body of other proportions (MocapConfig's
  body_variation `spread` and size_variation `size_spread`): every bone of a group scaled by
  one log-normal factor (the pairs of `widths`, {(joint, joint): (low, high) mm}, to a
  distance between the two drawn uniformly instead), then the whole body; the pelvis keeps
  its path, each joint follows its parent."""
  if spread <= 0 and size_spread <= 0:
    return pose_world
  scale = np.ones(skeleton.NUM_JOINTS)
  j = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
  for group in _BONE_GROUPS:
    scale[[j[name] for name in group]] = np.exp(rng.normal(0.0, spread))
  for (a, b), (low, high) in (widths or {}).items():
    width = np.linalg.norm(pose_world[:, j[a]] - pose_world[:, j[b]], axis=-1).mean()
    scale[[j[a], j[b]]] = rng.uniform(low, high) / max(width, 1e-6)
  scale *= np.exp(rng.normal(0.0, size_spread))
  out = np.array(pose_world, np.float64)
  for child, parent in enumerate(skeleton.PARENTS):
    if parent >= 0:
      out[:, child] = out[:, parent] + scale[child] * (pose_world[:, child] -
                                                       pose_world[:, parent])
  return out


def _examples(task, result, stats):
  """(key, example) of every frame of a filmed take, seen by each of its cameras."""
  path, _, subject, action, subaction = task[2:]
  pose_world, take_cameras = result
  take = os.path.splitext(os.path.basename(path))[0]
  for camera in take_cameras:
    pose_cam = cameras.world_to_camera(pose_world, camera)
    pose_2d = cameras.project(pose_cam, camera).astype(np.float32)
    root = pose_cam[:, :1]
    pose_rel = (pose_cam - root).astype(np.float32)
    intrinsics = camera.with_extrinsics()
    if stats is not None:
      stats.update(pose_rel, pose_2d, intrinsics['focal_length'], intrinsics['center'])
    for frame in range(len(pose_world)):
      yield f'{subject}/{take}/{camera.camera_id}/{frame:06d}', {
          'pose_3d': pose_rel[frame], 'root_3d': root[frame, 0].astype(np.float32),
          'pose_2d': pose_2d[frame], 'camera': intrinsics, 'subject': subject,
          'action': action, 'subaction': subaction, 'camera_id': camera.camera_id,
          'frame': frame}


class _Summary:
  """What a split's build read: sequences, frames, subjects, cameras, skipped files, time."""

  def __init__(self, split, num_files):
    self.split, self.num_files, self.start = split, num_files, time.time()
    self.frames, self.examples, self.subjects, self.skipped = 0, 0, set(), []
    self.sequences = self.cameras = 0

  def add(self, subject, result):
    pose_world, take_cameras = result
    self.sequences += 1
    self.cameras += len(take_cameras)
    self.frames += len(pose_world)
    self.examples += len(pose_world) * len(take_cameras)
    self.subjects.add(subject)
    done = self.sequences + len(self.skipped)
    if done % max(self.num_files // 10, 1) == 0 or done == self.num_files:
      rate = self.examples / max(time.time() - self.start, 1e-9)
      logging.info('mocap %s: %d/%d files, %d examples, %.0f examples/s', self.split, done,
                   self.num_files, self.examples, rate)

  def skip(self, reason):
    self.skipped.append(reason)

  def as_metadata(self):
    return {'sequences': self.sequences, 'frames_50fps': self.frames,
            'cameras': self.cameras,
            'examples': self.examples, 'subjects': sorted(self.subjects),
            'skipped_files': self.skipped, 'seconds': round(time.time() - self.start, 1)}
