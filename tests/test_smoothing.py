"""The One-Euro filter and the jitter measure, on synthetic motion with detector-like noise."""

import numpy as np
import pytest

from hpe_jax.inference import smoothing
from hpe_jax.inference import tracks
from tfds_h36m.synthetic import motion

FPS = 50.0


@pytest.fixture(scope='module')
def clean():
  """Root-relative joints (200, 17, 3) mm of a synthetic 'Directions' sequence at 50 fps."""
  pose = motion.generate_sequence(np.random.default_rng(3), motion.subject_bone_lengths('S9'),
                                  'Directions', 200, fps=FPS)
  return (pose - pose[:, :1]).astype(np.float64)


def _filter(values, **kwargs):
  times = np.arange(len(values)) / FPS
  return smoothing.one_euro(values, times, min_cutoff_hz=smoothing.MIN_CUTOFF_HZ,
                            beta=kwargs.get('beta', smoothing.BETA_3D_PER_MM))


def test_jitter_is_the_mean_second_difference():
  frames = np.array([0, 1, 2, 3, 5, 6, 7])  # a gap: only (0, 1, 2), (1, 2, 3), (5, 6, 7)
  values = np.zeros((7, 2, 3))
  values[2, 0, 0] = 4.0  # joint 0's second differences: 4 at frame 1, -8 at 2, 0 at 6 (the
  # one at frame 3 spans the gap and is left out), over 3 triples x 2 joints.
  assert smoothing.jitter([(values, frames)]) == pytest.approx((4 + 8 + 0) / (3 * 2))
  assert np.isnan(smoothing.jitter([(values[:2], frames[:2])]))
  constant_speed = np.arange(10)[:, None, None] * np.ones((10, 17, 2))
  assert smoothing.jitter([(constant_speed, np.arange(10))]) == 0


def test_smoothing_lowers_the_jitter_of_noisy_poses(clean):
  noisy = clean + np.random.default_rng(0).normal(0, 10, clean.shape)  # detector-like, 10 mm
  smoothed = _filter(noisy)
  frames = np.arange(len(clean))
  before = smoothing.jitter([(noisy, frames)])
  after = smoothing.jitter([(smoothed, frames)])
  assert after < 0.65 * before, (before, after)
  error = lambda x: np.linalg.norm(x - clean, axis=-1).mean()
  assert error(smoothed) < 0.8 * error(noisy)


def test_a_clean_smooth_sequence_stays_within_1_mm(clean):
  smoothed = _filter(clean)
  np.testing.assert_array_equal(smoothed[0], clean[0])
  assert np.linalg.norm(smoothed - clean, axis=-1).mean() < 1.0
  frames = np.arange(len(clean))
  assert smoothing.jitter([(smoothed, frames)]) <= smoothing.jitter([(clean, frames)]) + 0.05


def test_the_filter_follows_time_not_rows():
  # A step seen at 50 fps, and the same samples with every other frame dropped (25 fps
  # timestamps): at the same time after the step, both have come equally far.
  values = np.zeros((41, 1, 1))
  values[1:] = 100.0
  times = np.arange(41) / FPS
  dense = smoothing.one_euro(values, times, min_cutoff_hz=1.0, beta=0.0)
  sparse = smoothing.one_euro(values[::2], times[::2], min_cutoff_hz=1.0, beta=0.0)
  assert abs(dense[-1, 0, 0] - sparse[-1, 0, 0]) < 3.0
  with pytest.raises(ValueError, match='times must increase'):
    smoothing.one_euro(values[:3], np.array([0.0, 0.1, 0.1]), min_cutoff_hz=1.0, beta=0.0)


def test_tracks_are_filtered_apart():
  # Two people, interleaved in frame order: each is filtered along its own frames only.
  keypoints = np.concatenate([np.full((5, 17, 2), 100.0), np.full((5, 17, 2), 900.0)])
  rows = tracks.sort(tracks.Rows(keypoints, None, np.r_[np.arange(5), np.arange(5)],
                                 np.r_[np.zeros(5, int), np.ones(5, int)], 5))
  out = tracks.per_track(lambda v, f: smoothing.one_euro(v, f / FPS, min_cutoff_hz=1.0,
                                                         beta=0.0), rows.keypoints, rows)
  np.testing.assert_array_equal(out, keypoints)  # constant per track: untouched, not mixed
