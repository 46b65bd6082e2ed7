"""Virtual cameras frame every joint of synthetic mocap sequences and follow their distribution."""

import dataclasses

import numpy as np
import pytest

from tfds_h36m import cameras
from tfds_h36m.mocap import virtual_cameras

DIST = virtual_cameras.CameraDistribution()
UP = np.array([0.0, 1.0, 0.0])

# A standing person, 17 joints in mm, y up, ankles 80 mm above the floor at y = 0.
_STANDING = np.array([
    [0, 950, 0], [-130, 950, 0], [-130, 500, 20], [-130, 80, 0], [130, 950, 0],
    [130, 500, 20], [130, 80, 0], [0, 1180, 0], [0, 1420, 0], [0, 1520, 0], [0, 1680, 30],
    [180, 1420, 0], [200, 1150, 40], [220, 900, 60], [-180, 1420, 0], [-200, 1150, 40],
    [-220, 900, 60]], np.float64)


def _standing(frames=50, offset=(0.0, 0.0, 0.0)):
  """(frames, 17, 3) a person standing at `offset` mm, swaying by up to 50 mm."""
  sway = 50 * np.sin(np.linspace(0, 2 * np.pi, frames))[:, None, None] * [1, 0, 0.5]
  return _STANDING + sway + np.asarray(offset)


def _walking(frames=200):
  """(frames, 17, 3) a person walking 6 m along x with swinging legs and arms."""
  phase = np.linspace(0, 8 * np.pi, frames)[:, None]
  pose = np.repeat(_STANDING[None], frames, axis=0)
  pose[..., 0] += np.linspace(-3000, 3000, frames)[:, None]
  swing = 250 * np.sin(phase)
  pose[:, [2, 3], 0] += swing
  pose[:, [5, 6], 0] -= swing
  pose[:, [12, 13], 0] -= swing
  pose[:, [15, 16], 0] += swing
  return pose


def _lying(frames=20):
  """(frames, 17, 3) a person lying on the floor along x, breathing."""
  x, y, z = _STANDING.T
  pose = np.stack([y - 850, 100 + 0.1 * np.abs(x), x], axis=-1)
  return pose + 10 * np.sin(np.linspace(0, np.pi, frames))[:, None, None] * UP


SEQUENCES = {
    'standing': _standing(),
    'walking': _walking(),
    'lying': _lying(),
    'single_frame': _standing(frames=1, offset=(4000.0, 300.0, -2500.0)),
}


def _hfov_deg(camera):
  return np.degrees(2 * np.arctan(camera.image_size[0] / 2 / camera.focal_length[0]))


def _roll_deg(camera):
  """Roll about the optical axis: 0 when the camera's x axis is horizontal."""
  right, down = camera.rotation[:, 0], camera.rotation[:, 1]
  return np.degrees(np.arctan2(-right @ UP, -down @ UP))


@pytest.mark.parametrize('name', sorted(SEQUENCES))
def test_every_joint_in_frame_in_front_and_unclipped(name):
  pose = SEQUENCES[name]
  floor = pose[..., 1].min()
  sampled = virtual_cameras.sample_cameras(pose, 40, np.random.default_rng(1))
  assert [c.camera_id for c in sampled] == [f'virtual_{k}' for k in range(40)]
  for camera in sampled:
    size = np.array(camera.image_size, np.float64)
    points = cameras.world_to_camera(pose, camera)
    assert points[..., 2].min() >= DIST.min_depth_mm - 1e-6
    uv = cameras.project(points, camera)
    assert np.all(uv >= DIST.margin * size - 1e-6)
    assert np.all(uv <= (1 - DIST.margin) * size + 1e-6)
    # The whole image, not just the joints, stays inside project's unclipped range.
    assert np.all(np.maximum(camera.center, size - camera.center) <= camera.focal_length + 1e-9)
    assert 200 - 1e-6 <= camera.translation[1] - floor <= 2500 + 1e-6
    assert 25 - 1e-9 <= _hfov_deg(camera) <= 90 + 1e-9
    assert tuple(sorted(camera.image_size, reverse=True)) in DIST.resolutions
    assert camera.focal_length[0] == camera.focal_length[1]
    assert not np.any(camera.radial_distortion) and not np.any(camera.tangential_distortion)
    assert np.all(np.abs(camera.center / size - 0.5) <= DIST.principal_offset + 1e-12)


