"""predict's outputs: poses as .npz, .json, .csv or .bvh, and pictures as .png, .gif or .mp4.

Every file of a run is written to a temporary file beside its path (`staged`) and renamed
to its path only once all of them are written, so a run that fails leaves none of them.

- .npz: the arrays as they are (no pickles: strings are unicode arrays).
- .json: strict JSON (`allow_nan=False`): one object with the same keys as lists; a
  missing (non-finite) number is null.
- .csv: one row per (frame, person): frame, image_id, time_s (the columns the run has),
  person_id, low_confidence, then root_x_mm, root_y_mm, root_z_mm (the root's position in
  the camera) and <Joint>_x_mm, <Joint>_y_mm, <Joint>_z_mm for the 17 H36M joints
  (root-relative, camera frame); hypotheses are not in the CSV.
- .bvh: the longest track as an animated H36M-17 skeleton (`hpe_jax.inference.bvh`: rest
  bone lengths of the track, joint rotations solved from the positions), at --fps (else
  Human3.6M's 50); frames without the person are left out.
- .png: the first poses side by side (with their hypotheses); .gif and .mp4 (H.264 via
  PyAV): one frame per pose, at most MAX_ANIMATION_FRAMES (evenly spaced, the playback
  rate lowered to keep the real duration).
"""

import csv
import fractions
import json
import os

from absl import logging
import numpy as np

from hpe_jax.inference import bvh
from hpe_jax.inference import keypoints as keypoints_lib
from tfds_h36m import skeleton

POSE_EXTENSIONS = ('.npz', '.json', '.csv', '.bvh')
PICTURE_EXTENSIONS = ('.png', '.gif', '.mp4')
MAX_ANIMATION_FRAMES = 500
PNG_POSES = 4
ANIMATION_PX = 480
_CSV_LEADING = ('frame', 'image_id', 'time_s', 'person_id', 'low_confidence')
# Bytes a writer holds per number of an array while it writes it, besides the array: .json's
# Python floats and lists (measured: 67 per float32 of hypotheses (100, 1000, 17, 3)); the
# other formats write the arrays as they are.
_WRITE_BYTES_PER_NUMBER = {'.json': 70}


def check_path(path, allowed, what):
  """A UsageError unless `path` has an extension in `allowed` and is not a directory."""
  if os.path.isdir(path):
    raise keypoints_lib.UsageError(f'The {what} path {path} is a directory; give a file name '
                                   f'ending in {", ".join(allowed)}.')
  ext = os.path.splitext(path)[1].lower()
  if ext not in allowed:
    raise keypoints_lib.UsageError(f'Unsupported {what} file {path}: extension '
                                   f'{ext or "(none)"!r}; use {", ".join(allowed)}.')
  return ext


def write_bytes_per_number(paths):
  """The most bytes per array number that writing one of `paths` holds (memory estimates)."""
  return max((_WRITE_BYTES_PER_NUMBER.get(os.path.splitext(p)[1].lower(), 0) for p in paths),
             default=0)


def _jsonable(value):
  """A JSON-ready list or scalar; non-finite floats become None."""
  array = np.asarray(value)
  if array.dtype.kind == 'f':
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()
  return array.tolist()


def write_json(path, outputs):
  with open(path, 'w', encoding='utf-8') as f:
    json.dump({k: _jsonable(v) for k, v in outputs.items()}, f, allow_nan=False)


def write_npz(path, outputs):
  with open(path, 'wb') as f:
    np.savez(f, **outputs)


def write_csv(path, outputs):
  """One row per (frame, person); the module docstring names the columns."""
  leading = [k for k in _CSV_LEADING if k in outputs]
  joints = [f'{name}_{axis}_mm' for name in skeleton.JOINT_NAMES for axis in 'xyz']
  poses = np.asarray(outputs['poses_3d_mm'], np.float64).reshape(len(outputs['frame']), -1)
  if 'root_3d_mm' in outputs:  # the root's position in the camera, before the pose's joints
    joints = [f'root_{axis}_mm' for axis in 'xyz'] + joints
    poses = np.concatenate([np.asarray(outputs['root_3d_mm'], np.float64), poses], axis=1)
  columns = [np.asarray(outputs[k]) for k in leading]
  with open(path, 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f)
    writer.writerow(leading + joints)
    for i, pose in enumerate(poses):
      cells = [_cell(c[i]) for c in columns]
      writer.writerow(cells + [f'{v:.2f}' if np.isfinite(v) else '' for v in pose])


