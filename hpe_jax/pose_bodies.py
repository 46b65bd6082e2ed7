"""New bodies and bent legs for training poses, made inside the train step: a
perspective-crop lifter's pose augmentation (`config.augment.bone_scale`, `leg_bend`).

A motion capture release holds a few performers, often retargeted onto one skeleton; the
people a lifter meets, and the joints other datasets and detectors define, come in other
proportions. A perspective crop's 3D label is the pose in the frame of a camera that looks at
the root, at the root's distance (`normalization.perspective_crop`), so each training pose
can take a body of other proportions (`vary_bones`: its bones scaled, its joint angles kept)
and be filmed again from the same place (`crop_pair`): a new, exact (2D input, 3D label)
pair per example and step, made by the functions the data pipeline uses. A temporal model's
window takes one body for all its frames. Traceable.

A release can also lack whole families of poses: Bandai Namco's training actors never sit or
crouch (0.04% of their poses have both thighs more than 60 degrees from the torso's line, a
quarter of CMU's test poses do: `experiments.leg_flexion`). `bend_legs` flexes a pose's hips
and knees in the body's own sagittal plane, so some training poses (`leg_bend`, the fraction
of them) show seated, crouched and kneeling legs on the release's own torsos and arms.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import normalization
from tfds_h36m import skeleton

# The nearest a joint of a new body may come to its camera, as a fraction of the root's
# distance (rows whose new body would come nearer keep their own).
MIN_DEPTH_FRACTION = 0.2
# Bones that scale together (joints named by the bone's child), left and right alike, the
# torso's two halves alike, so derived Pelvis, Spine and Thorax stay mid-points.
BONE_GROUPS = (('RHip', 'LHip'), ('RKnee', 'LKnee'), ('RAnkle', 'LAnkle'), ('Spine', 'Thorax'),
               ('Neck',), ('Head',), ('LShoulder', 'RShoulder'), ('LElbow', 'RElbow'),
               ('LWrist', 'RWrist'))
# The largest added flexion of a bent leg (`bend_legs`), degrees: from standing, a thigh
# raised above the horizontal and a heel at the buttock, as in crouching and kneeling.
MAX_HIP_FLEXION_DEG = 100.0
MAX_KNEE_FLEXION_DEG = 120.0
# (hip, knee, ankle) joint indices of the right and the left leg.
_LEGS = tuple(tuple(skeleton.JOINT_NAMES.index(side + joint) for joint in ('Hip', 'Knee', 'Ankle'))
              for side in 'RL')
_GROUP_OF_JOINT = np.zeros(17, np.int32)
for _group, _joints in enumerate(BONE_GROUPS):
  _GROUP_OF_JOINT[[skeleton.JOINT_NAMES.index(j) for j in _joints]] = _group


def vary_bones(pose_mm, log_scale):
  """Root-relative poses (..., 17, 3) with each bone (child minus parent) scaled by
  exp(log_scale) (..., len(BONE_GROUPS)) of its group: the same joint angles, another body."""
  scale = jnp.exp(log_scale)[..., _GROUP_OF_JOINT]
  joints = [pose_mm[..., 0, :]]
  for child, parent in enumerate(skeleton.PARENTS):
    if parent >= 0:  # parents come first
      bone = pose_mm[..., child, :] - pose_mm[..., parent, :]
      joints.append(joints[parent] + scale[..., child, None] * bone)
  return jnp.stack(joints, axis=-2)


def _rotate(vector, axis, angle):
  """Vectors (..., 3) turned by `angle` (...,) radians about unit `axis` (..., 3) (Rodrigues)."""
  cos, sin = jnp.cos(angle)[..., None], jnp.sin(angle)[..., None]
  along = jnp.sum(axis * vector, axis=-1, keepdims=True)
  return vector * cos + jnp.cross(axis, vector) * sin + axis * along * (1.0 - cos)


def bend_legs(pose_mm, flexion):
  """Root-relative poses (..., 17, 3) with each leg flexed more: `flexion` (..., 2, 2)
  radians, (right, left) x (hip, knee), added about the hips' axis (the line from the left
  hip to the right one): a hip's flexion swings its thigh and shin forward, a knee's swings
  the shin back. Bone lengths and every other joint are kept."""
  pose_mm = jnp.asarray(pose_mm)
  axis = pose_mm[..., _LEGS[0][0], :] - pose_mm[..., _LEGS[1][0], :]
  axis = axis / jnp.maximum(jnp.linalg.norm(axis, axis=-1, keepdims=True), 1e-6)
  for side, (hip, knee, ankle) in enumerate(_LEGS):
    hip_flexion, knee_flexion = flexion[..., side, 0], flexion[..., side, 1]
    new_knee = pose_mm[..., hip, :] + _rotate(pose_mm[..., knee, :] - pose_mm[..., hip, :],
                                              axis, hip_flexion)
    shin = _rotate(pose_mm[..., ankle, :] - pose_mm[..., knee, :], axis,
                   hip_flexion - knee_flexion)  # turns about one axis add up
    pose_mm = pose_mm.at[..., knee, :].set(new_knee).at[..., ankle, :].set(new_knee + shin)
  return pose_mm


def hip_flexion_deg(pose_mm):
  """(..., 2) degrees between each thigh (hip to knee; right, left) and the torso's downward
  line (thorax to pelvis) of poses (..., 17, 3): 0 standing, about 90 seated."""
  joint = lambda name: pose_mm[..., skeleton.JOINT_NAMES.index(name), :]
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  down = unit(joint('Pelvis') - joint('Thorax'))
  cosines = [np.sum(unit(joint(side + 'Knee') - joint(side + 'Hip')) * down, axis=-1)
             for side in 'RL']
  return np.degrees(np.arccos(np.clip(np.stack(cosines, axis=-1), -1.0, 1.0)))


def _leg_flexion(key, rows, leg_bend, dtype):
  """(rows, 2, 2) added flexion in radians: for a fraction `leg_bend` of the rows, each hip
  and knee flexed by U(0, its maximum); zero for the rest."""
  bent = jax.random.bernoulli(jax.random.fold_in(key, 0), leg_bend, (rows, 1, 1))
  most = np.radians([MAX_HIP_FLEXION_DEG, MAX_KNEE_FLEXION_DEG]).astype(dtype)
  return bent * most * jax.random.uniform(jax.random.fold_in(key, 1), (rows, 2, 2), dtype)


def crop_pair(pose_3d_mm, root_distance_mm, input_layout):
  """The (2D plane pose, 3D label) of root-relative poses (..., 17, 3) mm seen by a camera
  whose optical axis runs through the root at `root_distance_mm` (...,): the 2D poses on the
  normalised image plane (..., 17, 2) and the 3D poses in the crop's turned frame
  (`input_pipeline.target_pose_3d`), and whether every joint is in front of the camera."""
  nearest = MIN_DEPTH_FRACTION * root_distance_mm[..., None]
  depth = pose_3d_mm[..., 2] + root_distance_mm[..., None]
  in_front = jnp.all(depth > nearest, axis=-1)
  plane = pose_3d_mm[..., :2] / jnp.maximum(depth, nearest)[..., None]
  target = normalization.to_crop_frame(pose_3d_mm,
                                       normalization.input_pose_2d(plane, input_layout))
  return plane, target, in_front


def _new_crops(pose_3d, root_distance, log_scale, flexion, stats, input_layout):
  """Standardised (2D input, 3D label) of standardised crop labels (..., 16, 3) with the legs
  `flexion` (..., 2, 2) (None: as they are) on the bodies `log_scale` (..., groups), or the
  old label where a joint would come too near."""
  pose_mm = normalization.pose_3d_mm(pose_3d, stats)
  if flexion is not None:
    pose_mm = bend_legs(pose_mm, flexion)
  plane, target, in_front = crop_pair(vary_bones(pose_mm, log_scale), root_distance,
                                      input_layout)
  return (normalization.model_pose_2d(plane, stats, input_layout, 'perspective_crop'),
          jnp.where(in_front[..., None, None],
                    normalization.normalize(target, stats, 'pose_3d'), pose_3d),
          in_front)


def enabled(augment):
  """Whether the augmentation settings ask for new bodies or bent legs (a workdir's config
  from before leg_bend has none)."""
  return augment.bone_scale > 0 or augment.get('leg_bend', 0.0) > 0


def new_bodies(batch, stats, key, input_layout, bone_scale, leg_bend=0.0):
  """A training batch of perspective-crop poses ('pose_2d', 'pose_3d' standardised, each
  row's 'root_distance' mm, and for a temporal model 'pose_2d_window' with its
  'pose_3d_window' and 'root_distance_window') on new bodies: for a fraction `leg_bend` of
  the rows the legs bent (`bend_legs`), each row's bone groups scaled by
  exp(N(0, bone_scale)) (`vary_bones`), then filmed again from the same place."""
  rows, dtype = batch['pose_3d'].shape[0], batch['pose_3d'].dtype
  log_scale = bone_scale * jax.random.normal(key, (rows, len(BONE_GROUPS)), dtype)
  flexion = (_leg_flexion(jax.random.fold_in(key, 1), rows, leg_bend, dtype) if leg_bend > 0
             else None)
  pose_2d, pose_3d, in_front = _new_crops(batch['pose_3d'], batch['root_distance'], log_scale,
                                          flexion, stats, input_layout)
  out = {k: v for k, v in batch.items() if k not in ('pose_3d_window', 'root_distance_window')}
  out['pose_3d'] = pose_3d
  if 'pose_2d_window' not in batch:
    out['pose_2d'] = jnp.where(in_front[:, None, None], pose_2d, batch['pose_2d'])
    return out
  window_2d, _, window_in_front = _new_crops(
      batch['pose_3d_window'], batch['root_distance_window'], log_scale[:, None],
      None if flexion is None else flexion[:, None], stats, input_layout)
  keep = jnp.all(window_in_front, axis=1) & in_front  # a window keeps one body and bend
  out['pose_3d'] = jnp.where(keep[:, None, None], pose_3d, batch['pose_3d'])
  out['pose_2d'] = jnp.where(keep[:, None, None], pose_2d, batch['pose_2d'])
  out['pose_2d_window'] = jnp.where(keep[:, None, None, None], window_2d,
                                    batch['pose_2d_window'])
  return out
