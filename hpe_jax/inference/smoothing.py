"""Temporal smoothing of one person's keypoints or poses: the One-Euro filter, and jitter.

One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): an exponential low-pass filter
whose cutoff frequency rises with the speed, so slow motion is smoothed hard (little
jitter) and fast motion lightly (little lag). Per joint, with dt the time since the
previous sample (s):

  alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))
  speed = |low-pass(x - x_hat_prev) / dt| at d_cutoff (units/s, the joint's 2D or 3D
    velocity's magnitude)
  fc = min_cutoff + beta * speed  (Hz)
  x_hat = x_hat_prev + alpha(fc) (x - x_hat_prev)

Jitter: the mean magnitude of the joints' second differences over consecutive frames,
|x[t+1] - 2 x[t] + x[t-1]| (px/frame^2 in 2D, mm/frame^2 in 3D).
"""

import math

import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import tracks

D_CUTOFF_HZ = 1.0
# Defaults of predict's --smooth: on the synthetic motions at 50 fps (tests/test_smoothing.py),
# a clean sequence moves by under 1 mm per joint on average (walking: 1.7 mm) and the jitter
# of 10 mm noise drops by about 45%. 2D speeds in px are about 4x smaller than in mm (a
# person 5 m from a Human3.6M camera), hence the 2D coefficient.
MIN_CUTOFF_HZ = 1.0
BETA_2D_PER_PX = 0.4
BETA_3D_PER_MM = 0.1


def _alpha(cutoff_hz, dt_s):
  return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff_hz * dt_s))


def one_euro(values, times_s, *, min_cutoff_hz, beta, d_cutoff_hz=D_CUTOFF_HZ):
  """One track's values (T, J, D) at increasing times (T,) s, filtered; the first is kept.

  beta is in 1/unit of the values (1/px, 1/mm): the cutoff rises by beta Hz per unit/s of
  a joint's speed. Times that are not finite and increasing (frames / fps of a zero or
  infinite fps), cutoffs that are not positive and finite and a negative beta are a
  UsageError (a ValueError).
  """
  tracks.check_rate(min_cutoff_hz, 'The One-Euro min_cutoff_hz')
  tracks.check_rate(d_cutoff_hz, 'The One-Euro d_cutoff_hz')
  if not (math.isfinite(beta) and beta >= 0):
    raise keypoints_lib.UsageError(f'The One-Euro beta must be a finite number >= 0, got '
                                   f'{beta!r}.')
  values = np.asarray(values, np.float64)
  times_s = tracks.check_times(times_s, 'One-Euro smoothing')
  out = np.empty_like(values)
  if not len(values):
    return out
  out[0] = x_hat = values[0]
  dx_hat = np.zeros_like(values[0])
  for t in range(1, len(values)):
    dt = times_s[t] - times_s[t - 1]
    dx = (values[t] - x_hat) / dt
    dx_hat = dx_hat + _alpha(d_cutoff_hz, dt) * (dx - dx_hat)
    speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True)
    alpha = _alpha(min_cutoff_hz + beta * speed, dt)
    out[t] = x_hat = x_hat + alpha * (values[t] - x_hat)
  return out


def second_differences(values, frames):
  """|x[t+1] - 2 x[t] + x[t-1]| (n, J) over the triples of consecutive frames of one track."""
  values = np.asarray(values, np.float64)
  frames = np.asarray(frames)
  if len(values) < 3:
    return np.zeros((0,) + values.shape[1:-1])
  consecutive = (frames[1:-1] - frames[:-2] == 1) & (frames[2:] - frames[1:-1] == 1)
  accel = values[2:] - 2 * values[1:-1] + values[:-2]
  return np.linalg.norm(accel[consecutive], axis=-1)


def jitter(tracks):
  """Mean second-difference magnitude over the tracks' (values (T, J, D), frames (T,)) pairs
  (units/frame^2); NaN when no track has three consecutive frames."""
  parts = [second_differences(v, f) for v, f in tracks]
  total = sum(float(p.sum()) for p in parts)
  count = sum(p.size for p in parts)
  return total / count if count else float('nan')
