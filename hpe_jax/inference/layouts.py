"""2D detectors' keypoint layouts and their one mapping to Human3.6M-17.

Each layout is one table: its joint names in the detector's order and, for the body
points the mapping uses, which of its joints holds each (`body`, by the COCO-17 names,
plus 'head_top' where the layout has one). Every layout goes through `to_h36m`, the one
derivation (vectors in px; mid(a, b) = (a + b) / 2):

  Pelvis = mid(left hip, right hip)
  Thorax = mid(left shoulder, right shoulder)
  Spine = mid(Pelvis, Thorax)
  Neck/Nose (H36M joint 9) = nose
  Head = the layout's head top where it has one (Halpe-26's `head`); otherwise
    mean(eyes, ears) + (mid(eyes) - nose): the centre of the face's four points moved
    up by the nose-to-eyes offset (towards the top of the head in any yaw); a face
    point that is missing (NaN) is left out of these means
  hips, knees, ankles, shoulders, elbows and wrists: copied.

The detectors' own neck and mid-hip points (OpenPose's Neck and MidHip, Halpe's neck
and hip) are not used, so every layout gives the lifter the same construction. A derived
joint's confidence is the lowest of the keypoints it is made of; a missing keypoint
(NaN) makes the joints built from it NaN (the face means excepted).
"""

import dataclasses
from typing import Optional

import numpy as np

from tfds_h36m import skeleton

COCO_JOINT_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
# H36M joint -> the body point it copies.
_DIRECT = {
    'RHip': 'right_hip', 'RKnee': 'right_knee', 'RAnkle': 'right_ankle', 'LHip': 'left_hip',
    'LKnee': 'left_knee', 'LAnkle': 'left_ankle', 'Neck': 'nose',
    'LShoulder': 'left_shoulder', 'LElbow': 'left_elbow', 'LWrist': 'left_wrist',
    'RShoulder': 'right_shoulder', 'RElbow': 'right_elbow', 'RWrist': 'right_wrist'}
_FACE = ('left_eye', 'right_eye', 'left_ear', 'right_ear')
# Derived H36M joints -> the body points their formula uses (for confidences).
_DERIVED_FROM = {
    'Pelvis': ('left_hip', 'right_hip'),
    'Thorax': ('left_shoulder', 'right_shoulder'),
    'Spine': ('left_hip', 'right_hip', 'left_shoulder', 'right_shoulder'),
    'Head': ('nose',) + _FACE}


@dataclasses.dataclass(frozen=True)
class Layout:
  """A detector's joint order. body: body point -> index (None: already H36M-17);
  normalized: coordinates are fractions of the image's width and height."""
  name: str
  joint_names: tuple
  body: Optional[dict]
  normalized: bool = False

  @property
  def num_joints(self):
    return len(self.joint_names)


def _layout(name, joint_names, body_names, normalized=False):
  """A Layout whose body points are given by the layout's joint names."""
  index = {n: i for i, n in enumerate(joint_names)}
  return Layout(name, tuple(joint_names), {point: index[joint]
                                           for point, joint in body_names.items()}, normalized)


_SAME = {n: n for n in COCO_JOINT_NAMES}
_OPENPOSE_BODY = {
    'nose': 'Nose', 'left_eye': 'LEye', 'right_eye': 'REye', 'left_ear': 'LEar',
    'right_ear': 'REar', 'left_shoulder': 'LShoulder', 'right_shoulder': 'RShoulder',
    'left_elbow': 'LElbow', 'right_elbow': 'RElbow', 'left_wrist': 'LWrist',
    'right_wrist': 'RWrist', 'left_hip': 'LHip', 'right_hip': 'RHip', 'left_knee': 'LKnee',
    'right_knee': 'RKnee', 'left_ankle': 'LAnkle', 'right_ankle': 'RAnkle'}

H36M = Layout('h36m', tuple(skeleton.JOINT_NAMES), None)
COCO = _layout('coco', COCO_JOINT_NAMES, _SAME)
# AlphaPose's Halpe-26: COCO-17, then the head top, neck, pelvis and six foot points.
HALPE26 = _layout('halpe26', COCO_JOINT_NAMES + (
    'head', 'neck', 'hip', 'left_big_toe', 'right_big_toe', 'left_small_toe',
    'right_small_toe', 'left_heel', 'right_heel'), dict(_SAME, head_top='head'))
OPENPOSE25 = _layout('openpose25', (
    'Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'MidHip',
    'RHip', 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar',
    'LBigToe', 'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel'), _OPENPOSE_BODY)
OPENPOSE18 = _layout('openpose18', (
    'Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'RHip',
    'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar'),
    _OPENPOSE_BODY)
