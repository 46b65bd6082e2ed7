"""New bodies for perspective-crop training poses (hpe_jax/pose_bodies.py)."""

import jax
import numpy as np
import pytest

from hpe_jax import config_lib
from hpe_jax import normalization
from hpe_jax import pose_bodies
from tfds_h36m import skeleton
from tests import conftest

_BODY_SIGMA_MM = 250.0


def _bodies(rng, n=6):
  """Root-relative people (N, 17, 3) mm whose pelvis is the midpoint of their hips, so the
  detector layout's derived root is the true one."""
  body = rng.normal(0.0, _BODY_SIGMA_MM, (n, 17, 3))
  body[:, 0] = (body[:, 1] + body[:, 4]) / 2
  return body - body[:, :1]


def _stats():
  """Identity standardisation: the model's poses are the crops and the mm themselves."""
  return {f'pose_{d}d_{stat}': fill((16, d), np.float32)
          for d in (2, 3) for stat, fill in (('mean', np.zeros), ('std', np.ones))}


def _pipeline(camera_frame_mm, layout, focal=1000.0, centre=(640.0, 360.0)):
  """What the data pipeline makes of a camera-frame pose filmed by a pinhole camera: the
  image in px, then the normalised plane, the model's 2D input and its 3D label (mm)."""
  px = focal * camera_frame_mm[..., :2] / camera_frame_mm[..., 2:] + np.asarray(centre)
  n = len(px)
  plane = normalization.camera_plane(px, np.full((n, 2), focal), np.tile(centre, (n, 1)))
  pose_2d = normalization.model_pose_2d(plane, _stats(), layout, 'perspective_crop')
  root_relative = camera_frame_mm - camera_frame_mm[:, :1]
  label = normalization.to_crop_frame(root_relative, normalization.input_pose_2d(plane, layout))
  return pose_2d, label


def _turn_about_vertical(pose, angle):
  """(N, J, 3) poses turned by `angle` (N,) radians about the camera's y axis."""
  cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
  x, y, z = pose[..., 0], pose[..., 1], pose[..., 2]
  return np.stack([x * cos + z * sin, y, z * cos - x * sin], axis=-1)


@pytest.mark.parametrize('layout', ['h36m', 'detector'])
def test_crop_pair_is_what_a_camera_at_the_roots_distance_films(layout):
  rng = np.random.default_rng(0)
  body = _turn_about_vertical(_bodies(rng), rng.uniform(-np.pi, np.pi, 6))
  distance = rng.uniform(3000.0, 8000.0, 6)
  plane, label, in_front = pose_bodies.crop_pair(body, distance, layout)
  want_2d, want_label = _pipeline(body + _on_axis(distance), layout)
  assert np.all(in_front)
  np.testing.assert_allclose(
      normalization.model_pose_2d(plane, _stats(), layout, 'perspective_crop'), want_2d,
      atol=1e-5)  # float32
  np.testing.assert_allclose(label, want_label, atol=1e-2)


def _on_axis(distance):
  """(N, 1, 3) mm: roots on the optical axis at `distance` (N,)."""
  return np.stack([0 * distance, 0 * distance, distance], -1)[:, None]


def _crop_batch(rng, n, layout='h36m'):
  """A batch of n standardised (identity stats) crops as the pipeline makes them, of bodies
  whose roots lie on the camera's axis, and their distances (mm)."""
  body = _turn_about_vertical(_bodies(rng, n), rng.uniform(-np.pi, np.pi, n))
  distance = rng.uniform(3000.0, 8000.0, n)
  pose_2d, label = _pipeline(body + _on_axis(distance), layout)
  return {'pose_2d': np.float32(pose_2d), 'pose_3d': np.float32(label[:, 1:]),
          'root_distance': np.float32(distance), 'camera_index': np.arange(n, dtype=np.int32)}


def _bone_lengths(pose_16):
  pose = np.concatenate([np.zeros(pose_16.shape[:-2] + (1, 3)), pose_16], axis=-2)
  parents = np.asarray(skeleton.PARENTS[1:])
  return np.linalg.norm(pose[..., 1:, :] - pose[..., parents, :], axis=-1)


