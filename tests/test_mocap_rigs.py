"""Motion-capture rigs: hand-made BVH skeletons in T-pose mapped to H36M-17 (mm)."""

import json

import numpy as np
import pytest

from hpe_jax.inference import bvh
from hpe_jax.inference import layouts
from tfds_h36m import skeleton
from tfds_h36m.mocap import rigs

J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}

# T-poses, cm: (joint, parent, position from the parent with no rotation, degrees about z).
CMU_JOINTS = (
    ('hip', None, (0, 100, 0), 0), ('chest', 'hip', (0, 50, 0), 0),
    ('head', 'chest', (0, 20, 0), 0),
    ('lShldr', 'chest', (15, 0, 0), 0), ('lForeArm', 'lShldr', (30, 0, 0), 0),
    ('lHand', 'lForeArm', (25, 0, 0), 0),
    ('rShldr', 'chest', (-15, 0, 0), 0), ('rForeArm', 'rShldr', (-30, 0, 0), 0),
    ('rHand', 'rForeArm', (-25, 0, 0), 0),
    ('lThigh', 'hip', (10, 0, 0), 0), ('lShin', 'lThigh', (0, -45, 0), 0),
    ('lFoot', 'lShin', (0, -45, 0), 0),
    ('rThigh', 'hip', (-10, 0, 0), 0), ('rShin', 'rThigh', (0, -45, 0), 0),
    ('rFoot', 'rShin', (0, -45, 0), 0))
# Bandai Namco's names; its Head turned 90 degrees about z, so that its local x (the
# direction of Bandai's bones) points up.
BANDAI_JOINTS = (
    ('joint_Root', None, (0, 0, 0), 0), ('Hips', 'joint_Root', (0, 100, 0), 0),
    ('Spine', 'Hips', (0, 25, 0), 0), ('Chest', 'Spine', (0, 25, 0), 0),
    ('Neck', 'Chest', (0, 15, 0), 0), ('Head', 'Neck', (0, 5, 0), 90),
    ('Shoulder_L', 'Chest', (5, 0, 0), 0), ('UpperArm_L', 'Shoulder_L', (10, 0, 0), 0),
    ('LowerArm_L', 'UpperArm_L', (30, 0, 0), 0), ('Hand_L', 'LowerArm_L', (25, 0, 0), 0),
    ('Shoulder_R', 'Chest', (-5, 0, 0), 0), ('UpperArm_R', 'Shoulder_R', (-10, 0, 0), 0),
    ('LowerArm_R', 'UpperArm_R', (-30, 0, 0), 0), ('Hand_R', 'LowerArm_R', (-25, 0, 0), 0),
    ('UpperLeg_L', 'Hips', (10, 0, 0), 0), ('LowerLeg_L', 'UpperLeg_L', (0, -45, 0), 0),
    ('Foot_L', 'LowerLeg_L', (0, -45, 0), 0), ('Toes_L', 'Foot_L', (0, -5, 10), 0),
    ('UpperLeg_R', 'Hips', (-10, 0, 0), 0), ('LowerLeg_R', 'UpperLeg_R', (0, -45, 0), 0),
    ('Foot_R', 'LowerLeg_R', (0, -45, 0), 0), ('Toes_R', 'Foot_R', (0, -5, 10), 0))
# Both T-poses in H36M-17, mm, by hand: the hips' mid-point 1 m up, the shoulders' 1.5 m.
T_POSE_MM = {
    'Pelvis': (0, 1000, 0), 'RHip': (-100, 1000, 0), 'RKnee': (-100, 550, 0),
    'RAnkle': (-100, 100, 0), 'LHip': (100, 1000, 0), 'LKnee': (100, 550, 0),
    'LAnkle': (100, 100, 0), 'Spine': (0, 1250, 0), 'Thorax': (0, 1500, 0),
    'Neck': (0, 1700, 0), 'LShoulder': (150, 1500, 0), 'LElbow': (450, 1500, 0),
    'LWrist': (700, 1500, 0), 'RShoulder': (-150, 1500, 0), 'RElbow': (-450, 1500, 0),
    'RWrist': (-700, 1500, 0)}


