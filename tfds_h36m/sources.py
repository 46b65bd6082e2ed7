"""Readers of the Human3.6M files users hold, one sequence at a time.

Two layouts (see shared facts in the README): the preprocessed npz files, or the
original release's CDF poses and mp4 videos. Both yield `Sequence`s in world
millimetres with the 17-joint skeleton, skipping known-bad sequences.
"""

import dataclasses
import pathlib
from typing import Optional

from absl import logging
import av
import cdflib
import numpy as np

from tfds_h36m import skeleton
from tfds_h36m.safe_pickle import DataFormatError
from tfds_h36m.safe_pickle import load_npz_dict

__all__ = ['DataFormatError', 'MissingDataError', 'VideoError', 'Sequence', 'detect_layout',
           'iter_npz_sequences', 'iter_cdf_sequences', 'read_video_frames', 'video_path',
           'require_videos']

LAYOUT_HELP = """Expected one of these layouts in the manual directory:
  1. preprocessed files:  data_3d_h36m.npz and data_2d_h36m_<source>.npz (e.g. data_2d_h36m_gt.npz)
  2. original release:    S1/MyPoseFeatures/D3_Positions/Directions 1.cdf
                          S1/Videos/Directions 1.54138969.mp4 (for images)"""


class MissingDataError(FileNotFoundError):
  """Expected Human3.6M files are not there; the message names the first missing path."""


class VideoError(DataFormatError):
  """A video that cannot be opened or decoded; the message names the file."""


@dataclasses.dataclass
class Sequence:
  """One recorded sequence of one subject, seen by the four cameras."""
  subject: str
  action: str  # canonical action name
  subaction: int  # 0 when the file name has no number
  name: str  # the sequence's file name, e.g. 'TakingPhoto 1'
  pose_3d_world: np.ndarray  # (T, 17, 3) world frame, mm
  pose_2d: Optional[list]  # 4 arrays (T, 17, 2) px in CAMERA_IDS order, or None to project


def _dir(manual_dir):
  if manual_dir is None:
    raise MissingDataError(f'No manual directory given (--manual_dir).\n{LAYOUT_HELP}')
  path = pathlib.Path(manual_dir)
  if not path.is_dir():
    raise MissingDataError(f'Manual directory {path} does not exist.\n{LAYOUT_HELP}')
  return path


def detect_layout(manual_dir, keypoints_2d='gt'):
  """'npz' or 'cdf', whichever the manual directory holds (npz preferred)."""
  root = _dir(manual_dir)
  path_3d = root / 'data_3d_h36m.npz'
  if path_3d.exists():
    path_2d = root / f'data_2d_h36m_{keypoints_2d}.npz'
    if not path_2d.exists():
      raise MissingDataError(f'{path_2d} is missing: the 2D keypoints {keypoints_2d!r} that go '
                             f'with {path_3d}.\n{LAYOUT_HELP}')
    return 'npz'
  if any(root.glob('S*/MyPoseFeatures/D3_Positions/*.cdf')):
    return 'cdf'
  raise MissingDataError(f'No Human3.6M files in {root}; first missing path: {path_3d}\n'
                         f'{LAYOUT_HELP}')


def _parse_name(name, path):
  try:
    return skeleton.parse_sequence_name(name)
  except ValueError as e:
    raise DataFormatError(f'{path}: {e}') from e


def _skip(subject, name, skipped):
  if (subject, name) in skeleton.KNOWN_BAD_SEQUENCES:
    logging.info('Skipping %s %r: known corrupted sequence (discarded by the standard tooling).',
                 subject, name)
    if skipped is not None:
      skipped.append(f'{subject}/{name}')
    return True
  return False