def test_new_bodies_are_filmed_from_the_same_place():
  batch = _crop_batch(np.random.default_rng(1), 64)
  same = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(0), 'h36m', 0.0)
  np.testing.assert_allclose(same['pose_2d'], batch['pose_2d'], atol=1e-5)
  np.testing.assert_allclose(same['pose_3d'], batch['pose_3d'], atol=1e-2)
  new = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(0), 'h36m', 0.2)
  np.testing.assert_array_equal(new['camera_index'], batch['camera_index'])
  # Each bone group scaled alike on both sides, the scales spread like exp(N(0, 0.2)).
  ratio = _bone_lengths(np.asarray(new['pose_3d'])) / _bone_lengths(batch['pose_3d'])
  for joints in pose_bodies.BONE_GROUPS:
    columns = [skeleton.JOINT_NAMES.index(j) - 1 for j in joints]
    np.testing.assert_allclose(ratio[:, columns], ratio[:, columns[:1]].repeat(len(columns), 1),
                               rtol=1e-3)
  assert 0.1 < np.log(ratio).std() < 0.3
  # The 2D input is the new body's crop, filmed from the root's distance.
  new_17 = np.concatenate([np.zeros((64, 1, 3)), np.asarray(new['pose_3d'])], axis=1)
  want_2d, _ = _pipeline(new_17 + _on_axis(batch['root_distance']), 'h36m')
  np.testing.assert_allclose(new['pose_2d'], want_2d, atol=1e-4)


def test_a_window_keeps_one_body_and_its_centre_frame_is_the_rows():
  rng = np.random.default_rng(2)
  frames = _crop_batch(rng, 3)  # one track of 3 frames, the centre row's window
  batch = {'pose_2d': frames['pose_2d'][1:2], 'pose_3d': frames['pose_3d'][1:2],
           'root_distance': frames['root_distance'][1:2],
           'pose_2d_window': frames['pose_2d'][None], 'pose_3d_window': frames['pose_3d'][None],
           'root_distance_window': frames['root_distance'][None]}
  new = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(3), 'h36m', 0.2)
  assert 'pose_3d_window' not in new and 'root_distance_window' not in new
  window_3d = pose_bodies.vary_bones(  # the window's body, from the centre row's scales
      np.concatenate([np.zeros((3, 1, 3)), frames['pose_3d']], axis=1), np.log(
          _group_scales(np.asarray(new['pose_3d'])[0], frames['pose_3d'][1])))
  want_window, _ = _pipeline(np.asarray(window_3d) + _on_axis(frames['root_distance']), 'h36m')
  np.testing.assert_allclose(new['pose_2d_window'][0], want_window, atol=1e-4)
  np.testing.assert_allclose(new['pose_2d'][0], want_window[1], atol=1e-4)


def _group_scales(new_pose_16, old_pose_16):
  """(groups,) the bone scale of each group between two poses of one body."""
  ratio = _bone_lengths(new_pose_16) / _bone_lengths(old_pose_16)
  return np.asarray([ratio[skeleton.JOINT_NAMES.index(joints[0]) - 1]
                     for joints in pose_bodies.BONE_GROUPS])


def test_a_body_that_would_come_too_near_keeps_its_own():
  body = _bodies(np.random.default_rng(2), 2)
  body[:, 7:] *= 4.0  # an arm span of metres, filmed from 1 m: grown, it reaches the camera
  _, _, in_front = pose_bodies.crop_pair(body, np.array([1000.0, 1000.0]), 'h36m')
  assert not np.all(in_front)
  batch = {'pose_2d': np.zeros((2, 16, 2), np.float32), 'pose_3d': np.float32(body[:, 1:]),
           'root_distance': np.float32([1000.0, 1000.0])}
  new = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(0), 'h36m', 0.01)
  kept = ~np.asarray(in_front)
  np.testing.assert_array_equal(np.asarray(new['pose_3d'])[kept], batch['pose_3d'][kept])


def test_vary_bones_scales_each_group_and_keeps_the_joint_angles_and_the_derived_torso():
  body = _bodies(np.random.default_rng(3), 4)
  thorax = (body[:, 11] + body[:, 14]) / 2  # derived torso, as the rigs make it
  body[:, 8], body[:, 7] = thorax, thorax / 2
  log_scale = np.log(np.random.default_rng(4).uniform(0.7, 1.4, (4, len(pose_bodies.BONE_GROUPS))))
  varied = np.asarray(pose_bodies.vary_bones(body, log_scale), np.float64)
  parents = np.asarray(skeleton.PARENTS[1:])
  bones, new_bones = body[:, 1:] - body[:, parents], varied[:, 1:] - varied[:, parents]
  want = np.ones((4, 16))
  for group, joints in enumerate(pose_bodies.BONE_GROUPS):
    for joint in joints:
      want[:, skeleton.JOINT_NAMES.index(joint) - 1] = np.exp(log_scale[:, group])
  np.testing.assert_allclose(np.linalg.norm(new_bones, axis=-1),
                             want * np.linalg.norm(bones, axis=-1), rtol=1e-5)
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  np.testing.assert_allclose(unit(new_bones), unit(bones), atol=1e-5)
  np.testing.assert_allclose(varied[:, 0], 0.0, atol=1e-9)
  np.testing.assert_allclose(varied[:, 0], (varied[:, 1] + varied[:, 4]) / 2, atol=1e-3)
  np.testing.assert_allclose(varied[:, 8], (varied[:, 11] + varied[:, 14]) / 2, atol=1e-3)
  np.testing.assert_allclose(varied[:, 7], varied[:, 8] / 2, atol=1e-3)


