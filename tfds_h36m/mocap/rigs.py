"""Motion-capture rigs mapped to the Human3.6M 17-joint skeleton (`skeleton.JOINT_NAMES`).

  rig = rigs.detect_rig(motion.names)            # or rigs.load_rig('mapping.json')
  poses_mm = rigs.h36m_positions(motion, rig)     # (N, 17, 3) mm, the file's world frame

A `Rig` names, for each H36M joint, the point of a BVH skeleton that stands for it (a spec):
  'rShin'                                  the rig joint's position;
  ['lThigh', 'rThigh']                     the mean of the rig joints' positions;
  {'joint': 'head', 'offset': [x, y, z]}   a point fixed in that joint's frame (file units),
                                           placed by its global rotation.
Torso joints a rig leaves out are derived as `hpe_jax.inference.layouts.torso_joints` derives
them from a 2D detector's keypoints (vectors; mid(a, b) = (a + b) / 2):
  Pelvis = mid(RHip, LHip), Thorax = mid(LShoulder, RShoulder), Spine = mid(Pelvis, Thorax),
so a lifter sees the same torso whatever the rig and whatever its 2D source. Every other joint
is required.

A user's rig is a JSON file (`load_rig`):
  {"name": "mine", "unit_mm": 10, "joints": {"RHip": "RightUpLeg", ...},
   "notes": {"Head": "the head top: ..."}}
It is parsed with `json` only; nothing it names is imported or run.

Frame and units: positions stay in the file's world frame, scaled to mm by `unit_mm` (mm per
file unit). BVH's convention is y up (`UP_AXIS`); both built-in rigs follow it.

Approximations, for every rig: Human3.6M's Pelvis, Spine and Thorax are points of its motion
capture skeleton on the back, not mid-points of the hips and shoulders; its hips are the hip
joint centres, where a rig's thigh roots may sit higher or further out; its Neck (joint 9) is
about the nose, Head the top of the head, which a rig has as joints only approximately.
`Rig.notes` says, per joint, what each built-in rig takes.
"""

import dataclasses
import json
import math

import numpy as np

from hpe_jax.inference import bvh
from tfds_h36m import skeleton

UP_AXIS = 1  # y: BVH's up axis
DERIVED = ('Pelvis', 'Thorax', 'Spine')  # derived in this order where a rig leaves them out
REQUIRED = tuple(name for name in skeleton.JOINT_NAMES if name not in DERIVED)
_CHUNK_FRAMES = 8192  # frames per forward-kinematics pass: bounds the rotations' memory


@dataclasses.dataclass(frozen=True)
class Rig:
  """A BVH skeleton's mapping to H36M-17: name, unit_mm (mm per file unit), joints {H36M joint
  name: spec} and notes {H36M joint name: one line on the approximation} (module docstring)."""
  name: str
  unit_mm: float
  joints: dict
  notes: dict = dataclasses.field(default_factory=dict)


def _along(direction, length):
  """[x, y, z]: `length` along `direction` (file units), rounded to 0.01."""
  direction = np.asarray(direction, np.float64)
  return [round(float(v), 2) for v in direction / np.linalg.norm(direction) * length]


_TORSO_NOTES = {
    'Pelvis': "mid-point of the hips (derived), not Human3.6M's pelvis joint on the back",
    'Spine': "mid-point of Pelvis and Thorax (derived), not Human3.6M's spine joint",
    'Thorax': "mid-point of the shoulders (derived), not Human3.6M's thorax joint"}


def _limb_notes(hips_cm, shoulders_cm):
  """Notes on the hips and shoulders, whose rig joints sit closer together than Human3.6M's
  hip centres (about 26 cm apart) and shoulders (about 30 cm)."""
  hip = (f"the thigh's root joint; the rig's are {hips_cm} cm apart, Human3.6M's hip centres "
         'about 26 cm')
  shoulder = (f"the upper arm's root joint; the rig's are about {shoulders_cm} cm apart, "
              "Human3.6M's shoulders about 30 cm")
  return {'RHip': hip, 'LHip': hip, 'LShoulder': shoulder, 'RShoulder': shoulder}


# cgspeed's "Daz-friendly" CMU conversion: one skeleton for every subject, centimetres.
_CMU_NECK_TO_HEAD = (-0.24384, 7.07133, 1.2192)  # the head joint's rest OFFSET, y up
_CMU = Rig(
    name='cmu', unit_mm=10.0,
    joints={'RHip': 'rThigh', 'RKnee': 'rShin', 'RAnkle': 'rFoot', 'LHip': 'lThigh',
            'LKnee': 'lShin', 'LAnkle': 'lFoot', 'Neck': 'head',
            'Head': {'joint': 'head', 'offset': _along(_CMU_NECK_TO_HEAD, 17.5)},
            'LShoulder': 'lShldr', 'LElbow': 'lForeArm', 'LWrist': 'lHand',
            'RShoulder': 'rShldr', 'RElbow': 'rForeArm', 'RWrist': 'rHand'},
    notes={**_TORSO_NOTES, **_limb_notes(17.6, 23),
           'Neck': "the head joint (the skull base) for Human3.6M's neck/nose joint",
           'Head': 'approximate head top: 17.5 cm from the head joint along the neck-to-head '
                   'rest direction (10 degrees forward of up)'})

