"""Tests of the capsule renderer of synthetic crops (tfds_h36m/synthetic/render.py)."""

import numpy as np
from PIL import Image
import pytest

from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import skeleton
from tfds_h36m.synthetic import motion
from tfds_h36m.synthetic import render

_SIZE = 96


def _unit(v):
  return v / np.linalg.norm(v)


def _scene(action='Waiting', subject='S1', camera_index=0, frame=0):
  """(pose in the camera frame, camera, crop box) of a generated frame."""
  pose = motion.generate_sequence(
      np.random.default_rng(0), motion.subject_bone_lengths(subject), action, frame + 1)[frame]
  camera = cameras.load_cameras(subject)[camera_index]
  pose_cam = cameras.world_to_camera(pose, camera)
  return pose_cam, camera, crop.crop_box(cameras.project(pose_cam, camera))


def _facing_camera(depth_mm=4500.0):
  """A standing pose turned to face the camera, `depth_mm` in front of it (camera frame)."""
  pose = motion.generate_sequence(
      np.random.default_rng(1), motion.subject_bone_lengths('S5'), 'Waiting', 1)[0]
  pose = pose.astype(np.float64) - pose[skeleton.ROOT]
  left = _unit(pose[4] - pose[1])
  up = _unit(pose[7])
  body = np.stack([np.cross(left, up), left, up])  # forward, left, up
  local = pose @ body.T
  # Body left -> image right (x), body up -> image up (-y), forward -> the camera (-z).
  return np.stack([local[:, 1], -local[:, 2], depth_mm - local[:, 0]], axis=-1)


def _to_crop(points_cam, camera, box, size=_SIZE):
  return crop.crop_to_pixels(cameras.project(points_cam, camera), box, size)


def _body_mask(pose_cam, camera, box, seed, size=_SIZE):
  """Rendered image and where it differs from the same scene's empty background."""
  image = render.render_crop(pose_cam, camera, box, size, np.random.default_rng(seed))
  pelvis_world = cameras.camera_to_world(pose_cam[skeleton.ROOT], camera)
  background = render._background(camera, box, size, np.random.default_rng(seed), pelvis_world)
  background = (np.clip(background, 0, 1) * 255 + 0.5).astype(np.uint8)
  diff = np.abs(image.astype(np.int32) - background).max(axis=-1)
  return image, diff > 12


def _pixel(image, point):
  x, y = np.floor(point).astype(int)
  return image[y, x].astype(np.int32)


