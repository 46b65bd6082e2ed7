"""Tests of the synthetic skeleton motion (tfds_h36m/synthetic/motion.py)."""

import functools

import numpy as np
import pytest

from tfds_h36m import cameras
from tfds_h36m import skeleton
from tfds_h36m.synthetic import motion

_SUBJECTS = skeleton.TRAIN_SUBJECTS + skeleton.TEST_SUBJECTS
_NUM_FRAMES = 300  # 6 s at 50 fps
# (subject, seed) pairs every action is generated for.
_CASES = (('S1', 0), ('S9', 1), ('S11', 2))
_BONES = np.array(skeleton.BONES)
# Actions that walk: the swinging foot moves fastest.
_LOCOMOTION = tuple(
    action for action in skeleton.ACTIONS
    if motion.ACTION_ARCHETYPE[action] == 'walk'
    or motion.ACTION_VARIATIONS[action].get('posture') == 'walk')


@functools.lru_cache(maxsize=None)
def _sequence(subject, action, seed):
  pose = motion.generate_sequence(
      np.random.default_rng(seed), motion.subject_bone_lengths(subject), action, _NUM_FRAMES)
  pose.setflags(write=False)
  return pose


def _bone_lengths(pose):
  return np.linalg.norm(pose[..., _BONES[:, 1], :].astype(np.float64)
                        - pose[..., _BONES[:, 0], :], axis=-1)


def test_subject_bone_lengths_are_deterministic_symmetric_and_plausible():
  lengths = {s: motion.subject_bone_lengths(s) for s in _SUBJECTS}
  for subject, value in lengths.items():
    assert value.shape == (16,)
    np.testing.assert_array_equal(value, motion.subject_bone_lengths(subject))
    for left, right in zip(skeleton.LEFT_JOINTS, skeleton.RIGHT_JOINTS):
      assert value[left - 1] == value[right - 1]  # bone i ends at joint i + 1
    ratio = value / motion.MEAN_BONE_LENGTHS_MM
    assert np.all((ratio > 0.88) & (ratio < 1.12))
    legs = value[1] + value[2]
    assert 800 < legs < 1000  # hip to ankle, adult
  rounded = {tuple(np.round(v, 3)) for v in lengths.values()}
  assert len(rounded) == len(_SUBJECTS)


def test_every_action_has_an_archetype():
  assert set(motion.ACTION_ARCHETYPE) == set(skeleton.ACTIONS)
  assert set(motion.ACTION_VARIATIONS) == set(skeleton.ACTIONS)
  assert set(motion.ACTION_ARCHETYPE.values()) <= set(motion.ARCHETYPES)
  assert len(set(motion.ACTION_ARCHETYPE.values())) >= 6


def test_generate_sequence_shape_dtype_and_determinism():
  lengths = motion.subject_bone_lengths('S5')
  a = motion.generate_sequence(np.random.default_rng(7), lengths, 'Walking', 40)
  b = motion.generate_sequence(np.random.default_rng(7), lengths, 'Walking', 40)
  c = motion.generate_sequence(np.random.default_rng(8), lengths, 'Walking', 40)
  assert a.shape == (40, 17, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).max() > 10.0


@pytest.mark.parametrize('subject', ['S1', 'S8', 'S11'])
def test_bone_lengths_are_constant_and_the_subjects(subject):
  expected = motion.subject_bone_lengths(subject)
  for action in ('Walking', 'SittingDown', 'Purchases', 'Greeting'):
    lengths = _bone_lengths(_sequence(subject, action, 0))
    np.testing.assert_allclose(lengths, np.broadcast_to(expected, lengths.shape), atol=1e-3)


def test_bone_lengths_differ_between_subjects():
  a = _bone_lengths(_sequence('S1', 'Walking', 0))[0]
  b = _bone_lengths(_sequence('S9', 'Walking', 0))[0]
  assert np.abs(a - b).max() > 5.0


def test_measure_joint_angles_inverts_the_kinematics():
  rng = np.random.default_rng(0)
  angles = {name: rng.uniform(lo, hi, 500) for name, (lo, hi) in motion.JOINT_LIMITS.items()}
  pose = motion._forward_kinematics(angles, motion.subject_bone_lengths('S6'))
  measured = motion.measure_joint_angles(pose)
  assert set(measured) == set(motion.JOINT_LIMITS)
  for name, value in angles.items():
    observable = ~np.isnan(measured[name])
    assert observable.mean() > 0.8, name
    np.testing.assert_allclose(measured[name][observable], value[observable], atol=1e-6,
                               err_msg=name)


@pytest.mark.parametrize('action', skeleton.ACTIONS)
def test_joint_limits_respected(action):
  for subject, seed in _CASES:
    angles = motion.measure_joint_angles(_sequence(subject, action, seed))
    for name, (lo, hi) in motion.JOINT_LIMITS.items():
      value = angles[name][~np.isnan(angles[name])]  # axial rotations of straight limbs
      assert np.all(value >= lo - 0.01), (subject, name, value.min())
      assert np.all(value <= hi + 0.01), (subject, name, value.max())