# Bandai Namco Research Motiondataset: centimetres; the spine, neck, head and left limbs run
# along their joint's local +x, the right limbs along -x.
_BANDAI = Rig(
    name='bandai', unit_mm=10.0,
    joints={'RHip': 'UpperLeg_R', 'RKnee': 'LowerLeg_R', 'RAnkle': 'Foot_R',
            'LHip': 'UpperLeg_L', 'LKnee': 'LowerLeg_L', 'LAnkle': 'Foot_L', 'Neck': 'Head',
            'Head': {'joint': 'Head', 'offset': [17.5, 0.0, 0.0]},
            'LShoulder': 'UpperArm_L', 'LElbow': 'LowerArm_L', 'LWrist': 'Hand_L',
            'RShoulder': 'UpperArm_R', 'RElbow': 'LowerArm_R', 'RWrist': 'Hand_R'},
    notes={**_TORSO_NOTES, **_limb_notes(12.9, 20),
           'Neck': "the Head joint (the skull base) for Human3.6M's neck/nose joint",
           'Head': 'approximate head top: 17.5 cm from the Head joint along its local x '
                   '(the neck-to-head direction)'})


def _spec_joints(spec):
  """The rig joints a (valid) spec names."""
  if isinstance(spec, str):
    return [spec]
  return list(spec) if isinstance(spec, list) else [spec['joint']]


def rig_joint_names(rig):
  """The rig joints a Rig's specs name, in the order of first use."""
  names = []
  for spec in rig.joints.values():
    for name in _spec_joints(spec):
      if name not in names:
        names.append(name)
  return names


def _spec_error(spec):
  """What is wrong with a spec, or None."""
  shown = json.dumps(spec)[:80]
  if isinstance(spec, str):
    return None if spec else 'an empty joint name'
  if isinstance(spec, list):
    if spec and all(isinstance(name, str) and name for name in spec):
      return None
    return f'{shown} is not a list of joint names'
  if isinstance(spec, dict):
    offset = spec.get('offset')
    if (sorted(spec) == ['joint', 'offset'] and isinstance(spec['joint'], str)
        and spec['joint'] and isinstance(offset, list) and len(offset) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in offset)):
      return None
    return f'{shown} is not {{"joint": name, "offset": [x, y, z]}} with finite numbers'
  return f'{shown} is not a joint name, a list of them or {{"joint": ..., "offset": ...}}'


def _checked(rig, source):
  """The Rig if it is valid, else a one-line ValueError naming `source`."""
  def fail(what):
    return ValueError(f'{source}: {what}.')

  if not isinstance(rig.name, str) or not rig.name:
    raise fail('"name" must be a non-empty string')
  if (not isinstance(rig.unit_mm, (int, float)) or isinstance(rig.unit_mm, bool)
      or not math.isfinite(rig.unit_mm) or rig.unit_mm <= 0):
    raise fail(f'"unit_mm" must be a positive number (mm per file unit), got {rig.unit_mm!r}')
  for field in ('joints', 'notes'):
    table = getattr(rig, field)
    if not isinstance(table, dict):
      raise fail(f'"{field}" must be an object {{H36M joint name: ...}}')
    unknown = [name for name in table if name not in skeleton.JOINT_NAMES]
    if unknown:
      raise fail(f'"{field}" names {", ".join(map(repr, unknown))}, not H36M-17 joints (these '
                 f'are {", ".join(skeleton.JOINT_NAMES)})')
  missing = [name for name in REQUIRED if name not in rig.joints]
  if missing:
    raise fail(f'"joints" lacks {", ".join(missing)} (only {", ".join(DERIVED)} may be left '
               'out)')
  for name, spec in rig.joints.items():
    error = _spec_error(spec)
    if error:
      raise fail(f'"joints" {name!r}: {error}')
  for name, note in rig.notes.items():
    if not isinstance(note, str) or '\n' in note:
      raise fail(f'"notes" {name!r} must be a one-line string')
  return rig


RIGS = {rig.name: _checked(rig, f'built-in rig {rig.name!r}') for rig in (_CMU, _BANDAI)}