@pytest.mark.parametrize('name', ['bone_scale', 'leg_bend'])
def test_new_poses_need_a_perspective_crop(name):
  for arg in ('tiny', 'tiny,window=9'):
    config = conftest.load_config('mocap', arg)
    config.augment.update(bone_scale=0.0, leg_bend=0.0)
    config.augment[name] = 0.1
    config_lib.check(config)
  config.input_space = 'camera'
  with pytest.raises(config_lib.ConfigError, match=name):
    config_lib.check(config)
  config.update(input_space='perspective_crop')
  config.augment[name] = 1.1
  with pytest.raises(config_lib.ConfigError, match=name):
    config_lib.check(config)


def _standing_person():
  """A person (17, 3) mm facing the camera (-z), y down: legs straight below the hips, so
  its left (+x) crossed with its up (-y) is its front (-z)."""
  pose = np.zeros((17, 3))
  for name, point in {'RHip': (-100, 0, 0), 'RKnee': (-100, 400, 0), 'RAnkle': (-100, 800, 0),
                      'LHip': (100, 0, 0), 'LKnee': (100, 400, 0), 'LAnkle': (100, 800, 0),
                      'Spine': (0, -250, 0), 'Thorax': (0, -500, 0), 'Neck': (0, -550, -50),
                      'Head': (0, -700, 0), 'LShoulder': (180, -500, 0),
                      'LElbow': (200, -250, 0), 'LWrist': (210, 0, 0),
                      'RShoulder': (-180, -500, 0), 'RElbow': (-200, -250, 0),
                      'RWrist': (-210, 0, 0)}.items():
    pose[skeleton.JOINT_NAMES.index(name)] = point
  return pose


def test_bend_legs_seats_a_standing_person_by_hand():
  standing = _standing_person()
  # Right leg: hip and knee at 90 degrees (seated); left leg: knee alone at 90 (a heel kick).
  flexion = np.radians([[90.0, 90.0], [0.0, 90.0]])
  seated = np.asarray(pose_bodies.bend_legs(standing, flexion), np.float64)
  want = standing.copy()
  j = skeleton.JOINT_NAMES.index
  want[j('RKnee')] = (-100, 0, -400)  # the thigh forward, toward the camera
  want[j('RAnkle')] = (-100, 400, -400)  # the shin straight down again
  want[j('LAnkle')] = (100, 400, 400)  # the shin back
  np.testing.assert_allclose(seated, want, atol=1e-3)


def test_bend_legs_keeps_bones_and_turns_with_the_body():
  rng = np.random.default_rng(5)
  angle = rng.uniform(-np.pi, np.pi, 8)
  standing = _turn_about_vertical(np.repeat(_standing_person()[None], 8, 0), angle)
  flexion = rng.uniform(0.0, 2.0, (8, 2, 2))
  bent = np.asarray(pose_bodies.bend_legs(standing, flexion), np.float64)
  np.testing.assert_allclose(_bone_lengths(bent[:, 1:]), _bone_lengths(standing[:, 1:]),
                             rtol=1e-5)
  # The same bend of the person turned about the vertical is the bent person turned.
  facing = np.asarray(pose_bodies.bend_legs(np.repeat(_standing_person()[None], 8, 0),
                                            flexion), np.float64)
  np.testing.assert_allclose(bent, _turn_about_vertical(facing, angle), atol=1e-2)


