"""Whether 2D keypoints look like people in their declared layout: checked after reading and
before lifting (predict, `Lifter.lift`), so that a mislabelled or misscaled input fails in
one line instead of lifting to a wrong answer.

Each test is decided over the frames (rows), and refuses only when MOST of the frames that
it can judge agree (a frame missing the joints a test needs is not judged):

- normalised: every coordinate within +-NORMALISED_MAX px, yet not all at one point: a
  person a few px tall; fractions of the image or the normalised image plane, not px.
- layout: read in a layout, a frame fits when the head points (nose, eyes, ears, head top)
  lie within HEAD_SPREAD of the body's extent of their mean, and each leg (hip, knee,
  ankle) is at least LEG_LENGTH of the extent long. The declared layout is refused when
  another layout of the same joint count fits most frames while the declared one fails in
  MISFIT of them or more (COCO-17 read as H36M-17 has face points for legs; H36M-17 read
  as COCO-17 has legs for a face; foreshortened bodies let some frames pass).
- upside down: the head below the pelvis and the ankles above it, each more than 45 degrees
  from the horizontal (image y down).

Scale, rotation and mirror invariant: a person lying down, facing away (left and right
swapped, which no geometry can tell) or partly missing passes; so do poses with every
keypoint at one point (no evidence either way).
"""

import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import layouts
from tfds_h36m import skeleton

MOST = 0.75  # fraction of the judged frames a test needs to refuse
# A layout that fits in MOST frames refuses the declared one already where that fails in
# this fraction: on CMU's test motion a correct layout failed in at most 0.19 of a sequence
# and fitted another in at most 0.13, while COCO-17 read as H36M-17 failed in 0.40-1.
MISFIT = 0.4
NORMALISED_MAX = 2.0  # px: a person within +-2 px is not in px
HEAD_SPREAD = 0.15  # head points' largest distance from their mean / the body's extent
LEG_LENGTH = 0.25  # hip-knee + knee-ankle length / the body's extent, each leg
STEEP = np.sin(np.pi / 4)  # |y| / length of a body line more than 45 degrees from horizontal
TITLES = {'h36m': 'H36M-17', 'coco': 'COCO-17', 'halpe26': 'Halpe-26',
          'openpose25': 'OpenPose BODY_25', 'openpose18': 'OpenPose COCO-18',
          'blazepose33': 'BlazePose-33'}
_HEAD = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'head_top')
_LEGS = (('left_hip', 'left_knee', 'left_ankle'), ('right_hip', 'right_knee', 'right_ankle'))


class LayoutError(keypoints_lib.KeypointError):
  """Keypoints that do not look like people in their declared layout (one line)."""


def title(layout):
  return TITLES.get(layout.name, layout.name)


def _nan_max(values, axis):
  """Max over `axis` of the finite values (NaN where none is)."""
  top = np.where(np.isfinite(values), values, -np.inf).max(axis=axis)
  return np.where(np.isfinite(top), top, np.nan)


def _extent(points):
  """The body's extent (N,) px: the larger side of the bounding box of the finite points
  (N, J, 2) (NaN for fewer than two points, or all at one point)."""
  finite = np.all(np.isfinite(points), axis=-1, keepdims=True)
  size = (np.where(finite, points, -np.inf).max(axis=1) -
          np.where(finite, points, np.inf).min(axis=1)).max(axis=-1)
  return np.where(np.isfinite(size) & (size > 0), size, np.nan)


def _joined(indices):
  """'0-4' for a run of indices, else '9/10'."""
  indices = sorted(indices)
  if len(indices) > 2 and indices == list(range(indices[0], indices[-1] + 1)):
    return f'{indices[0]}-{indices[-1]}'
  return '/'.join(str(i) for i in indices)


