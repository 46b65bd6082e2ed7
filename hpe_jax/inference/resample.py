"""Resampling a track in time, for a temporal lifter fed at another frame rate.

A temporal lifter's window spans `window` frames at the training data's rate (50 fps); at
another rate the same frames span another time. `through_rate` moves a track's values
onto a uniform grid at the lifter's rate (linear interpolation per coordinate; the grid's
last point, under one step past the track's end, continues its last two frames linearly),
runs the lifter there and interpolates its answers back to the track's own times. Linear
motion comes back exactly; frame gaps in a track are filled on the way.

Hypotheses are not resampled: samples of neighbouring grid frames are independent draws,
and interpolating between them would narrow their spread, so `hpe_jax.predict` refuses
--resample with --num_hypotheses.

Times must be finite and increasing and the rate positive and finite (a UsageError, a
ValueError, otherwise: frames / fps of fps = inf are all 0 s). The grid spans the track's
time, so a tiny fps (or a gap of many frames) makes it long: `through_rate` estimates its
memory first and refuses, in one line, a grid over the budget (`hpe_jax.memory`).
"""

import numpy as np

from hpe_jax import memory
from hpe_jax.inference import tracks

# Tolerance (in frames of the grid) for a track's span that is a whole number of grid steps.
_SPAN_TOLERANCE = 1e-6
# Bytes held per value of a grid frame while it is interpolated, lifted and interpolated
# back: 4.6-5.0 kB per frame of 17 x 2 keypoints lifted by the packaged lifter (grids of
# 2e5 and 8e5 frames), about 150 per value.
BYTES_PER_GRID_VALUE = 160


def grid_size(times_s, rate_hz):
  """The number of frames of `uniform_times(times_s, rate_hz)`, without making them; a
  UsageError for times that are not finite and increasing or a rate that is not positive
  and finite."""
  rate_hz = tracks.check_rate(rate_hz, 'The resampling rate')
  times_s = tracks.check_times(times_s, 'Resampling')
  steps = np.ceil((times_s[-1] - times_s[0]) * rate_hz - _SPAN_TOLERANCE)
  return int(max(steps, 0)) + 1


def uniform_times(times_s, rate_hz):
  """Times (K,) s of a `rate_hz` grid from the first of increasing `times_s` (T,) to at or
  just past the last (so that every time of the track lies within the grid)."""
  size = grid_size(times_s, rate_hz)
  return float(times_s[0]) + np.arange(size) / float(rate_hz)


def interpolate(values, times_s, new_times_s):
  """values (T, ...) at increasing times_s (T,) -> (K, ...) at new_times_s (K,): np.interp
  per coordinate, continued linearly from the two edge samples beyond the ends (the grid
  overshoots the track by under one step; one sample stays constant)."""
  values = np.asarray(values, np.float64)
  times_s, new_times_s = np.asarray(times_s, np.float64), np.asarray(new_times_s, np.float64)
  flat = values.reshape(len(values), -1)
  out = np.stack([np.interp(new_times_s, times_s, flat[:, i]) for i in range(flat.shape[1])],
                 axis=-1)
  if len(times_s) > 1:
    for beyond, (a, b) in ((new_times_s < times_s[0], (0, 1)),
                           (new_times_s > times_s[-1], (-2, -1))):
      slope = (flat[b] - flat[a]) / (times_s[b] - times_s[a])
      out[beyond] = flat[a] + (new_times_s[beyond] - times_s[a])[:, None] * slope
  return out.reshape((len(new_times_s),) + values.shape[1:])


def check_grid_memory(times_s, rate_hz, values_per_frame, what='a track', budget=None):
  """A memory.BudgetError where the grid of a track at times_s (T,) s holding
  values_per_frame values per frame would not fit the budget (GB, `memory.budget_gb`)."""
  size = grid_size(times_s, rate_hz)
  span = float(times_s[-1] - times_s[0])
  memory.check(size * values_per_frame * BYTES_PER_GRID_VALUE,
               f'Resampling {what} ({len(times_s)} frames over {span:g} s) onto {size} frames '
               f'at {rate_hz:g} fps would', 'check the frame rate (--fps) and frame numbers',
               budget)


def through_rate(fn, values, times_s, rate_hz, *, budget=None):
  """fn run at `rate_hz`: values (T, ...) at times_s (T,) s are interpolated onto the
  `uniform_times` grid (K,), fn maps those (K, ...) to answers (K, ...), which come back
  interpolated to times_s (T, ...). A grid over the memory budget (GB, `memory.budget_gb`)
  is refused before it is made (`check_grid_memory`)."""
  check_grid_memory(times_s, rate_hz, np.prod(np.shape(values)[1:]), budget=budget)
  grid_s = uniform_times(times_s, rate_hz)
  return interpolate(fn(interpolate(values, times_s, grid_s)), grid_s, times_s)
