"""Camera geometry against hand-computed values and the published calibration."""

import numpy as np
import pytest

from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import skeleton


def _camera(k=(0.0, 0.0, 0.0), p=(0.0, 0.0)):
  return cameras.Camera(
      camera_id='test', focal_length=np.array([1000.0, 1000.0]), center=np.array([500.0, 500.0]),
      radial_distortion=np.array(k), tangential_distortion=np.array(p), image_size=(1000, 1000),
      rotation=np.eye(3), translation=np.zeros(3))


def test_projection_hand_computed():
  # u = (0.2, 0), r2 = 0.04, radial = 1 + 0.1 * 0.04 = 1.004 -> x = 1000 * 0.2008 + 500.
  np.testing.assert_allclose(cameras.project([200.0, 0.0, 1000.0], _camera(k=(0.1, 0, 0))),
                             [700.8, 500.0], atol=1e-9)
  # Tangential: tan = 0.01 * 0.2 = 0.002; u' = 0.2 * 1.006 + 0.01 * 0.04 = 0.2016.
  np.testing.assert_allclose(
      cameras.project([200.0, 0.0, 1000.0], _camera(k=(0.1, 0, 0), p=(0.01, 0.0))),
      [701.6, 500.0], atol=1e-9)
  # Second-order radial and y tangential: u = (0, 0.5), r2 = 0.25,
  # radial = 1 + 0.2 * 0.0625 = 1.0125, tan = 0.02 * 0.5 = 0.01,
  # u' = (0 + 0 * 0.25, 0.5 * 1.0225 + 0.02 * 0.25) = (0, 0.51625).
  np.testing.assert_allclose(
      cameras.project([0.0, 1000.0, 2000.0], _camera(k=(0, 0.2, 0), p=(0.0, 0.02))),
      [500.0, 1016.25], atol=1e-9)


def test_projection_clips_normalised_coordinates():
  # X/Z = 3 is clipped to 1 before distortion: the same pixel as X/Z = 1.
  cam = _camera(k=(0.1, 0, 0))
  np.testing.assert_allclose(cameras.project([3000.0, 0, 1000.0], cam),
                             cameras.project([1000.0, 0, 1000.0], cam))


def test_world_to_camera_round_trip_and_axes():
  cam = cameras.load_camera('S1', '54138969')
  np.testing.assert_allclose(cam.rotation @ cam.rotation.T, np.eye(3), atol=1e-12)
  assert np.linalg.det(cam.rotation) == pytest.approx(1.0)
  # The camera centre is the camera frame's origin; the optical axis (R's third
  # column, in world coordinates) maps to +z.
  np.testing.assert_allclose(cameras.world_to_camera(cam.translation, cam), 0, atol=1e-9)
  ahead = cam.translation + 3000.0 * cam.rotation[:, 2]
  np.testing.assert_allclose(cameras.world_to_camera(ahead, cam), [0, 0, 3000.0], atol=1e-9)
  points = np.random.default_rng(0).normal(size=(5, 17, 3)) * 1000
  np.testing.assert_allclose(
      cameras.camera_to_world(cameras.world_to_camera(points, cam), cam), points, atol=1e-9)


def test_quaternion_to_rotation_hand_computed():
  # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45) maps x to y.
  rot = cameras.quaternion_to_rotation([np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
  np.testing.assert_allclose(rot @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)


@pytest.mark.parametrize('subject', skeleton.TRAIN_SUBJECTS + skeleton.TEST_SUBJECTS)
def test_capture_volume_is_seen_by_every_camera(subject):
  # A person standing at the world origin (z up, mm) is in front of and inside every camera.
  person = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 900.0], [0.0, 0.0, 1700.0]])
  for cam in cameras.load_cameras(subject):
    pose_cam = cameras.world_to_camera(person, cam)
    assert np.all(pose_cam[:, 2] > 1000), (subject, cam.camera_id)
    px = cameras.project(pose_cam, cam)
    assert np.all((px > 0) & (px < cam.image_size)), (subject, cam.camera_id, px)
    # Up in the world is up in the image (smaller row index).
    assert px[2, 1] < px[0, 1]


def test_image_sizes_follow_the_camera():
  sizes = {c.camera_id: c.image_size for c in cameras.load_cameras('S9')}
  assert sizes == {'54138969': (1000, 1002), '55011271': (1000, 1000),
                   '58860488': (1000, 1000), '60457274': (1000, 1002)}


def test_crop_box_is_square_centred_with_margin():
  pose_2d = np.array([[100.0, 200.0], [300.0, 600.0], [200.0, 400.0]])
  x0, y0, side = crop.crop_box(pose_2d, margin=1.5)
  assert side == pytest.approx(600.0)
  assert (x0 + side / 2, y0 + side / 2) == pytest.approx((200.0, 400.0))
  np.testing.assert_allclose(crop.crop_to_pixels([[200.0, 400.0]], (x0, y0, side), 64), [[32, 32]])


def test_crop_image_pads_outside_and_keeps_content():
  image = np.zeros((100, 100, 3), np.uint8)
  image[40:60, 40:60] = 255
  out = crop.crop_image(image, (30.0, 30.0, 40.0), 40)
  assert out.shape == (40, 40, 3)
  assert out[20, 20].min() == 255 and out[2, 2].max() == 0
  # A box hanging off the top-left corner is black there.
  out = crop.crop_image(image + 10, (-50.0, -50.0, 100.0), 50)
  assert out[5, 5].max() == 0 and out[40, 40].min() >= 10


def test_action_names_are_mapped():
  assert skeleton.parse_sequence_name('TakingPhoto 1') == ('Photo', 1)
  assert skeleton.parse_sequence_name('WalkingDog') == ('WalkDog', 0)
  assert skeleton.parse_sequence_name('Directions 2') == ('Directions', 2)
  with pytest.raises(ValueError, match='Unknown Human3.6M action'):
    skeleton.parse_sequence_name('Dancing 1')


def test_flip_permutation_swaps_left_and_right():
  perm = skeleton.flip_permutation()
  assert perm[skeleton.JOINT_NAMES.index('LWrist')] == skeleton.JOINT_NAMES.index('RWrist')
  assert perm[0] == 0 and sorted(perm) == list(range(17))
