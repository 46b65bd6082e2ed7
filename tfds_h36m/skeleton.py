"""Human3.6M skeleton, subjects and action names (facts from the dataset's documentation)."""

import re

# Raw files hold 32 joints; this is the standard 17-joint subset, by raw index.
RAW_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
NUM_RAW_JOINTS = 32
NUM_JOINTS = 17
JOINT_NAMES = (
    'Pelvis', 'RHip', 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'Spine',
    'Thorax', 'Neck', 'Head', 'LShoulder', 'LElbow', 'LWrist', 'RShoulder',
    'RElbow', 'RWrist')
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)
ROOT = 0
# Bones as (parent, child) pairs, in joint order.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)


def flip_permutation():
  """Joint permutation that swaps left and right (for mirroring poses)."""
  perm = list(range(NUM_JOINTS))
  for l, r in zip(LEFT_JOINTS, RIGHT_JOINTS):
    perm[l], perm[r] = r, l
  return tuple(perm)


TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_SUBJECTS = ('S9', 'S11')
CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
FPS = 50


def subject_number(subject):
  """9 for 'S9' (Human3.6M), 5 for 'cmu05' (motion capture): the number a subject's name
  ends in, which indexes per-subject tables."""
  match = re.fullmatch(r'[A-Za-z]+(\d+)', subject)
  if not match:
    raise ValueError(f'Not a subject name: {subject!r} (expected S1, S5, ..., or letters '
                     'then a number such as cmu05).')
  return int(match.group(1))


ACTIONS = (
    'Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo',
    'Posing', 'Purchases', 'Sitting', 'SittingDown', 'Smoking', 'Waiting',
    'WalkDog', 'Walking', 'WalkTogether')


def action_names(dataset):
  """The action labels of a dataset by its TFDS name: Human3.6M's 15 (`h36m`,
  `h36m_synthetic`), or the kinds of motion of the `mocap` datasets
  (`tfds_h36m.mocap.motions.ACTIONS`)."""
  if dataset.split('/')[0] == 'mocap':
    from tfds_h36m.mocap import motions  # pylint: disable=g-import-not-at-top
    return motions.ACTIONS
  return ACTIONS


# Subject-specific file names of the same action.
_ACTION_ALIASES = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}
_SEQUENCE_RE = re.compile(r'^([A-Za-z]+)(?:\s+(\d+))?$')

# The S11 sequence named `Directions` (no subaction number) has a corrupted
# video; the standard tooling discards it entirely.
KNOWN_BAD_SEQUENCES = frozenset({('S11', 'Directions')})


def parse_sequence_name(name):
  """Maps a file's sequence name to (canonical action, subaction number).

  `Directions 1` -> ('Directions', 1); `TakingPhoto` -> ('Photo', 0).
  Raises ValueError for a name that is not a Human3.6M action.
  """
  match = _SEQUENCE_RE.match(name.strip())
  if not match:
    raise ValueError(f'Not a Human3.6M sequence name: {name!r}')
  action = _ACTION_ALIASES.get(match.group(1), match.group(1))
  if action not in ACTIONS:
    raise ValueError(
        f'Unknown Human3.6M action {match.group(1)!r} in sequence {name!r}; '
        f'expected one of {ACTIONS} (or TakingPhoto, WalkingDog).')
  return action, int(match.group(2) or 0)