def iter_npz_sequences(manual_dir, subjects, keypoints_2d='gt', skipped=None):
  """Sequences from data_3d_h36m.npz (metres, 32 joints) and data_2d_h36m_<src>.npz (px).

  3D and 2D are truncated to the shorter length (detections can have a few more
  frames). Skipped sequences are appended to `skipped` as 'subject/name'.
  """
  root = _dir(manual_dir)
  path_3d, path_2d = root / 'data_3d_h36m.npz', root / f'data_2d_h36m_{keypoints_2d}.npz'
  for path in (path_3d, path_2d):
    if not path.exists():
      raise MissingDataError(f'{path} is missing.\n{LAYOUT_HELP}')
  positions_3d = load_npz_dict(path_3d, 'positions_3d')
  positions_2d = load_npz_dict(path_2d, 'positions_2d')
  for path, data in ((path_3d, positions_3d), (path_2d, positions_2d)):
    if not isinstance(data, dict):
      raise DataFormatError(f'{path}: expected a dict of subjects, got {type(data).__name__}')
  for subject in subjects:
    for path, data in ((path_3d, positions_3d), (path_2d, positions_2d)):
      if subject not in data:
        raise MissingDataError(f'{path} has no subject {subject}; it has {sorted(data)}')
    for name in sorted(positions_3d[subject]):
      if _skip(subject, name, skipped):
        continue
      action, subaction = _parse_name(name, path_3d)
      pose = np.asarray(positions_3d[subject][name])
      if pose.ndim != 3 or pose.shape[1:] != (skeleton.NUM_RAW_JOINTS, 3):
        raise DataFormatError(f'{path_3d}: {subject}/{name} has shape {pose.shape}, '
                              f'expected (T, {skeleton.NUM_RAW_JOINTS}, 3)')
      if name not in positions_2d[subject]:
        raise DataFormatError(f'{path_2d} has no sequence {subject}/{name!r} that '
                              f'{path_3d} has')
      views = [np.asarray(v) for v in positions_2d[subject][name]]
      if len(views) != len(skeleton.CAMERA_IDS) or any(
          v.ndim != 3 or v.shape[1:] != (skeleton.NUM_JOINTS, 2) for v in views):
        raise DataFormatError(f'{path_2d}: {subject}/{name} must hold 4 arrays (T, 17, 2), got '
                              f'{[v.shape for v in views]}')
      length = min([len(pose)] + [len(v) for v in views])
      yield Sequence(subject, action, subaction, name,
                     pose[:length, list(skeleton.RAW_TO_17)].astype(np.float64) * 1000.0,
                     [v[:length].astype(np.float32) for v in views])


def read_cdf_pose(path):
  """The `Pose` variable of a D3_Positions CDF as (T, 32, 3) world mm."""
  try:
    pose = np.asarray(cdflib.CDF(str(path)).varget('Pose'))
  except Exception as e:  # cdflib raises many types for corrupt files. pylint: disable=broad-except
    raise DataFormatError(f'{path}: not a readable CDF with a Pose variable ({e!r})') from e
  if pose.ndim != 3 or pose.shape[0] != 1 or pose.shape[2] != skeleton.NUM_RAW_JOINTS * 3:
    raise DataFormatError(f'{path}: Pose has shape {pose.shape}, expected (1, T, 96)')
  return pose[0].reshape(-1, skeleton.NUM_RAW_JOINTS, 3).astype(np.float64)


def iter_cdf_sequences(manual_dir, subjects, skipped=None):
  """Sequences from S*/MyPoseFeatures/D3_Positions/*.cdf (2D left to projection)."""
  root = _dir(manual_dir)
  for subject in subjects:
    folder = root / subject / 'MyPoseFeatures' / 'D3_Positions'
    if not folder.is_dir():
      raise MissingDataError(f'{folder} is missing.\n{LAYOUT_HELP}')
    for path in sorted(folder.glob('*.cdf')):
      name = path.stem
      if _skip(subject, name, skipped):
        continue
      action, subaction = _parse_name(name, path)
      pose = read_cdf_pose(path)[:, list(skeleton.RAW_TO_17)]
      yield Sequence(subject, action, subaction, name, pose, None)


def video_path(manual_dir, subject, name, camera_id):
  return pathlib.Path(manual_dir) / subject / 'Videos' / f'{name}.{camera_id}.mp4'


def require_videos(manual_dir, subjects):
  """Raises MissingDataError naming the first subject's missing Videos folder."""
  root = _dir(manual_dir)
  for subject in subjects:
    folder = root / subject / 'Videos'
    if not folder.is_dir():
      raise MissingDataError(f'{folder} is missing: image configs need the original videos.\n'
                             f'{LAYOUT_HELP}')


def read_video_frames(path, frame_indices):
  """Yields (index, RGB uint8 (H, W, 3)) for the requested frames, decoding in order.

  Stops after the last requested frame. Raises VideoError for a missing,
  unreadable or corrupt video, and logs a warning when it ends before the
  requested frames do.
  """
  wanted = sorted(set(int(i) for i in frame_indices))
  if not wanted:
    return
  try:
    container = av.open(str(path))
  except (av.error.FFmpegError, OSError) as e:
    raise VideoError(f'{path}: cannot open video ({e})') from e
  position, decoded = 0, 0
  with container:
    if not container.streams.video:
      raise VideoError(f'{path}: has no video stream')
    try:
      for index, frame in enumerate(container.decode(video=0)):
        decoded = index + 1
        if index == wanted[position]:
          yield index, frame.to_ndarray(format='rgb24')
          position += 1
          if position == len(wanted):
            return
    except av.error.FFmpegError as e:
      raise VideoError(f'{path}: corrupt video, decoding failed after {decoded} frames ({e})') from e
  if decoded == 0:
    raise VideoError(f'{path}: no decodable frames')
  logging.warning('%s has %d frames; requested frames from %d on are missing.',
                  path, decoded, wanted[position])