def _cell(value):
  if isinstance(value, (bool, np.bool_)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    return f'{value:.6g}' if np.isfinite(value) else ''
  return value


def longest_track(outputs):
  """(person id, the rows of that person's poses in frame order, number of tracks)."""
  people, counts = np.unique(outputs['person_id'], return_counts=True)
  person = people[np.argmax(counts)]
  rows = np.flatnonzero(outputs['person_id'] == person)
  return person, rows[np.argsort(np.asarray(outputs['frame'])[rows], kind='stable')], len(people)


def write_bvh(path, outputs):
  """The longest track as BVH (`hpe_jax.inference.bvh`)."""
  person, rows, num_tracks = longest_track(outputs)
  if num_tracks > 1:
    logging.info('%s holds person %d (%d poses), the longest of %d tracks.', path, person,
                 len(rows), num_tracks)
  fps = float(outputs['fps']) if 'fps' in outputs else float(skeleton.FPS)
  bvh.write_bvh(path, np.asarray(outputs['poses_3d_mm'])[rows], fps=fps)


def write_poses(path, tmp, outputs):
  """Writes the outputs to `tmp` in the format of `path`'s extension."""
  writer = {'.npz': write_npz, '.json': write_json, '.csv': write_csv, '.bvh': write_bvh}
  writer[os.path.splitext(path)[1].lower()](tmp, outputs)


def animation_frames(poses_mm, titles, size_px=ANIMATION_PX):
  """RGB frames (size_px, size_px, 3) uint8 of the poses, drawn as figures.save_animation
  draws them (shared axes)."""
  from hpe_jax.evaluation import figures  # pylint: disable=g-import-not-at-top  # matplotlib: slow
  fig = figures.new_figure(size_px, size_px)
  ax = fig.add_subplot(1, 1, 1, projection='3d')
  limit = figures._shared_limit(poses_mm)  # pylint: disable=protected-access
  for pose, title in zip(poses_mm, titles):
    ax.cla()
    figures.draw_skeleton(ax, pose, linewidth=2.5)
    figures._setup_axes(ax, limit, fontsize=7, zoom=1.1)  # pylint: disable=protected-access
    ax.set_title(title, fontsize=9)
    yield figures.to_array(fig)


def write_mp4(path, poses_mm, titles, fps):
  """An H.264 (or MPEG-4 part 2 where PyAV lacks it) video of the poses at `fps`."""
  import av  # pylint: disable=g-import-not-at-top  # pictures only
  codec = 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'
  with av.open(path, mode='w', format='mp4') as container:
    stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1001))
    stream.width = stream.height = ANIMATION_PX
    stream.pix_fmt = 'yuv420p'
    for rgb in animation_frames(poses_mm, titles):
      for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def animation_subset(num_poses):
  """Indices of the poses an animation shows: all, or MAX_ANIMATION_FRAMES evenly spaced."""
  return np.unique(np.linspace(0, num_poses - 1, min(num_poses, MAX_ANIMATION_FRAMES))
                   .round().astype(int))


def write_picture(path, tmp, poses_mm, titles, *, hypotheses_mm=None, fps=10.0):
  """The picture of `path`'s extension: .png (the first poses), .gif or .mp4 (poses as given,
  played at fps)."""
  from hpe_jax.evaluation import figures  # pylint: disable=g-import-not-at-top  # matplotlib: slow
  ext = os.path.splitext(path)[1].lower()
  if ext == '.png':
    k = min(PNG_POSES, len(poses_mm))
    hyps = hypotheses_mm[:k] if hypotheses_mm is not None else None
    figures.save_png(figures.pose_panels(poses_mm[:k], titles[:k], hypotheses_mm=hyps), tmp)
  elif ext == '.gif':
    figures.save_animation(poses_mm, tmp, fps=fps, titles=titles)
  else:
    write_mp4(tmp, poses_mm, titles, fps)
