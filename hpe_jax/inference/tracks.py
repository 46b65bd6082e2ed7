"""People over time: keypoints as rows of (frame, person), grouped into one track per person.

A person's id comes from the input: a tracker's `track_id` where the input has one for
every detection; otherwise (AlphaPose without tracking, OpenPose, COCO results without
track ids, mmpose) `link` makes them, matching each frame's detections to the tracks of
the frames before by their keypoints. Frames with nobody have no rows. Rows are kept
sorted by person, then frame, so a track is a contiguous slice.
"""

import dataclasses
import math
from typing import Any, Optional

import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib


@dataclasses.dataclass
class Rows:
  """Keypoints, one row per (frame, person).

  keypoints (M, J, 2) px, NaN where a joint is missing; confidences (M, J) or None;
  frame (M,) int, the frame's index in the input (time = frame / fps); person (M,) int;
  num_frames: the input's frame count, frames with nobody included; image_id (M,) the
  input's own name of each row's frame, or None; focal_length and center None, (2,) or
  (M, 2) px; layout: the `layouts.Layout` of the keypoints' joints (what the reader read:
  the --format's, or the one an mmpose file names), or None.
  """
  keypoints: np.ndarray
  confidences: Optional[np.ndarray]
  frame: np.ndarray
  person: np.ndarray
  num_frames: int
  image_id: Optional[np.ndarray] = None
  focal_length: Optional[np.ndarray] = None
  center: Optional[np.ndarray] = None
  layout: Optional[Any] = None

  def __len__(self):
    return len(self.frame)

  def take(self, index):
    """The rows `index` (an index array or a boolean mask), in that order."""
    # Intrinsics of shape (2,) hold for every row; (M, 2) are per row.
    per_row = lambda a: a if a is None or np.ndim(a) < 2 else a[index]
    return dataclasses.replace(
        self, keypoints=self.keypoints[index],
        confidences=None if self.confidences is None else self.confidences[index],
        frame=self.frame[index], person=self.person[index],
        image_id=None if self.image_id is None else self.image_id[index],
        focal_length=per_row(self.focal_length), center=per_row(self.center))


def single_person(keypoints, confidences=None, focal_length=None, center=None):
  """Rows of one person seen in every frame of (N, J, 2) keypoints."""
  n = len(keypoints)
  return Rows(keypoints, confidences, np.arange(n), np.zeros(n, np.int64), n,
              focal_length=focal_length, center=center)


def sort(rows):
  """The rows by person, then frame."""
  return rows.take(np.lexsort((rows.frame, rows.person)))


def duplicates(rows):
  """(person, frame) pairs that occur more than once (a list of tuples)."""
  pairs = np.stack([rows.person, rows.frame], axis=-1)
  unique, counts = np.unique(pairs, axis=0, return_counts=True)
  return [tuple(int(v) for v in p) for p in unique[counts > 1]]


# A detection whose keypoints lie farther than this from a track's last ones (mean distance
# of the keypoints both have, in units of the larger bounding-box diagonal of the two) does
# not continue it: a person moves far less between two frames (walking at 30 fps, about
# 0.03), and someone else is rarely closer (the one-to-one assignment keeps two people in
# one frame apart whatever their distance).
LINK_GATE = 0.5


def _extents_px(keypoints):
  """Bounding-box diagonals (M,) px of keypoints (M, J, 2), NaN joints left out (0: none)."""
  present = np.all(np.isfinite(keypoints), axis=-1, keepdims=True)
  low = np.where(present, keypoints, np.inf).min(axis=1)
  high = np.where(present, keypoints, -np.inf).max(axis=1)
  with np.errstate(invalid='ignore'):
    diagonal = np.linalg.norm(high - low, axis=-1)
  return np.nan_to_num(diagonal, nan=0.0, posinf=0.0)


def _link_costs(tracks_px, track_extents, detections_px, detection_extents):
  """(T, D) mean distance of the keypoints a track's last detection and a detection both
  have, over the larger extent of the two (at least 1 px); inf where they share none."""
  distance = np.linalg.norm(tracks_px[:, None] - detections_px[None], axis=-1)  # (T, D, J)
  shared = np.isfinite(distance)
  count = shared.sum(axis=-1)
  mean = np.where(shared, distance, 0.0).sum(axis=-1) / np.maximum(count, 1)
  scale = np.maximum(np.maximum(track_extents[:, None], detection_extents[None]), 1.0)
  return np.where(count > 0, mean / scale, np.inf)