def _write_bvh(path, joints, all_positions=False, head_degrees=None):
  """Writes a one-frame, tab-indented BVH of `joints` (parents first) and returns its path.
  Rotation channels Zrotation Xrotation Yrotation; position channels (on the root, or on
  every joint with all_positions, as Bandai Namco's files) hold the position, while their
  OFFSET is off by 400 along z, which the position channels replace."""
  children = {}
  for name, parent, _, _ in joints:
    children.setdefault(parent, []).append(name)
  rest = {name: (np.asarray(position, float), z) for name, _, position, z in joints}
  if head_degrees is not None:
    rest['head'] = (rest['head'][0], head_degrees)
  lines, values = ['HIERARCHY'], []

  def block(name, depth):
    pad, (position, z) = '\t' * depth, rest[name]
    positioned = all_positions or depth == 0
    offset = position + (0, 0, -400) if positioned else position
    channels = (['Xposition', 'Yposition', 'Zposition'] if positioned else []) + [
        'Zrotation', 'Xrotation', 'Yrotation']
    lines.extend([f"{pad}{'JOINT' if depth else 'ROOT'} {name}", f'{pad}{{',
                  f'{pad}\tOFFSET ' + ' '.join(map(str, offset)),
                  f'{pad}\tCHANNELS {len(channels)} ' + ' '.join(channels)])
    values.extend([*(position if positioned else []), z, 0, 0])
    for child in children.get(name, []):
      block(child, depth + 1)
    if name not in children:
      lines.extend([f'{pad}\tEnd Site', f'{pad}\t{{', f'{pad}\t\tOFFSET 0 0 0', f'{pad}\t}}'])
    lines.append(f'{pad}}}')

  block(joints[0][0], 0)
  lines.extend(['MOTION', 'Frames:\t1', 'Frame Time:\t0.0333333', ' '.join(map(str, values))])
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def _expected(head_top):
  return np.array([T_POSE_MM.get(name, head_top) for name in skeleton.JOINT_NAMES], float)


def test_cmu_rig_on_a_t_pose(tmp_path):
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'cmu.bvh', CMU_JOINTS))
  rig = rigs.detect_rig(motion.names)
  assert rig is rigs.RIGS['cmu'] and rig.unit_mm == 10.0
  poses = rigs.h36m_positions(motion, rig)
  assert poses.shape == (1, 17, 3) and poses.dtype == np.float64
  # The head top: the rig's offset (-0.59, 17.24, 2.97) cm from the head joint, 17.5 cm along
  # CMU's neck-to-head rest direction.
  np.testing.assert_allclose(poses[0], _expected((-5.9, 1872.4, 29.7)), atol=1e-6)
  assert np.linalg.norm(poses[0, J['Head']] - poses[0, J['Neck']]) == pytest.approx(175, abs=0.1)


def test_the_head_top_turns_with_the_head(tmp_path):
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'cmu.bvh', CMU_JOINTS, head_degrees=90))
  poses = rigs.h36m_positions(motion, rigs.RIGS['cmu'])
  # 90 degrees about z sends (x, y, z) to (-y, x, z).
  np.testing.assert_allclose(poses[0, J['Head']], (-172.4, 1700 - 5.9, 29.7), atol=1e-6)


def test_bandai_rig_on_a_t_pose(tmp_path):
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'bandai.bvh', BANDAI_JOINTS, all_positions=True))
  rig = rigs.detect_rig(motion.names)
  assert rig is rigs.RIGS['bandai'] and rig.unit_mm == 10.0
  # The head top: 17.5 cm along the Head joint's local x, turned to point up.
  np.testing.assert_allclose(rigs.h36m_positions(motion, rig)[0], _expected((0, 1875, 0)),
                             atol=1e-6)


def test_the_torso_is_the_detector_layouts_derivation(tmp_path):
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'cmu.bvh', CMU_JOINTS, head_degrees=30))
  motion.frames[0] = np.random.default_rng(0).normal(0, 40, motion.frames.shape[1])
  poses = rigs.h36m_positions(motion, rigs.RIGS['cmu'])
  torso = layouts.torso_joints(*(poses[:, J[name]] for name in ('LHip', 'RHip', 'LShoulder',
                                                                'RShoulder')))
  for name, point in torso.items():
    np.testing.assert_allclose(poses[:, J[name]], point, atol=1e-9)


def test_built_in_rigs_document_their_approximations():
  for rig in rigs.RIGS.values():
    assert set(rig.notes) <= set(skeleton.JOINT_NAMES)
    assert {'Head', 'Neck', 'Pelvis', 'Spine', 'Thorax', 'RHip', 'LHip'} <= set(rig.notes)
    assert 'approximate' in rig.notes['Head'] and all('\n' not in n for n in rig.notes.values())
  assert rigs.UP_AXIS == 1


