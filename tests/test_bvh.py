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
  assert motion.fps == pytest.approx(10.0)
  # The root's position channels replace its OFFSET (1, 2, 3). Frame 1: the root turned 90
  # degrees about z sends the arm's offset (0, 10, 0) to -x.
  np.testing.assert_allclose(bvh.forward_kinematics(motion),
                             [[[0, 0, 0], [0, 10, 0]], [[100, 0, 0], [90, 0, 0]]], atol=1e-9)


_CHAIN = """HIERARCHY
ROOT root
{
  OFFSET 0 0 0
  CHANNELS <root>
  JOINT middle
  {
    OFFSET <middle offset>
    CHANNELS <middle>
    JOINT tip
    {
      OFFSET 0 5 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 1 0
      }
    }
  }
}
MOTION
Frames: <count>
Frame Time: 0.0083333
"""


def _chain(path, frames, root='Zrotation Xrotation Yrotation',
           middle='Zrotation Xrotation Yrotation', middle_offset='0 10 0', windows=False):
  """Writes a two-bone chain and returns its path: the root at the origin, the middle joint
  10 units up, the tip 5 above it (no position channels unless given). windows: CRLF line
  ends, trailing spaces and tabs."""
  text = (_CHAIN.replace('<root>', f'{len(root.split())} {root}')
          .replace('<middle>', f'{len(middle.split())} {middle}')
          .replace('<middle offset>', middle_offset).replace('<count>', str(len(frames))) +
          '\n'.join(frames) + '\n')
  if windows:
    text = text.replace('  ', '\t').replace(': ', ':\t').replace(' ', '\t').replace(
        '\n', ' \r\n')
  path.write_bytes(text.encode())
  return str(path)