def test_leg_bend_bends_that_fraction_of_the_rows_and_films_them_again():
  batch = _crop_batch(np.random.default_rng(6), 400)
  new = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(1), 'h36m', 0.0, 0.25)
  moved = np.abs(np.asarray(new['pose_3d']) - batch['pose_3d']).max(axis=(1, 2)) > 1.0
  assert 0.15 < moved.mean() < 0.35
  legs = [skeleton.JOINT_NAMES.index(n) - 1 for n in ('RKnee', 'RAnkle', 'LKnee', 'LAnkle')]
  others = np.setdiff1d(np.arange(16), legs)
  # Only the knees and ankles move, their bones keep their lengths.
  np.testing.assert_allclose(np.asarray(new['pose_3d'])[:, others], batch['pose_3d'][:, others],
                             atol=1e-2)
  np.testing.assert_allclose(_bone_lengths(np.asarray(new['pose_3d'])),
                             _bone_lengths(batch['pose_3d']), rtol=1e-3)
  new_17 = np.concatenate([np.zeros((400, 1, 3)), np.asarray(new['pose_3d'])], axis=1)
  want_2d, _ = _pipeline(new_17 + _on_axis(batch['root_distance']), 'h36m')
  in_front = np.asarray(new['pose_3d'] != batch['pose_3d']).any(axis=(1, 2))
  np.testing.assert_allclose(np.asarray(new['pose_2d'])[in_front], want_2d[in_front],
                             atol=1e-4)


def test_hip_flexion_by_hand_and_after_a_bend():
  standing = _standing_person()
  np.testing.assert_allclose(pose_bodies.hip_flexion_deg(standing), [0.0, 0.0], atol=1e-6)
  flexion = np.radians([[45.0, 0.0], [90.0, 90.0]])  # right thigh half-way, left seated
  bent = np.asarray(pose_bodies.bend_legs(standing, flexion), np.float64)
  np.testing.assert_allclose(pose_bodies.hip_flexion_deg(bent), [45.0, 90.0], atol=1e-3)
  # Straight down, at 45 degrees forward, straight forward, by hand.
  thighs = np.array([[0.0, 400.0, 0.0], [0.0, 300.0, -300.0], [0.0, 0.0, -400.0]])
  poses = np.repeat(standing[None], 3, 0)
  poses[:, skeleton.JOINT_NAMES.index('RKnee')] = standing[1] + thighs
  np.testing.assert_allclose(pose_bodies.hip_flexion_deg(poses)[:, 0], [0.0, 45.0, 90.0],
                             atol=1e-6)


def test_a_window_keeps_one_bend_and_its_centre_frame_is_the_rows():
  frames = _crop_batch(np.random.default_rng(7), 3)
  batch = {'pose_2d': frames['pose_2d'][1:2], 'pose_3d': frames['pose_3d'][1:2],
           'root_distance': frames['root_distance'][1:2],
           'pose_2d_window': frames['pose_2d'][None], 'pose_3d_window': frames['pose_3d'][None],
           'root_distance_window': frames['root_distance'][None]}
  new = pose_bodies.new_bodies(batch, _stats(), jax.random.PRNGKey(4), 'h36m', 0.0, 1.0)
  np.testing.assert_allclose(new['pose_2d_window'][0, 1], new['pose_2d'][0], atol=1e-5)
  assert np.abs(np.asarray(new['pose_2d_window']) - frames['pose_2d'][None]).max() > 1e-3
  # Every frame bent alike: the window's new 3D poses, filmed again, are its 2D input.
  old_17 = np.concatenate([np.zeros((3, 1, 3)), frames['pose_3d']], axis=1)
  new_17 = np.concatenate([np.zeros((1, 1, 3)), np.asarray(new['pose_3d'])], axis=1)[0]
  flexion = _flexion_between(old_17[1], new_17)
  window_3d = np.asarray(pose_bodies.bend_legs(old_17, np.repeat(flexion[None], 3, 0)))
  want_window, _ = _pipeline(window_3d + _on_axis(frames['root_distance']), 'h36m')
  np.testing.assert_allclose(new['pose_2d_window'][0], want_window, atol=1e-3)


def _flexion_between(before, after):
  """(2, 2) radians of hip and knee flexion that bend_legs added between two poses (17, 3),
  from the thigh's and the shin's signed turns about the hips' axis."""
  joint = lambda name: skeleton.JOINT_NAMES.index(name)
  axis = before[joint('RHip')] - before[joint('LHip')]
  axis /= np.linalg.norm(axis)
  def turn(a, b):  # signed angle from a to b about the axis (both orthogonalised to it)
    a, b = a - axis * (a @ axis), b - axis * (b @ axis)
    return np.arctan2(np.cross(a, b) @ axis, a @ b)
  flexion = np.zeros((2, 2))
  for side, s in enumerate('RL'):
    thigh = [p[joint(s + 'Knee')] - p[joint(s + 'Hip')] for p in (before, after)]
    shin = [p[joint(s + 'Ankle')] - p[joint(s + 'Knee')] for p in (before, after)]
    flexion[side] = turn(*thigh), turn(*thigh) - turn(*shin)
  return flexion
