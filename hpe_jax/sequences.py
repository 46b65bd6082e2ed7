"""Pose sequences, the one place for them: frame order, windows for temporal models, jitter.

A sequence is one (subject, action, subaction, camera) in frame order. Temporal models
read a window of 2D poses around each frame (centred, or ending at the frame for the
causal variant); at a sequence's ends the window repeats the edge frame, as
VideoPose3D pads its input. A window never crosses into another sequence: rows carry
the first and last row of their sequence (`bounds`), and the window's rows are clipped
to them. Jitter is the mean joint acceleration (mm / frame^2) of a sequence of poses.
The windowing is traceable (training gathers windows on the devices); the rest is NumPy.
"""

import jax.numpy as jnp
import numpy as np

from hpe_jax import modalities

SEQUENCE_KEYS = ('subject_number', 'action', 'subaction', 'camera_index')
SEQUENCE_FIELDS = SEQUENCE_KEYS + ('frame',)


def check_window(window):
  """Raises ValueError unless `window` is a power of 3 of at least 9 (the temporal net's
  stages each take 3 frames, or groups of frames, to 1)."""
  w = int(window)
  while w > 1 and w % 3 == 0:
    w //= 3
  if w != 1 or window < 9:
    raise ValueError(f'model.window must be a power of 3 of at least 9 (27, 81, 243), '
                     f'got {window}.')


def window_offsets(window, causal):
  """Frame offsets of a window relative to its frame: -(T-1)..0 when `causal` (no future
  frame), else -(T//2)..T//2."""
  if causal:
    return np.arange(-(window - 1), 1, dtype=np.int32)
  return np.arange(-(window // 2), window // 2 + 1, dtype=np.int32)


def config_window_offsets(config):
  """The window offsets of a config's temporal model (`model.window`, `model.causal`), or
  None for a single-frame one."""
  if not modalities.is_temporal(config):
    return None
  return window_offsets(config.model.window, config.model.causal)


def frame_order(arrays):
  """The rows of `arrays` (with SEQUENCE_FIELDS) sorted by sequence, then frame."""
  return np.lexsort([np.asarray(arrays[k]) for k in reversed(SEQUENCE_FIELDS)])


def bounds(arrays):
  """(N, 2) int32: the first and last row of each row's sequence, for rows in
  `frame_order` (every sequence's rows contiguous)."""
  return run_bounds(np.stack([np.asarray(arrays[k], np.int64) for k in SEQUENCE_KEYS], axis=1))


def run_bounds(key):
  """(N, 2) int32: the first and last row of each run of equal rows of `key` (N,) or (N, K)."""
  key = np.asarray(key).reshape(len(key), -1)
  n = len(key)
  starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
  ends = np.r_[starts[1:], n] - 1
  sequence = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
  return np.stack([starts[sequence], ends[sequence]], axis=1).astype(np.int32)


def frame_step(arrays, row_bounds):
  """The most common frame-number step between consecutive rows of a sequence (1 for
  every frame at 50 fps; 5 for every 5th), for rows in `frame_order`."""
  same = row_bounds[1:, 0] == row_bounds[:-1, 0]
  steps = np.diff(np.asarray(arrays['frame']))[same]
  if not len(steps):
    return 1
  values, counts = np.unique(steps, return_counts=True)
  return int(values[np.argmax(counts)])


def window_rows(rows, row_bounds, offsets):
  """(B, T) rows of the windows of `rows` (B,): rows + offsets, clipped to each row's
  sequence `row_bounds` (B, 2), so the edges repeat the first or last frame. Traceable."""
  rows = jnp.asarray(rows)[:, None] + jnp.asarray(offsets)[None, :]
  return jnp.clip(rows, row_bounds[:, :1], row_bounds[:, 1:])


def window_rows_by_order(order, sorted_bounds, offsets):
  """rows (R,) -> their windows' rows (R, T), for an array whose rows are not contiguous
  per sequence: `order` lists its rows sequence by sequence in frame order, and
  `sorted_bounds` (N, 2) are the `bounds` of the rows so sorted. On the host."""
  position = np.empty_like(order)
  position[order] = np.arange(len(order))

  def rows_of(rows):
    sorted_rows = position[rows]
    return order[np.asarray(window_rows(sorted_rows, sorted_bounds[sorted_rows], offsets))]
  return rows_of


def gather_windows(pose, rows, row_bounds, offsets):
  """(B, T, ...) windows of per-row `pose` (N, ...) around `rows` (B,). Traceable."""
  return jnp.take(pose, window_rows(rows, row_bounds, offsets), axis=0)


def sequence_windows(pose, offsets):
  """(N, T, ...) windows of every frame of one sequence `pose` (N, ...) in frame order."""
  n = len(pose)
  row_bounds = jnp.broadcast_to(jnp.asarray([0, n - 1], jnp.int32), (n, 2))
  return gather_windows(pose, jnp.arange(n), row_bounds, offsets)


def acceleration_mm(poses_mm, row_bounds):
  """Per-row mean joint acceleration |p[t+1] - 2 p[t] + p[t-1]| (mm / frame^2) of poses
  (N, J, 3) in frame order, NaN where a row has no neighbour on both sides in its
  sequence. Traceable."""
  n = poses_mm.shape[0]
  rows = jnp.arange(n)
  prev = jnp.take(poses_mm, jnp.maximum(rows - 1, 0), axis=0)
  nxt = jnp.take(poses_mm, jnp.minimum(rows + 1, n - 1), axis=0)
  accel = jnp.mean(jnp.linalg.norm(nxt - 2.0 * poses_mm + prev, axis=-1), axis=-1)
  interior = (rows > row_bounds[:, 0]) & (rows < row_bounds[:, 1])
  return jnp.where(interior, accel, jnp.nan)
