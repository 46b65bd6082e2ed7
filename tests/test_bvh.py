"""BVH output: the written file's forward kinematics give back the poses, and its parser."""

import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hpe_jax.inference import bvh
from tfds_h36m import skeleton

# A rest skeleton in the camera frame (y down), mm: hips, legs, spine, neck, head, arms.
REST_MM = np.array([
    [0, 0, 0], [-130, 5, 10], [10, 440, 20], [0, 430, -30], [130, 5, 10], [-10, 440, 20],
    [0, 430, -30], [5, -230, 15], [0, -250, -10], [0, -110, -80], [0, -120, 10],
    [150, 20, 5], [280, 10, 0], [250, 0, 10], [-150, 20, 5], [-280, 10, 0], [-250, 0, 10]],
                   float)


def _posed(local, root_mm):
  """Positions (N, 17, 3) of REST_MM turned by local rotations (N, 17, 3, 3), root at root_mm."""
  n = len(local)
  rotations, points = np.zeros((n, 17, 3, 3)), np.zeros((n, 17, 3))
  for joint, parent in enumerate(skeleton.PARENTS):
    if parent < 0:
      rotations[:, joint], points[:, joint] = local[:, joint], root_mm
    else:
      points[:, joint] = points[:, parent] + rotations[:, parent] @ REST_MM[joint]
      rotations[:, joint] = rotations[:, parent] @ local[:, joint]
  return points


def _sequence(n=120, seed=0):
  """Poses of one rigid skeleton: random joint rotations, a moving root, and the hard cases (a
  bone folded back onto its parent, Euler angles at gimbal lock)."""
  rng = np.random.default_rng(seed)
  rotvecs = rng.normal(0.0, 0.7, (n, 17, 3))
  rotvecs[0] = 0.0
  local = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(n, 17, 3, 3)
  local[2, :] = Rotation.from_euler('ZXY', [30.0, 90.0, -40.0], degrees=True).as_matrix()
  root = rng.normal(0.0, 300.0, (n, 3)) + [0.0, 0.0, 4000.0]
  poses = _posed(local, root)
  shoulder, elbow, wrist = (skeleton.JOINT_NAMES.index(j) for j in ('LShoulder', 'LElbow',
                                                                   'LWrist'))
  upper_arm = poses[1, elbow] - poses[1, shoulder]  # frame 1: the forearm folded back on it
  poses[1, wrist] = poses[1, elbow] - upper_arm / np.linalg.norm(upper_arm) * np.linalg.norm(
      REST_MM[wrist])
  return poses


def _round_trip(poses, tmp_path, fps=50.0):
  path = str(tmp_path / 'poses.bvh')
  offsets = bvh.write_bvh(path, poses, fps)
  motion = bvh.read_bvh(path)
  return motion, offsets, bvh.forward_kinematics(motion) @ bvh.CAMERA_TO_BVH  # back to camera


def test_forward_kinematics_of_the_file_give_back_the_poses(tmp_path):
  poses = _sequence()
  motion, offsets, positions = _round_trip(poses, tmp_path, fps=25.0)
  assert motion.names == list(skeleton.JOINT_NAMES)
  assert motion.parents == list(skeleton.PARENTS)
  assert motion.channels[0][:3] == ['Xposition', 'Yposition', 'Zposition']
  assert all(c == ['Zrotation', 'Xrotation', 'Yrotation'] for c in motion.channels[1:])
  assert sorted(motion.end_sites) == sorted(['RAnkle', 'LAnkle', 'Head', 'LWrist', 'RWrist'])
  assert motion.frames.shape == (len(poses), 6 + 16 * 3) and motion.frame_time == 0.04
  np.testing.assert_allclose(np.linalg.norm(offsets, axis=-1),
                             np.linalg.norm(REST_MM, axis=-1), atol=1e-6)
  knee = skeleton.JOINT_NAMES.index('RKnee')  # rest pose: legs down in the y-up frame
  np.testing.assert_allclose(offsets[knee], [0, -np.linalg.norm(REST_MM[knee]), 0], atol=1e-6)
  errors = np.linalg.norm(positions - poses, axis=-1)
  assert errors.max() < 0.01, errors.max()  # mm
  assert os.listdir(tmp_path) == ['poses.bvh']


def test_root_relative_poses_keep_the_root_at_the_origin(tmp_path):
  poses = _sequence(n=10, seed=1)
  poses -= poses[:, :1]
  motion, _, positions = _round_trip(poses, tmp_path)
  np.testing.assert_array_equal(motion.frames[:, :3], 0.0)
  assert np.abs(positions - poses).max() < 0.01


def test_a_bone_of_varying_length_moves_only_its_end_joint(tmp_path):
  poses = _sequence(n=40, seed=2)
  wrist, elbow = skeleton.JOINT_NAMES.index('LWrist'), skeleton.JOINT_NAMES.index('LElbow')
  forearm = poses[:, wrist] - poses[:, elbow]
  stretch = np.where(np.arange(40) % 2, 20.0, 0.0)  # mean length: 10 mm over the rest
  poses[:, wrist] += forearm / np.linalg.norm(forearm, axis=-1, keepdims=True) * stretch[:, None]
  _, _, positions = _round_trip(poses, tmp_path)
  errors = np.linalg.norm(positions - poses, axis=-1)
  np.testing.assert_allclose(errors[:, wrist], 10.0, atol=0.01)
  assert np.delete(errors, wrist, axis=1).max() < 0.01


def test_the_parser_reads_other_channel_orders(tmp_path):
  path = tmp_path / 'arm.bvh'
  path.write_text('HIERARCHY\nROOT hips\n{\n  OFFSET 1 2 3\n'
                  '  CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation\n'
                  '  JOINT arm\n  {\n    OFFSET 0 10 0\n    CHANNELS 3 Xrotation Yrotation '
                  'Zrotation\n    End Site\n    {\n      OFFSET 5 0 0\n    }\n  }\n}\n'
                  'MOTION\nFrames: 2\nFrame Time: 0.1\n'
                  '0 0 0 0 0 0 0 0 0\n100 0 0 0 0 90 0 0 0\n')
  motion = bvh.read_bvh(str(path))
  assert motion.names == ['hips', 'arm'] and motion.parents == [-1, 0]
  np.testing.assert_array_equal(motion.end_sites['arm'], [5, 0, 0])
  # Frame 1: the root turned 90 degrees about z sends the arm's offset (0, 10, 0) to -x.
  np.testing.assert_allclose(bvh.forward_kinematics(motion),
                             [[[1, 2, 3], [1, 12, 3]], [[101, 2, 3], [91, 2, 3]]], atol=1e-9)


@pytest.mark.parametrize('poses, fps, message', [
    (np.zeros((4, 16, 3)), 50, r'shape \(N, 17, 3\) with N >= 1, got \(4, 16, 3\)'),
    (np.zeros((0, 17, 3)), 50, r'got \(0, 17, 3\)'),
    (np.full((2, 17, 3), np.nan), 50, 'NaN or infinite'),
    (np.zeros((2, 17, 3)), 0, 'fps must be positive'),
])
def test_bad_poses_are_one_error_and_no_file(tmp_path, poses, fps, message):
  with pytest.raises(ValueError, match=message):
    bvh.write_bvh(str(tmp_path / 'x.bvh'), poses, fps)
  assert os.listdir(tmp_path) == []