def test_a_chain_turned_at_two_joints(tmp_path):
  # Frame 1. The root 90 degrees about z: the middle joint's offset (0, 10, 0) turns to
  # (-10, 0, 0). The middle joint 90 degrees about its x: the tip's offset (0, 5, 0) turns
  # to (0, 0, 5) in the root's frame, which the root's turn about z leaves as it is.
  path = _chain(tmp_path / 'chain.bvh', ('0 0 0 0 0 0 0 0 0', '90 0 0 0 90 0 0 0 0'))
  positions, rotations = bvh.forward_kinematics(bvh.read_bvh(path), with_rotations=True)
  np.testing.assert_allclose(positions, [[[0, 0, 0], [0, 10, 0], [0, 15, 0]],
                                         [[0, 0, 0], [-10, 0, 0], [-10, 0, 5]]], atol=1e-9)
  # Rz(90) @ Rx(90): local x, y, z point along y, z, x.
  np.testing.assert_allclose(rotations[1, 1], [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-9)
  np.testing.assert_allclose(rotations[1, 2], rotations[1, 1])
  np.testing.assert_allclose(bvh.forward_kinematics(bvh.read_bvh(path)), positions)


def test_each_joint_has_its_own_euler_order(tmp_path):
  angles = {'Z': 30.0, 'X': -50.0, 'Y': 70.0}  # one rotation, intrinsic ZXY
  xyz = Rotation.from_euler('ZXY', list(angles.values()), degrees=True).as_euler(
      'XYZ', degrees=True)
  zxy = ' '.join(str(v) for v in angles.values())
  reference = _chain(tmp_path / 'zxy.bvh', (f'0 0 0 {zxy} 0 0 0',))
  mixed = _chain(tmp_path / 'xyz.bvh', (f'0 0 0 {" ".join(map(str, xyz))} 0 0 0',),
                 middle='Xrotation Yrotation Zrotation')
  assert bvh.read_bvh(mixed).channels[1] == ['Xrotation', 'Yrotation', 'Zrotation']
  np.testing.assert_allclose(bvh.forward_kinematics(bvh.read_bvh(mixed)),
                             bvh.forward_kinematics(bvh.read_bvh(reference)), atol=1e-9)


def test_position_channels_replace_the_offset_in_any_place(tmp_path):
  # The middle joint's position channels (after its rotations) hold (0, 20, 0): its bone
  # is 20 long whatever its OFFSET says; the root's channels put it at (1, 2, 3).
  path = _chain(tmp_path / 'six.bvh', ('0 1 2 3 0 0 0 0 20 0 0 0 0',),
                root='Zrotation Xposition Yposition Zposition',
                middle='Zrotation Xrotation Yrotation Xposition Yposition Zposition',
                middle_offset='7 7 7')
  np.testing.assert_allclose(bvh.forward_kinematics(bvh.read_bvh(path)),
                             [[[1, 2, 3], [1, 22, 3], [1, 27, 3]]], atol=1e-9)


def test_windows_line_ends_and_tabs(tmp_path):
  frames = ('0 0 0 0 0 0 0 0 0', '90 0 0 0 90 0 0 0 0')
  unix = _chain(tmp_path / 'unix.bvh', frames)
  windows = _chain(tmp_path / 'windows.bvh', frames, windows=True)
  assert b'\tOFFSET\t0\t5\t0 \r\n' in open(windows, 'rb').read()
  motion = bvh.read_bvh(windows)
  assert motion.names == ['root', 'middle', 'tip'] and motion.frame_time == 0.0083333
  np.testing.assert_allclose(bvh.forward_kinematics(motion),
                             bvh.forward_kinematics(bvh.read_bvh(unix)))


_HEADER = ('HIERARCHY\nROOT root\n{\n  OFFSET 0 0 0\n  CHANNELS 3 Zrotation Xrotation '
           'Yrotation\n  End Site\n  {\n    OFFSET 0 1 0\n  }\n}\n')


@pytest.mark.parametrize('content, message', [
    (_HEADER + 'MOTION\nFrames: 2\nFrame Time: 0.1\n0 0 0\n0 0\n',
     '5 motion values, but Frames: 2 of 3 channels make 6'),
    (_HEADER.replace('CHANNELS 3', 'CHANNELS 2') + 'MOTION\nFrames: 1\nFrame Time: 0.1\n0 0\n',
     "line 5: CHANNELS count mismatch: channel name 'Yrotation' beyond the count"),
    (_HEADER.replace('CHANNELS 3', 'CHANNELS 4') + 'MOTION\nFrames: 1\nFrame Time: 0.1\n0 0\n',
     "line 6: CHANNELS count mismatch: 4 announced, but 'End' is not a channel name"),
    (_HEADER + 'MOTION\nFrames: 1\nFrame Time: 0.1\n0 x 0\n',
     "line 14: motion value 'x' is not a finite number"),
    (_HEADER + 'MOTION\nFrames: 1\nFrame Time: 0.1\n0 nan 0\n',
     "line 14: motion value 'nan' is not a finite number"),
    (_HEADER.replace('OFFSET 0 1 0', 'OFFSET 0 one 0') + 'MOTION\nFrames: 1\n',
     "line 8: OFFSET: 'one' is not a finite number"),
    (_HEADER, 'no MOTION section'),
    (_HEADER[:-2] + 'MOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0\n',
     "unbalanced braces: 1 block(s) still open at MOTION"),
    (_HEADER + '}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0\n',
     "line 11: unbalanced braces: a '}' that closes no block"),
    (_HEADER + 'MOTION\nFrames: x\nFrame Time: 0.1\n', "Frames: 'x' is not a positive whole"),
    (_HEADER + 'MOTION\nFrames: 0\nFrame Time: 0.1\n', "Frames: '0' is not a positive whole"),
    (_HEADER + 'MOTION\nFrames: 1\nFrame Time: 0\n0 0 0\n', "Frame Time: '0' is not a positive"),
    (_HEADER + 'MOTION\n0 0 0\n', "line 12: expected 'Frames: <count>' after MOTION, found '0'"),
    ('ROOT root\n{\n}\nMOTION\n', "line 1: no HIERARCHY at the start of the file (found 'ROOT')"),
    ('HIERARCHY\nROOT root\n{\n  OFFSET 0 0 0\n}\nMOTION\n', "joint 'root' has no CHANNELS"),
    ('HIERARCHY\nJOINT root\n', "line 2: unexpected 'JOINT' in no joint"),
    ('', 'empty file'),
    (' \r\n\t\n', 'empty file'),
    (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe', 'not UTF-8 text (byte 0 is 0x89)'),
])
def test_a_malformed_file_is_one_error_naming_it(tmp_path, content, message):
  path = tmp_path / 'bad.bvh'
  path.write_bytes(content if isinstance(content, bytes) else content.encode())
  with pytest.raises(bvh.BvhError) as raised:
    bvh.read_bvh(path)
  text = str(raised.value)
  assert isinstance(raised.value, ValueError) and '\n' not in text
  assert text.startswith(f'{path}: ') and message in text, text


def test_a_missing_file_is_a_bvh_error(tmp_path):
  with pytest.raises(bvh.BvhError, match='cannot read the file'):
    bvh.read_bvh(tmp_path / 'none.bvh')


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