def test_resolutions_portraits_and_fov_cap():
  sampled = virtual_cameras.sample_cameras(_standing(5), 300, np.random.default_rng(2))
  portrait = np.array([c.image_size[1] > c.image_size[0] for c in sampled])
  assert 0.2 < portrait.mean() < 0.4
  assert {tuple(sorted(c.image_size, reverse=True)) for c in sampled} == set(DIST.resolutions)
  hfov = np.array([_hfov_deg(c) for c in sampled])
  assert hfov[portrait].max() <= 58.7  # tan(vfov / 2) <= 1 for 16:9 portrait.
  assert hfov[~portrait].max() > 80 and hfov.min() < 30


def test_same_seed_same_cameras_other_seed_different():
  pose = _walking()

  def draw(seed):
    return virtual_cameras.sample_cameras(pose, 4, np.random.default_rng(seed))

  def same(a, b):
    return all(np.array_equal(getattr(a, f.name), getattr(b, f.name))
               for f in dataclasses.fields(cameras.Camera))

  assert all(same(a, b) for a, b in zip(draw(7), draw(7)))
  assert not any(same(a, b) for a, b in zip(draw(7), draw(8)))


def test_projection_round_trip_with_intrinsics_normalisation():
  pose = _walking()
  for camera in virtual_cameras.sample_cameras(pose, 8, np.random.default_rng(3)):
    points = cameras.world_to_camera(pose, camera)
    uv = cameras.project(points, camera)
    xy = (uv - camera.center) / camera.focal_length * points[..., 2:]
    np.testing.assert_allclose(xy, points[..., :2], rtol=1e-6, atol=1e-9)


def test_rotation_proper_level_and_upright():
  for camera in virtual_cameras.sample_cameras(_standing(), 100, np.random.default_rng(4)):
    rot = camera.rotation
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    assert abs(_roll_deg(camera)) <= DIST.angle_clip_deg + 1e-9
    assert rot[:, 1] @ UP < 0  # the image's down is the world's down.


def test_distance_and_placement_vary():
  pose = _standing()
  fills, offsets = [], []
  for camera in virtual_cameras.sample_cameras(pose, 100, np.random.default_rng(5)):
    uv = cameras.project(cameras.world_to_camera(pose, camera), camera)
    low, high = uv.min(axis=(0, 1)), uv.max(axis=(0, 1))
    size = np.array(camera.image_size, np.float64)
    fills.append(np.max((high - low) / ((1 - 2 * DIST.margin) * size)))
    offsets.append((low[0] + high[0]) / size[0] - 1)
  assert min(fills) < 0.7 and max(fills) > 0.9  # not always filling the frame
  assert min(offsets) < -0.1 and max(offsets) > 0.1  # not always centred


def test_unit_distance_factor_frames_tightly():
  # Eye-level cameras without pitch perturbation sit at the smallest distance (up to the
  # pitch solved on a subsample): the person touches the margins along one image axis, or
  # the nearest joint is at the minimum depth.
  dist = virtual_cameras.CameraDistribution(
      height_m=(1.0, 1.6), distance_factor=(1.0, 1.0), pitch_std_deg=0.0)
  pose = _walking()
  for camera in virtual_cameras.sample_cameras(pose, 30, np.random.default_rng(6), dist):
    points = cameras.world_to_camera(pose, camera)
    uv = cameras.project(points, camera)
    size = np.array(camera.image_size, np.float64)
    fill = np.max((uv.max(axis=(0, 1)) - uv.min(axis=(0, 1))) / (0.9 * size))
    assert fill == pytest.approx(1.0, abs=1e-3) or (
        points[..., 2].min() == pytest.approx(dist.min_depth_mm))


def test_input_unchanged_and_bad_input_rejected():
  pose = np.asfortranarray(_lying(3))
  before = pose.copy()
  virtual_cameras.sample_cameras(pose, 2, np.random.default_rng(0))
  np.testing.assert_array_equal(pose, before)
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError):
    virtual_cameras.sample_cameras(np.zeros((5, 3)), 1, rng)
  with pytest.raises(ValueError):
    virtual_cameras.sample_cameras(np.full((1, 2, 3), np.nan), 1, rng)


def test_distribution_validation_and_description():
  with pytest.raises(ValueError):  # wide portrait cameras would need a clipped image.
    virtual_cameras.CameraDistribution(hfov_deg=(70.0, 90.0))
  virtual_cameras.CameraDistribution(hfov_deg=(70.0, 90.0), portrait_prob=0.0)
  with pytest.raises(ValueError):
    virtual_cameras.CameraDistribution(height_m=(2.0, 1.0))
  text = virtual_cameras.describe(DIST)
  for fact in ('25-90 deg', '1920x1080', '0.2-2.5 m', '5%', '500 mm', '1-1.8 x'):
    assert fact in text
