"""Lens distortion of a calibrated camera (hpe_jax/inference/camera.py): OpenCV's model by
hand and against Human3.6M's radial terms, its inverse, and coefficients that are refused."""

import dataclasses
import logging

import numpy as np
import pytest

from hpe_jax.inference import camera as camera_lib
from tfds_h36m import cameras

WIDE = camera_lib.distortion_coefficients([-0.28, 0.09, 0.001, -0.0007, -0.015])


def test_opencvs_model_by_hand():
  plane = np.array([[0.5, 0.2]])
  # r^2 = 0.29: radial 1 + 0.1 r^2 = 1.029; p1 = 0.01 adds 2 p1 x y = 0.002 to x and
  # p1 (r^2 + 2 y^2) = 0.0037 to y; p2 = 0.02 adds p2 (r^2 + 2 x^2) = 0.0158 to x, 2 p2 x y =
  # 0.004 to y; k2 = 0.5 adds 0.5 r^4 = 0.04205 to the radial factor.
  np.testing.assert_allclose(camera_lib.distort(plane, [0.1, 0, 0, 0, 0]), [[0.5145, 0.2058]])
  np.testing.assert_allclose(camera_lib.distort(plane, [0.1, 0, 0.01, 0.02, 0]),
                             [[0.5145 + 0.002 + 0.0158, 0.2058 + 0.0037 + 0.004]])
  np.testing.assert_allclose(camera_lib.distort(plane, [0.1, 0.5, 0, 0, 0]),
                             plane * (1.029 + 0.5 * 0.29**2))


def test_the_radial_terms_are_human36ms():
  camera = dataclasses.replace(cameras.load_cameras('S9')[0], tangential_distortion=np.zeros(2))
  points = np.random.default_rng(0).uniform([-800, -800, 3000], [800, 800, 6000], (50, 3))
  k1, k2, k3 = camera.radial_distortion
  plane = camera_lib.distort(points[:, :2] / points[:, 2:], [k1, k2, 0.0, 0.0, k3])
  np.testing.assert_allclose(camera.focal_length * plane + camera.center,
                             cameras.project(points, camera), atol=1e-9)


def test_undistort_inverts_a_wide_lens_and_keeps_missing_keypoints_missing(caplog):
  plane = np.random.default_rng(1).uniform(-0.8, 0.8, (200, 17, 2))
  plane[3, 5] = np.nan
  with caplog.at_level(logging.WARNING):
    back = camera_lib.undistort(camera_lib.distort(plane, WIDE), WIDE)
  np.testing.assert_allclose(back, plane, atol=1e-9)
  assert np.isnan(back[3, 5]).all() and 'cannot be undone' not in caplog.text
  # Far beyond any calibration the iteration cannot converge: said, not silent.
  with caplog.at_level(logging.WARNING):
    camera_lib.undistort(np.array([[[9.0, 9.0]]]), WIDE)
  assert '1 of 1 keypoints lie where the lens model cannot be undone' in caplog.text


def test_intrinsics_undo_their_distortion_and_say_so():
  camera = camera_lib.Intrinsics.of(1000.0, (960, 540), 'given', [-0.28, 0.09, 0.001, -0.0007])
  assert camera.distortion[-1] == 0.0  # k3 left out
  plane = np.array([[[0.3, -0.2], [-0.5, 0.4]]])
  keypoints_px = 1000.0 * camera_lib.distort(plane, camera.distortion) + [960, 540]
  np.testing.assert_allclose(camera.to_plane(keypoints_px), plane, atol=1e-9)
  np.testing.assert_allclose(camera.moved_into(keypoints_px, [1145.0, 1144.0], [512, 515]),
                             plane * [1145.0, 1144.0] + [512, 515], atol=1e-6)
  assert 'lens distortion k1 = -0.28 k2 = 0.09 p1 = 0.001 p2 = -0.0007 k3 = 0' in (
      camera.describe())


@pytest.mark.parametrize('values, message', [
    ([0.1, 0.2, 0.3], 'distortion takes 4 or 5 finite numbers k1, k2, p1, p2[, k3]'),
    ([0.1, np.nan, 0, 0], 'distortion takes 4 or 5 finite numbers'),
    ('wide', "distortion takes numbers k1, k2, p1, p2[, k3], got 'wide'."),
])
def test_coefficients_that_are_not_opencvs_are_one_line(values, message):
  with pytest.raises(ValueError) as raised:
    camera_lib.distortion_coefficients(values)
  assert str(raised.value).startswith(message) and '\n' not in str(raised.value)