def test_shape_dtype_and_determinism():
  pose_cam, camera, box = _scene()
  a = render.render_crop(pose_cam, camera, box, _SIZE, np.random.default_rng(3))
  b = render.render_crop(pose_cam, camera, box, _SIZE, np.random.default_rng(3))
  c = render.render_crop(pose_cam, camera, box, _SIZE, np.random.default_rng(4))
  assert a.shape == (_SIZE, _SIZE, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  assert np.abs(a.astype(int) - c).mean() > 2.0  # another room
  assert a.std() > 10.0


@pytest.mark.parametrize('action, subject, camera_index', [
    ('Waiting', 'S1', 0), ('Walking', 'S9', 1), ('Sitting', 'S11', 2), ('Photo', 'S6', 3)])
def test_body_is_drawn_where_the_joints_project(action, subject, camera_index):
  pose_cam, camera, box = _scene(action, subject, camera_index, frame=30)
  _, mask = _body_mask(pose_cam, camera, box, seed=5)
  joints = _to_crop(pose_cam, camera, box)
  for joint in ('Pelvis', 'Spine', 'Thorax', 'Head'):
    x, y = np.floor(joints[skeleton.JOINT_NAMES.index(joint)]).astype(int)
    assert mask[y, x], joint
  # The silhouette's box holds the joints' box and exceeds it by capsule radii only.
  ys, xs = np.nonzero(mask)
  lo, hi = joints.min(axis=0), joints.max(axis=0)
  assert xs.min() <= lo[0] + 1 and ys.min() <= lo[1] + 1
  assert xs.max() >= hi[0] - 2 and ys.max() >= hi[1] - 2
  slack = 0.12 * _SIZE
  assert xs.min() >= lo[0] - slack and ys.min() >= lo[1] - slack
  assert xs.max() <= hi[0] + slack and ys.max() <= hi[1] + slack


def test_left_and_right_limbs_have_different_colours():
  camera = cameras.load_camera('S1', skeleton.CAMERA_IDS[0])
  pose_cam = _facing_camera()
  box = crop.crop_box(cameras.project(pose_cam, camera))
  image = render.render_crop(pose_cam, camera, box, 128, np.random.default_rng(0))
  for (left_a, left_b), (right_a, right_b) in (((5, 6), (2, 3)), ((4, 5), (1, 2))):
    left = _pixel(image, _to_crop((pose_cam[left_a] + pose_cam[left_b]) / 2, camera, box, 128))
    right = _pixel(image, _to_crop((pose_cam[right_a] + pose_cam[right_b]) / 2, camera, box,
                                   128))
    assert left[2] > left[0] + 40, left  # blue
    assert right[0] > right[2] + 40, right  # red
  assert not np.allclose(render.BONE_COLORS[11], render.BONE_COLORS[14])


@pytest.mark.parametrize('in_front', [True, False])
def test_nearer_capsule_occludes_farther(in_front):
  camera = cameras.load_camera('S1', skeleton.CAMERA_IDS[0])
  pose_cam = _facing_camera()
  box = crop.crop_box(cameras.project(pose_cam, camera))
  # Lay the left forearm across the abdomen, 250 mm in front of or behind it.
  belly = (pose_cam[0] + pose_cam[7]) / 2 + [0.0, 0.0, -250.0 if in_front else 250.0]
  pose_cam[12] = belly - [160.0, 0.0, 0.0]
  pose_cam[13] = belly + [160.0, 0.0, 0.0]
  image = render.render_crop(pose_cam, camera, box, 128, np.random.default_rng(0))
  r, g, b = _pixel(image, _to_crop(belly, camera, box, 128))
  if in_front:
    assert b > r + 40 and b > g, (r, g, b)  # the blue left forearm
  else:
    assert g > r + 20 and g > b + 20, (r, g, b)  # the green trunk hides it


def test_crop_outside_the_frame_is_black():
  pose_cam, camera, box = _scene()
  box = np.array([-box[2] / 2, box[1], box[2]])  # left half outside the image
  image = render.render_crop(pose_cam, camera, box, 64, np.random.default_rng(0))
  assert np.all(image[:, :31] == 0)
  assert np.all(image[:, 33:].max(axis=-1) > 0)


def test_matches_cropping_a_full_frame_render():
  pose_cam, camera, box = _scene('Greeting', 'S5', 1, frame=40)
  width, height = camera.image_size
  assert width == height  # a full frame is one square crop
  full = render.render_crop(pose_cam, camera, (0.0, 0.0, width), width,
                            np.random.default_rng(2))
  cropped = crop.crop_image(full, box, 64)
  direct = render.render_crop(pose_cam, camera, box, 64, np.random.default_rng(2))
  assert np.abs(cropped.astype(int) - direct).mean() < 6.0


def test_save_sample_grid(tmp_path):
  pose_cam, camera, box = _scene()
  images = [render.render_crop(pose_cam, camera, box, 48, np.random.default_rng(i))
            for i in range(5)]
  path = tmp_path / 'grid.png'
  render.save_sample_grid(images, str(path), titles=[f'sample {i}' for i in range(5)])
  assert path.stat().st_size > 10_000
  grid = np.asarray(Image.open(path))
  assert grid.ndim == 3 and grid.shape[0] > 100 and grid.shape[1] > 300
  assert grid[..., :3].std() > 20.0