def detect_rig(joint_names):
  """The built-in rig whose joints are all among `joint_names` (a BVH file's); else a
  one-line ValueError saying what each rig misses."""
  present = set(joint_names)
  lacking = {}
  for rig in RIGS.values():
    missing = [name for name in rig_joint_names(rig) if name not in present]
    if not missing:
      return rig
    lacking[rig.name] = missing
  raise ValueError('No built-in rig fits the skeleton (' + '; '.join(
      f'{name} lacks {", ".join(missing)}' for name, missing in lacking.items()) +
                   '): a JSON mapping file (--config mapping) is needed.')


def load_rig(path):
  """The Rig of a user's JSON mapping file (module docstring); a one-line ValueError naming
  the file where it is not one."""
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except OSError as e:
    raise ValueError(f'{path}: cannot read the mapping file ({e.strerror or e}).') from e
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
    raise ValueError(f'{path}: not a JSON file ({str(e).splitlines()[0]}).') from None
  if not isinstance(data, dict):
    raise ValueError(f'{path}: expected a JSON object {{"name", "unit_mm", "joints"}}.')
  unknown = sorted(set(data) - {'name', 'unit_mm', 'joints', 'notes'})
  missing = [key for key in ('name', 'unit_mm', 'joints') if key not in data]
  if unknown or missing:
    raise ValueError(f'{path}: ' + '; '.join(
        ([f'unknown keys {", ".join(map(repr, unknown))}'] if unknown else []) +
        ([f'missing keys {", ".join(map(repr, missing))}'] if missing else [])) +
                     ' (expected "name", "unit_mm", "joints" and optionally "notes").')
  return _checked(Rig(data['name'], data['unit_mm'], data['joints'], data.get('notes', {})),
                  path)


def _pruned(motion, joints, rows):
  """The Motion of frames[rows] with only the joints (sorted indices, each with its parent)."""
  new = {old: i for i, old in enumerate(joints)}
  starts = np.cumsum([0] + [len(c) for c in motion.channels])
  columns = np.concatenate([np.arange(starts[j], starts[j + 1]) for j in joints]).astype(int)
  return bvh.Motion([motion.names[j] for j in joints],
                    [new[motion.parents[j]] if motion.parents[j] >= 0 else -1 for j in joints],
                    motion.offsets[joints], [motion.channels[j] for j in joints], {},
                    motion.frames[rows][:, columns], motion.frame_time)


def _point(spec, positions, rotations, index):
  """A spec's point (N, 3), file units, from joint positions (N, J, 3) and rotations."""
  if isinstance(spec, str):
    return positions[:, index[spec]]
  if isinstance(spec, list):
    return positions[:, [index[name] for name in spec]].mean(axis=1)
  joint = index[spec['joint']]
  return positions[:, joint] + rotations[:, joint] @ np.asarray(spec['offset'], np.float64)


def _h36m_points(rig, positions, rotations, index):
  """H36M-17 points (N, 17, 3), file units; torso joints the rig leaves out are derived."""
  points = {name: _point(spec, positions, rotations, index)
            for name, spec in rig.joints.items()}
  points.setdefault('Pelvis', (points['RHip'] + points['LHip']) / 2)
  points.setdefault('Thorax', (points['LShoulder'] + points['RShoulder']) / 2)
  points.setdefault('Spine', (points['Pelvis'] + points['Thorax']) / 2)
  return np.stack([points[name] for name in skeleton.JOINT_NAMES], axis=1)


def h36m_positions(motion, rig):
  """H36M-17 positions (N, 17, 3) float64 mm of a bvh.Motion's frames under a Rig, in the
  file's world frame (y up for BVH); a one-line ValueError names the rig joints it lacks."""
  first = {}
  for j, name in enumerate(motion.names):
    first.setdefault(name, j)
  needed = rig_joint_names(rig)
  missing = [name for name in needed if name not in first]
  if missing:
    raise ValueError(f'The motion lacks the joints rig {rig.name!r} maps: '
                     f'{", ".join(missing)}.')
  joints = set()
  for j in (first[name] for name in needed):
    while j >= 0 and j not in joints:  # the joint and its ancestors
      joints.add(j)
      j = motion.parents[j]
  joints = sorted(joints)
  index = {name: joints.index(first[name]) for name in needed}
  with_rotations = any(isinstance(spec, dict) for spec in rig.joints.values())
  out = np.zeros((len(motion.frames), skeleton.NUM_JOINTS, 3))
  for start in range(0, len(motion.frames), _CHUNK_FRAMES):
    rows = slice(start, start + _CHUNK_FRAMES)
    result = bvh.forward_kinematics(_pruned(motion, joints, rows), with_rotations=with_rotations)
    positions, rotations = result if with_rotations else (result, None)
    out[rows] = _h36m_points(rig, positions, rotations, index)
  return out * rig.unit_mm
