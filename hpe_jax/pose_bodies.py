"""New bodies for training poses, made inside the train step: a perspective-crop lifter's
body augmentation (`config.augment.bone_scale`).

A motion capture release holds a few performers, often retargeted onto one skeleton; the
people a lifter meets, and the joints other datasets and detectors define, come in other
proportions. A perspective crop's 3D label is the pose in the frame of a camera that looks at
the root, at the root's distance (`normalization.perspective_crop`), so each training pose
can take a body of other proportions (`vary_bones`: its bones scaled, its joint angles kept)
and be filmed again from the same place (`crop_pair`): a new, exact (2D input, 3D label)
pair per example and step, made by the functions the data pipeline uses. A temporal model's
window takes one body for all its frames. Traceable.
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


def _new_crops(pose_3d, root_distance, log_scale, stats, input_layout):
  """Standardised (2D input, 3D label) of standardised crop labels (..., 16, 3) on the bodies
  `log_scale` (..., groups), or the old label where a joint would come too near."""
  pose_mm = normalization.pose_3d_mm(pose_3d, stats)
  plane, target, in_front = crop_pair(vary_bones(pose_mm, log_scale), root_distance,
                                      input_layout)
  return (normalization.model_pose_2d(plane, stats, input_layout, 'perspective_crop'),
          jnp.where(in_front[..., None, None],
                    normalization.normalize(target, stats, 'pose_3d'), pose_3d),
          in_front)


def new_bodies(batch, stats, key, input_layout, bone_scale):
  """A training batch of perspective-crop poses ('pose_2d', 'pose_3d' standardised, each
  row's 'root_distance' mm, and for a temporal model 'pose_2d_window' with its
  'pose_3d_window' and 'root_distance_window') on new bodies: each row's bone groups scaled
  by exp(N(0, bone_scale)) (`vary_bones`), then filmed again from the same place."""
  rows = batch['pose_3d'].shape[0]
  log_scale = bone_scale * jax.random.normal(key, (rows, len(BONE_GROUPS)),
                                             batch['pose_3d'].dtype)
  pose_2d, pose_3d, in_front = _new_crops(batch['pose_3d'], batch['root_distance'], log_scale,
                                          stats, input_layout)
  out = {k: v for k, v in batch.items() if k not in ('pose_3d_window', 'root_distance_window')}
  out['pose_3d'] = pose_3d
  if 'pose_2d_window' not in batch:
    out['pose_2d'] = jnp.where(in_front[:, None, None], pose_2d, batch['pose_2d'])
    return out
  window_2d, _, window_in_front = _new_crops(
      batch['pose_3d_window'], batch['root_distance_window'], log_scale[:, None], stats,
      input_layout)
  keep = jnp.all(window_in_front, axis=1) & in_front  # a window keeps one body
  out['pose_3d'] = jnp.where(keep[:, None, None], pose_3d, batch['pose_3d'])
  out['pose_2d'] = jnp.where(keep[:, None, None], pose_2d, batch['pose_2d'])
  out['pose_2d_window'] = jnp.where(keep[:, None, None, None], window_2d,
                                    batch['pose_2d_window'])
  return out