def link(keypoints, frames):
  """Person ids (M,) of detections no tracker labelled: keypoints (M, J, 2) px (NaN:
  missing), frames (M,). Frame by frame in time order, each frame's detections are matched
  one to one to the tracks so far (the least total cost, scipy's linear_sum_assignment;
  `_link_costs`); a detection left unmatched, or costing more than LINK_GATE, begins a new
  track. A track continues from its latest detection, after any number of empty frames.
  Ids number the tracks in order of appearance (within a frame, the input's order)."""
  from scipy import optimize  # pylint: disable=g-import-not-at-top  # only where used
  kp = np.asarray(keypoints, np.float64)
  frames = np.asarray(frames)
  extents = _extents_px(kp)
  person = np.empty(len(kp), np.int64)
  latest = []  # row of each track's latest detection
  order = np.argsort(frames, kind='stable')
  for rows_of in np.split(order, np.flatnonzero(np.diff(frames[order])) + 1):
    matched = {}
    if latest:
      cost = _link_costs(kp[latest], extents[latest], kp[rows_of], extents[rows_of])
      allowed = cost <= LINK_GATE
      # Disallowed pairs cost more than any set of allowed ones: most matches first.
      track, detection = optimize.linear_sum_assignment(
          np.where(allowed, cost, LINK_GATE * (len(rows_of) + 1) + 1))
      matched = {d: t for t, d in zip(track, detection) if allowed[t, d]}
    for k, row in enumerate(rows_of):
      if k in matched:
        latest[matched[k]] = row
      else:
        matched[k] = len(latest)
        latest.append(row)
      person[row] = matched[k]
  return person


def slices(rows):
  """{person: slice} of each track in rows sorted by person, then frame."""
  if not len(rows):
    return {}
  starts = np.flatnonzero(np.r_[True, rows.person[1:] != rows.person[:-1]])
  ends = np.r_[starts[1:], len(rows)]
  return {int(rows.person[s]): slice(int(s), int(e)) for s, e in zip(starts, ends)}


def fill_missing(points, rows):
  """Missing (NaN) joints of sorted rows' points (M, J, D) filled per track by linear
  interpolation in frame (the nearest present value before the first and after the last).

  Returns (filled, never): never is {person: [joint indices]} of joints missing in every
  frame of that person's track (left NaN).
  """
  filled = np.array(points, np.float64)
  never = {}
  for person, rows_of in slices(rows).items():
    track, frames = filled[rows_of], rows.frame[rows_of]
    present = np.all(np.isfinite(track), axis=-1)  # (T, J)
    for j in np.flatnonzero(~present.all(axis=0)):
      ok = present[:, j]
      if not ok.any():
        never.setdefault(person, []).append(int(j))
        continue
      for d in range(track.shape[-1]):
        track[~ok, j, d] = np.interp(frames[~ok], frames[ok], track[ok, j, d])
    filled[rows_of] = track
  return filled, never


def per_track(fn, values, rows):
  """fn(values of one track, its frames) -> same shape, applied to every track of sorted rows."""
  out = np.array(values, np.float64)
  for rows_of in slices(rows).values():
    out[rows_of] = fn(out[rows_of], rows.frame[rows_of])
  return out


def track_values(values, rows):
  """[(values of one track, its frames)] for every track of sorted rows."""
  return [(values[s], rows.frame[s]) for s in slices(rows).values()]


def check_rate(rate_hz, name='fps'):
  """A UsageError (a ValueError) unless rate_hz is a positive finite number: times in
  seconds made from frames at it would be 0 for every frame, infinite or NaN."""
  try:
    ok = math.isfinite(float(rate_hz)) and float(rate_hz) > 0
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise keypoints_lib.UsageError(f'{name} must be a positive finite number (Hz), got '
                                   f'{rate_hz!r}.')
  return float(rate_hz)


def times_s(frames, fps):
  """Times (s) of frame indices at `fps` (`check_rate`); a UsageError where a time is not
  finite (a tiny fps)."""
  times = np.asarray(frames, np.float64) / check_rate(fps)
  if not np.all(np.isfinite(times)):
    raise keypoints_lib.UsageError(f'fps={fps!r} makes frame {int(np.max(frames))} an '
                                   'infinite time; give the input\'s frame rate.')
  return times


def check_times(seconds, what):
  """A UsageError (a ValueError) unless `seconds` (T,) are finite and increasing, as a
  track's frames / fps are for a positive finite fps; returns them as float64."""
  times = np.asarray(seconds, np.float64)
  if times.ndim != 1:
    raise keypoints_lib.UsageError(f'{what}: times must have shape (T,), got {times.shape}.')
  if not np.all(np.isfinite(times)):
    raise keypoints_lib.UsageError(f'{what}: times must be finite, got NaN or inf (frames / '
                                   'fps of a positive finite fps are).')
  steps = np.flatnonzero(~(np.diff(times) > 0))
  if len(steps):
    a, b = times[steps[0]], times[steps[0] + 1]
    raise keypoints_lib.UsageError(f'{what}: times must increase; got {a:g} s then {b:g} s '
                                   '(frames / fps of a positive finite fps do).')
  return times