@pytest.mark.parametrize('action', skeleton.ACTIONS)
def test_motion_is_smooth(action):
  # Per-frame displacement at 50 fps: 60 mm is 3 m/s; a walking foot swings
  # forward at up to about 5 m/s (100 mm per frame).
  max_step = 100.0 if action in _LOCOMOTION else 60.0
  for subject, seed in _CASES:
    pose = _sequence(subject, action, seed).astype(np.float64)
    step = np.linalg.norm(np.diff(pose, axis=0), axis=-1)
    assert step.max() < max_step, (subject, step.max())
    # No kinks: the velocity changes by at most 15 mm/frame between frames.
    assert np.linalg.norm(np.diff(pose, 2, axis=0), axis=-1).max() < 15.0, subject


@pytest.mark.parametrize('action', skeleton.ACTIONS)
def test_capsules_do_not_interpenetrate(action):
  for subject, seed in _CASES:
    assert motion.min_capsule_clearance_mm(_sequence(subject, action, seed)) >= 0.0, subject


@pytest.mark.parametrize('subject', ['S1', 'S5', 'S9', 'S11'])
def test_all_joints_project_inside_every_image(subject):
  for index, action in enumerate(skeleton.ACTIONS):
    pose = _sequence(subject, action, index % 3)
    for camera in cameras.load_cameras(subject):
      pose_2d = cameras.project(cameras.world_to_camera(pose, camera), camera)
      width, height = camera.image_size
      assert np.all(pose_2d > 0) and np.all(pose_2d[..., 0] < width), (action, camera)
      assert np.all(pose_2d[..., 1] < height), (action, camera.camera_id)


@pytest.mark.parametrize('action', skeleton.ACTIONS)
def test_feet_on_the_floor_and_seated_pelvis_at_chair_height(action):
  pose = _sequence('S7', action, 3)
  lowest_ankle = pose[:, [3, 6], 2].min(axis=1)
  soft = motion.FOOT_SOFTNESS_MM * np.log(2)
  assert np.all(lowest_ankle >= motion.ANKLE_HEIGHT_MM - soft - 1e-3)
  assert np.all(lowest_ankle <= motion.ANKLE_HEIGHT_MM + 1e-3)
  pelvis_z = pose[:, 0, 2]
  if motion.ACTION_ARCHETYPE[action] == 'sit' or (
      motion.ACTION_VARIATIONS[action].get('posture') == 'sit'):
    assert np.all((pelvis_z > 400) & (pelvis_z < 650))
  elif action in _LOCOMOTION:
    assert np.all(pelvis_z > 800)
    travelled = np.linalg.norm(np.diff(pose[:, 0, :2], axis=0), axis=-1).sum()
    assert travelled > 1500.0  # mm in 6 s


def test_walking_turns_and_stays_near_the_volume_centre():
  pose = _sequence('S8', 'Walking', 4)
  offset = np.linalg.norm(pose[:, 0, :2] - motion.VOLUME_CENTER_MM, axis=-1)
  assert offset.max() < 1300.0
  hips = pose[:, 4, :2] - pose[:, 1, :2]
  heading = np.unwrap(np.arctan2(hips[:, 1], hips[:, 0]))
  assert np.ptp(heading) > np.pi / 2


@pytest.mark.parametrize('action', skeleton.ACTIONS)
def test_rest_pose_is_clear(action):
  # The capsule separation falls back to the rest pose: it must be clear itself.
  for subject in _SUBJECTS:
    lengths = motion.subject_bone_lengths(subject)
    clock = motion._Clock(2, skeleton.FPS, np.random.default_rng(0), lengths)
    archetype = motion.ARCHETYPES[motion.ACTION_ARCHETYPE[action]]
    rest = motion._within_limits(archetype.drive(clock, motion.ACTION_VARIATIONS[action]).rest)
    pose = motion._forward_kinematics({k: np.full(1, v) for k, v in rest.items()}, lengths)
    assert motion.min_capsule_clearance_mm(pose) > 1.0, subject


def test_segment_distance():
  p = np.array([0.0, 0.0, 0.0])
  q = np.array([100.0, 0.0, 0.0])
  # Crossing at right angles 30 mm apart; parallel overlapping; end to end.
  assert motion.segment_distance(p, q, [50.0, -50.0, 30.0], [50.0, 50.0, 30.0]) == (
      pytest.approx(30.0))
  assert motion.segment_distance(p, q, [20.0, 40.0, 0.0], [80.0, 40.0, 0.0]) == (
      pytest.approx(40.0))
  assert motion.segment_distance(p, q, [130.0, 40.0, 0.0], [200.0, 90.0, 0.0]) == (
      pytest.approx(50.0))


def test_clearance_detects_a_forearm_through_the_thigh():
  pose = _sequence('S1', 'Waiting', 0)[:1].copy()
  assert motion.min_capsule_clearance_mm(pose) >= 0.0
  pose[0, 13] = pose[0, 5]  # left wrist on the left knee
  assert motion.min_capsule_clearance_mm(pose) < -50.0