BLAZEPOSE33 = _layout('blazepose33', (
    'nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
    'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky',
    'right_pinky', 'left_index', 'right_index', 'left_thumb', 'right_thumb', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle', 'left_heel',
    'right_heel', 'left_foot_index', 'right_foot_index'), _SAME, normalized=True)

LAYOUTS = {layout.name: layout for layout in (H36M, COCO, HALPE26, OPENPOSE25, OPENPOSE18,
                                              BLAZEPOSE33)}
# --format values: a layout, or a file layout of one (COCO results JSON holds COCO-17);
# 'mmpose': mmpose's files, which name their layout (COCO-17 where they do not; mmpose.py).
FORMATS = ('h36m', 'coco', 'coco_results', 'halpe26', 'openpose25', 'openpose18',
           'blazepose33', 'mmpose')
_FORMAT_LAYOUT = {'coco_results': 'coco', 'mmpose': 'coco'}


def for_format(fmt):
  """The Layout of a --format value."""
  return LAYOUTS[_FORMAT_LAYOUT.get(fmt, fmt)]


def formats_with(num_joints):
  """The --format values whose layout has `num_joints` joints (not 'mmpose': its files name
  their own)."""
  return [f for f in FORMATS if f != 'mmpose' and for_format(f).num_joints == num_joints]


def body_points(layout):
  """Body point (the COCO-17 names, and 'head_top' where the layout has one) -> the index of
  the `layout` joint holding it; H36M-17's own for H36M (its Neck/Nose is the nose, its Head
  the head top)."""
  if layout.body is not None:
    return dict(layout.body)
  joint = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
  return dict({point: joint[h36m] for h36m, point in _DIRECT.items()}, head_top=joint['Head'])


def torso_joints(left_hip, right_hip, left_shoulder, right_shoulder):
  """The derived H36M torso joints (..., 2) px: Pelvis = mid(hips), Thorax = mid(shoulders),
  Spine = mid(Pelvis, Thorax)."""
  pelvis = (left_hip + right_hip) / 2
  thorax = (left_shoulder + right_shoulder) / 2
  return {'Pelvis': pelvis, 'Thorax': thorax, 'Spine': (pelvis + thorax) / 2}


def derive_torso(pose_2d):
  """H36M-17 keypoints (..., 17, 2) px with Pelvis, Spine and Thorax replaced by the joints
  `to_h36m` derives from a detector's hips and shoulders: the input a lifter trained with
  `config.input_layout='detector'` sees (Human3.6M's own torso joints sit elsewhere).
  Operators only, so it runs on NumPy and traced JAX arrays alike."""
  j = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
  joints = torso_joints(*(pose_2d[..., j[n], :] for n in ('LHip', 'RHip', 'LShoulder',
                                                          'RShoulder')))
  out = pose_2d
  for name, value in joints.items():
    mask = (np.arange(skeleton.NUM_JOINTS) == j[name])[:, None]
    out = out * ~mask + value[..., None, :] * mask
  return out


def mean_present(points, axis=0):
  """Mean over `axis` of the points (..., 2) that are not NaN (NaN where none is)."""
  present = np.all(np.isfinite(points), axis=-1, keepdims=True)
  count = present.sum(axis=axis)
  total = np.where(present, points, 0.0).sum(axis=axis)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _head(get, body):
  if 'head_top' in body:
    return get('head_top')
  face = np.stack([get(name) for name in _FACE])
  eyes = mean_present(face[:2])
  return mean_present(face) + (eyes - get('nose'))


def to_h36m(layout, keypoints, confidences=None):
  """Keypoints (..., J, 2) in `layout`'s order -> H36M-17 (..., 17, 2) (NaN: missing), and
  the confidences (..., J) -> (..., 17) when given (else None)."""
  kp = np.asarray(keypoints, np.float64)
  if layout.body is None:
    return kp, None if confidences is None else np.asarray(confidences, np.float64)
  body = layout.body
  get = lambda name: kp[..., body[name], :]
  joints = torso_joints(get('left_hip'), get('right_hip'), get('left_shoulder'),
                        get('right_shoulder'))
  joints['Head'] = _head(get, body)
  joints.update({h36m: get(point) for h36m, point in _DIRECT.items()})
  out = np.stack([joints[name] for name in skeleton.JOINT_NAMES], axis=-2)
  if confidences is None:
    return out, None
  conf = np.asarray(confidences, np.float64)
  sources = dict({h: (p,) for h, p in _DIRECT.items()}, **_DERIVED_FROM)
  if 'head_top' in body:
    sources['Head'] = ('head_top',)
  out_conf = np.stack([conf[..., [body[p] for p in sources[name]]].min(axis=-1)
                       for name in skeleton.JOINT_NAMES], axis=-1)
  return out, out_conf