def fit(keypoints, layout):
  """How keypoints (N, J, 2) px read in `layout`: (the fraction of the judged frames that
  fail the head or a leg test, the fraction of all frames that pass both, what fails most)."""
  body = layouts.body_points(layout)
  kp = np.asarray(keypoints, np.float64)
  extent = _extent(kp[:, sorted(set(body.values()))])
  head_joints = [body[p] for p in _HEAD if p in body]
  head = kp[:, head_joints]
  spread = _nan_max(np.linalg.norm(head - layouts.mean_present(head, 1)[:, None], axis=-1), -1)
  with np.errstate(invalid='ignore'):
    head_judged = (np.all(np.isfinite(head), -1).sum(-1) >= 2) & np.isfinite(extent)
    head_bad = head_judged & (spread > HEAD_SPREAD * extent)
    legs_judged, legs_bad = np.zeros(len(kp), bool), np.zeros(len(kp), bool)
    for leg in _LEGS:
      hip, knee, ankle = (kp[:, body[p]] for p in leg)
      length = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
      judged = np.isfinite(length) & np.isfinite(extent)
      legs_judged |= judged
      legs_bad |= judged & (length < LEG_LENGTH * extent)
  failed = head_bad | legs_bad
  passed = head_judged & legs_judged & ~failed
  fails = failed.sum() / max((head_judged | legs_judged).sum(), 1)
  if head_bad.sum() >= legs_bad.sum():
    wrong = f'its head points {_joined(head_joints)} far apart'
  else:
    wrong = 'its legs ' + ' and '.join('-'.join(str(body[p]) for p in leg) for leg in _LEGS) + \
        ' short'
  return fails, passed.sum() / max(len(kp), 1), wrong


def _evidence(layout):
  """What makes keypoints look like `layout`, for the error line."""
  body = layouts.body_points(layout)
  hips = _joined([body['left_hip'], body['right_hip']])
  return (f'head points {_joined(body[p] for p in _HEAD if p in body)} close together, hips '
          f'at {hips}')


def _normalised(kp):
  """The largest |coordinate| px when every finite one is within +-NORMALISED_MAX and they
  are not all at one point, else None."""
  finite = kp[np.isfinite(kp)]
  if not finite.size or np.abs(finite).max() > NORMALISED_MAX or np.ptp(finite) == 0:
    return None
  return float(np.abs(finite).max())


def upside_down(keypoints, layout):
  """Fraction of the judged frames (N, J, 2) px in `layout` whose head is below the pelvis
  and whose ankles are above it, each more than 45 degrees off horizontal (y down)."""
  h36m, _ = layouts.to_h36m(layout, keypoints)
  index = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}
  pelvis = h36m[:, index['Pelvis']]
  head = layouts.mean_present(h36m[:, [index['Neck'], index['Head']]], 1)
  ankles = layouts.mean_present(h36m[:, [index['LAnkle'], index['RAnkle']]], 1)
  up, down = head - pelvis, ankles - pelvis
  with np.errstate(invalid='ignore', divide='ignore'):
    head_down = up[:, 1] > STEEP * np.linalg.norm(up, axis=-1)
    feet_up = -down[:, 1] > STEEP * np.linalg.norm(down, axis=-1)
  judged = np.all(np.isfinite(up), -1) & np.all(np.isfinite(down), -1) & (
      np.linalg.norm(up, axis=-1) > 0) & (np.linalg.norm(down, axis=-1) > 0)
  return (head_down & feet_up & judged).sum() / max(judged.sum(), 1)


def _format_flag(layout):
  return f'pass --format={layout.name}'


def check(keypoints, layout, *, path='input', override='--skip_layout_check',
          remedy=_format_flag):
  """A LayoutError (one line naming `path`, what looks wrong and the likely fix; `override`
  names how to skip the check, `remedy(layout)` how to declare another layout) unless the
  keypoints (N, J, 2) px, NaN missing, look like people in `layout` (module docstring)."""
  kp = np.asarray(keypoints, np.float64)
  skip = f'(or {override} if you are sure)'
  largest = _normalised(kp)
  if largest is not None:
    raise LayoutError(f'{path}: every coordinate is within +-{largest:.3g}, a person a few px '
                      'tall: these look like normalised coordinates (fractions of the image or '
                      f'the image plane), not px; multiply them by the image size {skip}.')
  fails, _, wrong = fit(kp, layout)
  if fails >= MISFIT:
    for other in layouts.LAYOUTS.values():
      if other is layout or other.num_joints != layout.num_joints:
        continue
      if fit(kp, other)[1] >= MOST:
        raise LayoutError(
            f'{path}: these keypoints look like {title(other)} ({_evidence(other)}), not '
            f'{title(layout)} ({wrong} in {fails:.0%} of the frames): {remedy(other)} {skip}.')
  flipped = upside_down(kp, layout)
  if flipped >= MOST:
    raise LayoutError(f'{path}: the body is upside down in {flipped:.0%} of the frames (head '
                      'below the hips, feet above them, image y pointing down): is y pointing '
                      f'up in this input? Flip it (y -> image height - y) {skip}.')
