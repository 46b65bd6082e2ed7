"""The hypothesis metrics of hpe_jax.evaluation.hypotheses against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from hpe_jax.evaluation import hypotheses
from tfds_h36m import cameras
from tfds_h36m import skeleton

Q = hypotheses.QUANTILES


@jax.jit
def _indicators(samples, target):
  return hypotheses.calibration_indicators(samples, hypotheses.sample_median(samples), target)


@pytest.mark.parametrize('k', [1, 2, 5, 50, 200])
def test_sorting_network_and_quantiles_equal_numpy(k):
  x = np.random.default_rng(k).normal(size=(k, 7, 3)).astype(np.float32)
  x[:, 0, 0] = 1.0  # ties
  np.testing.assert_array_equal(hypotheses._sorted_samples(jnp.asarray(x)), np.sort(x, axis=0))
  np.testing.assert_allclose(hypotheses.sample_median(jnp.asarray(np.moveaxis(x, 0, 1))),
                             np.median(x, axis=0), rtol=1e-6)
  np.testing.assert_allclose(hypotheses._quantiles(jnp.asarray(np.sort(x, axis=0)), Q),
                             np.quantile(x, Q, axis=0), rtol=1e-5, atol=1e-6)


def test_calibration_error_of_a_hand_made_case():
  # Every non-root joint's 5 samples: the origin, (+-10, 0, 0) and (0, +-20, 0): their
  # per-coordinate median is the origin and the radii are 0, 10, 10, 20, 20, so r_q is
  # 40 q up to q = 0.25, 10 up to 0.5, then 10 + 40 (q - 0.5) up to 20 at 0.75.
  offsets = np.array([[0, 20, 0], [10, 0, 0], [0, 0, 0], [-10, 0, 0], [0, -20, 0]], np.float32)
  samples = np.zeros((2, 5, 17, 3), np.float32)
  samples[:, :, 1:] = offsets[None, :, None]
  # Ground truth 5 mm from the median (r_q > 5 from q = 0.15) and 15 mm (from q = 0.65).
  target = np.zeros((2, 17, 3), np.float32)
  target[0, 1:] = [3, 4, 0]
  target[1, 1:] = [0, 0, -15]
  inside = np.asarray(_indicators(samples, target))
  assert inside.shape == (2, 16, 21)
  np.testing.assert_array_equal(inside[0], np.broadcast_to(Q >= 0.15 - 1e-9, (16, 21)))
  np.testing.assert_array_equal(inside[1], np.broadcast_to(Q >= 0.65 - 1e-9, (16, 21)))
  per_joint, error = hypotheses.calibration_error(inside.mean(axis=0))
  # |freq(q) - q|: q for q = 0 ... 0.10 (freq 0), |0.5 - q| for 0.15 ... 0.60, 1 - q for
  # 0.65 ... 1: 0.15 + (0.35 + 0.30 + ... + 0.05 + 0 + 0.05 + 0.10) + (0.35 + ... + 0).
  expected = (0.15 + 1.55 + 1.40) / 21
  np.testing.assert_allclose(per_joint, np.full(16, expected), rtol=1e-6)
  assert error == pytest.approx(expected, rel=1e-6)


def test_calibration_error_of_identical_samples_is_one_half():
  # All samples alike (temperature 0): every radius is 0, no ground truth is inside, even
  # one equal to the samples (r_q > distance is strict): the error is the mean of Q, 0.5.
  pose = np.random.default_rng(0).normal(0, 100, (3, 1, 17, 3)).astype(np.float32)
  samples = np.repeat(pose, 10, axis=1)
  for target in (pose[:, 0] + 30, pose[:, 0]):
    inside = np.asarray(_indicators(samples, target))
    assert not inside.any()
    assert hypotheses.calibration_error(inside.mean(axis=0))[1] == pytest.approx(0.5)


@pytest.mark.parametrize('scale', [1.0, 2.0])
def test_calibration_error_of_gaussian_samples(scale):
  # K = 100 samples N(0, 50^2 I) per joint, the ground truth N(0, (scale * 50)^2 I): its
  # distance to the centre is scale * 50 * chi(3); r_q, at the position q (K - 1) among
  # the samples' sorted radii 50 * chi(3), is about chi(3).ppf(p) with
  # p = (q (K - 1) + 1) / (K + 1) (an order statistic's expected level), so
  # freq(q) = chi(3).cdf(chi(3).ppf(p) / scale): about q (calibrated) for scale 1.
  k, rng = 100, np.random.default_rng(int(scale))
  samples = rng.normal(0, 50, (1000, k, 17, 3)).astype(np.float32)
  target = rng.normal(0, 50 * scale, (1000, 17, 3)).astype(np.float32)
  samples[:, :, 0] = target[:, 0] = 0
  _, error = hypotheses.calibration_error(np.mean(_indicators(samples, target), axis=0))
  chi = stats.chi(3)
  expected = np.abs(chi.cdf(chi.ppf((Q * (k - 1) + 1) / (k + 1)) / scale) - Q).mean()
  assert expected == pytest.approx(0.005 if scale == 1 else 0.353, abs=1e-3)
  assert error == pytest.approx(expected, abs=0.01)


def test_projection_equals_a_hand_computed_pinhole():
  # f = 1000 px, c = (500, 400) px, no distortion: (100, -50, 5000) mm -> (520, 390) px.
  camera = {'focal_length': np.array([[1000., 1000.]], np.float32),
            'center': np.array([[500., 400.]], np.float32),
            'radial_distortion': np.zeros((1, 3), np.float32),
            'tangential_distortion': np.zeros((1, 2), np.float32)}
  pose = np.zeros((1, 17, 3), np.float32)
  pose[0, 1] = [100, -50, 0]
  root = np.array([[0, 0, 5000]], np.float32)
  pixels = hypotheses.project_px(jnp.asarray(pose + root[:, None]), {
      k: v[:, None] for k, v in camera.items()})
  np.testing.assert_allclose(pixels[0, :2], [[500, 400], [520, 390]], rtol=1e-6)
  # Input 2D (3, 4) px from every joint's projection: 5 px; a second sample moved by
  # (-30, -40, 0) mm at 5 m depth, (-6, -8) px: 15 px.
  target = np.asarray(pixels) + np.array([3, 4], np.float32)
  assert hypotheses.reprojection_error_px(pose, root, camera, target) == pytest.approx([5.0])
  samples = np.stack([pose, pose + np.array([-30, -40, 0], np.float32)], axis=1)
  assert samples.shape == (1, 2, 17, 3)
  error = hypotheses.reprojection_error_px(samples, root, camera, target)
  np.testing.assert_allclose(error, [[5.0, 15.0]], rtol=1e-5)


def test_projection_with_distortion_equals_the_dataset_model():
  intrinsics = cameras.intrinsics_by_index()
  points = np.random.default_rng(0).normal([0, 0, 4500], [600, 600, 800], (4, 9, 3))
  expected = [cameras.project(points[i], cameras.load_camera('S1', cid))
              for i, cid in enumerate(skeleton.CAMERA_IDS)]
  got = hypotheses.project_px(jnp.asarray(points, jnp.float32),
                              {k: v[:, None] for k, v in intrinsics.items()})
  np.testing.assert_allclose(got, np.stack(expected), atol=1e-3)


def test_intrinsics_depend_only_on_the_camera():
  # camera_index (all the pose arrays hold) is enough: no subject has its own intrinsics.
  intrinsics = cameras.intrinsics_by_index()
  for subject in skeleton.TRAIN_SUBJECTS + skeleton.TEST_SUBJECTS:
    for i, camera in enumerate(cameras.load_cameras(subject)):
      for key, value in camera.intrinsics().items():
        if key in intrinsics:
          np.testing.assert_array_equal(intrinsics[key][i].astype(np.float32), value)


def test_bone_symmetry_of_a_hand_made_skeleton():
  assert hypotheses.LEFT_BONES == ((0, 4), (4, 5), (5, 6), (8, 11), (11, 12), (12, 13))
  assert hypotheses.RIGHT_BONES == ((0, 1), (1, 2), (2, 3), (8, 14), (14, 15), (15, 16))
  # A mirror-symmetric pose: centre joints on x = 0, each left joint the mirror of its
  # right joint.
  pose = np.random.default_rng(0).normal(0, 200, (17, 3)).astype(np.float32)
  pose[[0, 7, 8, 9, 10], 0] = 0
  pose[list(skeleton.LEFT_JOINTS)] = pose[list(skeleton.RIGHT_JOINTS)] * [-1, 1, 1]
  assert float(hypotheses.bone_symmetry_error_mm(pose)) == pytest.approx(0, abs=1e-3)
  # The left forearm 10 mm longer: one pair of six differs by 10 mm.
  longer = pose.copy()
  forearm = pose[13] - pose[12]
  longer[13] = pose[13] + 10 * forearm / np.linalg.norm(forearm)
  both = hypotheses.bone_symmetry_error_mm(np.stack([pose, longer]))
  np.testing.assert_allclose(both, [0, 10 / 6], atol=1e-3)