def test_detect_rig_says_what_each_rig_misses():
  with pytest.raises(ValueError) as raised:
    rigs.detect_rig([name for name, *_ in CMU_JOINTS if name != 'rHand'] + ['Hips'])
  message = str(raised.value)
  assert '\n' not in message and 'cmu lacks rHand;' in message
  assert 'bandai lacks UpperLeg_R, LowerLeg_R' in message and '--config mapping' in message


def test_a_motion_without_the_rigs_joints(tmp_path):
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'cmu.bvh', CMU_JOINTS))
  with pytest.raises(ValueError, match=r"rig 'bandai' maps: UpperLeg_R, LowerLeg_R, Foot_R"):
    rigs.h36m_positions(motion, rigs.RIGS['bandai'])


def test_load_rig_of_a_mapping_file(tmp_path):
  mapping = dict(rigs.RIGS['cmu'].joints, Pelvis=['lThigh', 'rThigh'],
                 Head={'joint': 'head', 'offset': [0, 15, 0]})
  path = tmp_path / 'mine.json'
  path.write_text(json.dumps({'name': 'mine', 'unit_mm': 25.4, 'joints': mapping,
                              'notes': {'Head': 'a guess'}}))
  rig = rigs.load_rig(str(path))
  assert rig.name == 'mine' and rig.notes == {'Head': 'a guess'}
  motion = bvh.read_bvh(_write_bvh(tmp_path / 'cmu.bvh', CMU_JOINTS))
  poses = rigs.h36m_positions(motion, rig)[0]
  np.testing.assert_allclose(poses, _expected((0, 1850, 0)) * 2.54, atol=1e-6)  # inches


_CMU_JOINTS = rigs.RIGS['cmu'].joints


@pytest.mark.parametrize('content, message', [
    ('{"name": "x", "unit_mm": 10,', 'not a JSON file (Expecting'),
    (b'\xff\xfe{}', 'not a JSON file'),
    ('[1, 2]', 'expected a JSON object'),
    ({'name': 'x', 'unit_mm': 10}, "missing keys 'joints'"),
    ({'name': 'x', 'unit_mm': 10, 'joints': _CMU_JOINTS, 'module': 'os'}, "unknown keys 'module'"),
    ({'name': '', 'unit_mm': 10, 'joints': _CMU_JOINTS}, '"name" must be a non-empty string'),
    ({'name': 'x', 'unit_mm': 0, 'joints': _CMU_JOINTS}, '"unit_mm" must be a positive number'),
    ({'name': 'x', 'unit_mm': '10', 'joints': _CMU_JOINTS}, "got '10'"),
    ('{"name": "x", "unit_mm": NaN, "joints": {}}', 'got nan'),
    ({'name': 'x', 'unit_mm': 10, 'joints': dict(_CMU_JOINTS, Nose='head')},
     "\"joints\" names 'Nose', not H36M-17 joints"),
    ({'name': 'x', 'unit_mm': 10, 'joints': {k: v for k, v in _CMU_JOINTS.items()
                                             if k not in ('LWrist', 'RWrist')}},
     '"joints" lacks LWrist, RWrist (only Pelvis, Thorax, Spine may be left out)'),
    ({'name': 'x', 'unit_mm': 10, 'joints': dict(_CMU_JOINTS, Neck=3)},
     "'Neck': 3 is not a joint name"),
    ({'name': 'x', 'unit_mm': 10, 'joints': dict(_CMU_JOINTS, Neck=[])},
     "'Neck': [] is not a list of joint names"),
    ({'name': 'x', 'unit_mm': 10, 'joints': dict(_CMU_JOINTS, Head={'joint': 'head',
                                                                   'offset': [0, 1]})},
     '\'Head\': {"joint": "head", "offset": [0, 1]} is not {"joint": name'),
    ({'name': 'x', 'unit_mm': 10, 'joints': _CMU_JOINTS, 'notes': {'Head': ['a']}},
     '"notes" \'Head\' must be a one-line string'),
])
def test_a_bad_mapping_file_is_one_error_naming_it(tmp_path, content, message):
  path = tmp_path / 'mapping.json'
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
  with pytest.raises(ValueError) as raised:
    rigs.load_rig(str(path))
  text = str(raised.value)
  assert text.startswith(f'{path}: ') and message in text and '\n' not in text, text
