"""Weak supervision of 2D -> 3D lifting: losses from 2D poses and cameras, no 3D labels.

The 3D answer of a `pose_2d -> pose_3d` pair (root-relative, camera frame, mm) is
judged by what a dataset without motion capture still has:
- reprojection: the answer plus a root position, projected through the example's
  camera (Human3.6M's distorted model, as `tfds_h36m.cameras.project`), against the
  input 2D pose (px). The root is the record's `root_3d` ('known': leaks the 3D
  position and so the person's metric size) or the least-squares translation that
  best explains the 2D pose ('fit': from 2D alone; the pose's scale is then
  unobservable from one view);
- multi-view consistency: the answers to two synchronised views of one frame agree
  once turned into the world with the known extrinsics, and their roots once placed
  there ('extrinsics': with a fitted root the cameras' baseline fixes the metric scale),
  or after the best rotation of one onto the other ('rigid': for cameras of unknown
  extrinsics);
- bone priors: left and right bones of equal length (symmetry), and each bone of equal
  length over a subject's frames in the batch (consistency), both relative to the
  pose's size, so neither pulls the pose smaller.
Losses are dimensionless: px over the 2D poses' mean std, mm over `pose_3d_std_mm`.

Each example carries its camera (CAMERA_FIELDS, from the pose side file): Human3.6M's
calibration by subject and camera, or the motion capture datasets' camera of each
sequence; a camera whose pose is unknown (NaN centre) takes no part in the 'extrinsics'
consistency.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import camera_geometry
from hpe_jax import ray_spread
from tfds_h36m import skeleton

TERMS = ('reprojection', 'multiview', 'bone_symmetry', 'bone_consistency')
# Each row's camera: intrinsics (px), then its camera-to-world rotation and centre (mm)
# (`tfds_h36m.records.INTRINSICS`, `EXTRINSICS`).
CAMERA_FIELDS = ray_spread.INTRINSICS + ('camera_rotation', 'camera_centre')
ROOTS = ('known', 'fit')
MULTIVIEW_KINDS = ('extrinsics', 'rigid')
_CHILDREN = np.arange(1, skeleton.NUM_JOINTS)
_PARENTS = np.asarray(skeleton.PARENTS)[1:]
_LEFT_BONES = np.asarray(skeleton.LEFT_JOINTS) - 1  # bone i ends at joint i + 1
_RIGHT_BONES = np.asarray(skeleton.RIGHT_JOINTS) - 1


def _intrinsics(batch, suffix=''):
  """(focal (B, 2), center (B, 2), radial (B, 3), tangential (B, 2)) of each row's camera."""
  return tuple(batch[k + suffix] for k in ray_spread.INTRINSICS)


def bone_lengths(pose_mm):
  """(B, 17, 3) mm -> (B, 16) mm, bone i ending at joint i + 1."""
  return jnp.linalg.norm(pose_mm[..., _CHILDREN, :] - pose_mm[..., _PARENTS, :], axis=-1)


def bone_symmetry_loss(lengths):
  """(B,) mean squared left-right difference of the bone lengths, over their mean squared."""
  diff = lengths[:, _LEFT_BONES] - lengths[:, _RIGHT_BONES]
  return jnp.mean(diff**2, axis=-1) / _mean_square(lengths)


def bone_consistency_loss(lengths, subject_number):
  """(B,) squared deviation of each bone from its mean over the batch's frames of the same
  subject, over the mean squared length."""
  same = (subject_number[:, None] == subject_number[None, :]).astype(lengths.dtype)
  subject_mean = same @ lengths / jnp.sum(same, axis=1, keepdims=True)
  return jnp.mean((lengths - subject_mean)**2, axis=-1) / _mean_square(lengths)


def _mean_square(lengths):
  return jnp.maximum(jnp.mean(lengths**2, axis=-1), 1e-6)


def rigid_residual(pose_a, pose_b):
  """(B,) mean squared distance (mm^2) between pose_b and pose_a after the rotation that best
  maps a onto b (Kabsch). The rotation is held constant under differentiation: it is the
  minimiser, so the gradient of the minimum is the same (envelope theorem) and no gradient
  runs through the SVD."""
  h = jnp.einsum('bji,bjk->bik', pose_a, pose_b)
  u, _, vt = jnp.linalg.svd(jax.lax.stop_gradient(h))
  sign = jnp.sign(jnp.linalg.det(jnp.einsum('bij,bjk->bik', u, vt)))
  d = jnp.stack([jnp.ones_like(sign), jnp.ones_like(sign), sign], axis=-1)
  rotation = jnp.einsum('bij,bj,bjk->bik', u, d, vt)
  aligned = jnp.einsum('bji,bik->bjk', pose_a, rotation)
  return jnp.mean(jnp.sum((aligned - pose_b)**2, axis=-1), axis=-1)


def label_free_stats(stats, pose_3d_std_mm):
  """The normalisation of a weakly supervised model: the 2D statistics as they are, and for
  3D, which the labels' statistics would leak, mean 0 and std `pose_3d_std_mm`."""
  return {**stats, 'pose_3d_mean': np.zeros_like(stats['pose_3d_mean']),
          'pose_3d_std': np.full_like(stats['pose_3d_std'], pose_3d_std_mm)}


class WeakSupervision:
  """The weak losses of a config (`config.weak`) with the model's normalisation `stats`
  (label-free: `label_free_stats`) and the training split's 2D std in px, `pose_2d_std_px`
  (the losses compare 2D poses in px whatever the model's input space; default: `stats`')."""

  def __init__(self, weak_config, stats, pose_2d_std_px=None):
    self.config, self.stats = weak_config, stats
    self.weights = {t: float(weak_config[t]) for t in TERMS}
    self.px_scale = float(np.mean(stats['pose_2d_std'] if pose_2d_std_px is None
                                  else pose_2d_std_px))
    self.mm_scale = float(weak_config.pose_3d_std_mm)

  @property
  def multiview(self):
    return self.weights['multiview'] > 0

  def place(self, pose_rel_mm, pose_2d_px, intrinsics, root_3d=None):
    """The camera-frame pose (B, 17, 3) mm: the root-relative answer at the known or fitted
    root; `intrinsics` as `_intrinsics` gives them."""
    if self.config.root == 'known':
      return pose_rel_mm + root_3d[:, None, :]
    focal, center, radial, tangential = intrinsics
    pinhole_px = camera_geometry.undistort(pose_2d_px, focal, center, radial, tangential)
    return pose_rel_mm + camera_geometry.fit_root(pose_rel_mm, pinhole_px, focal,
                                                  center)[:, None, :]

  def reprojection_loss(self, pose_cam_mm, pose_2d_px, intrinsics):
    """(B,) mean squared px error of the projected joints, over the 2D poses' mean std^2."""
    projected = camera_geometry.project(pose_cam_mm, *intrinsics)
    return jnp.mean(jnp.sum((projected - pose_2d_px)**2, axis=-1), axis=-1) / self.px_scale**2

  def multiview_loss(self, views):
    """(B,) disagreement of two views' answers, and its mask: 'extrinsics' compares the
    root-relative poses turned into the world (mean squared mm over pose_3d_std_mm^2) and
    the placed roots (squared mm over their squared depth); 'rigid' the poses after the
    best rotation.

    views: two dicts of 'pose_rel' and 'pose_cam' (B, 17, 3) mm, and their cameras'
    'rotation' (B, 3, 3) and 'centre' (B, 3) mm (NaN where unknown).
    """
    a, b = views
    if self.config.multiview_kind == 'rigid':
      return rigid_residual(a['pose_rel'], b['pose_rel']) / self.mm_scale**2, True
    rel, root, depth, known = [], [], [], True
    for view in views:
      rotation, centre = view['rotation'], view['centre']
      view_known = jnp.all(jnp.isfinite(centre), axis=-1)
      centre = jnp.where(view_known[:, None], centre, 0.0)
      rel.append(jnp.einsum('bij,bkj->bki', rotation, view['pose_rel']))
      root.append(jnp.einsum('bij,bj->bi', rotation, view['pose_cam'][:, 0]) + centre)
      depth.append(view['pose_cam'][:, 0, 2])
      known = known & view_known
    shape = jnp.mean(jnp.sum((rel[0] - rel[1])**2, axis=-1), axis=-1) / self.mm_scale**2
    # The roots' disagreement relative to their distance from the cameras: a relative error
    # of the scale moves a fitted root by that share of its depth.
    distance2 = jax.lax.stop_gradient(
        jnp.maximum(0.5 * (depth[0] + depth[1]), camera_geometry.MIN_DEPTH_MM))**2
    return shape + jnp.sum((root[0] - root[1])**2, axis=-1) / distance2, known

  def losses(self, pose_rel_mm, batch, other=None):
    """{term: batch-mean loss} and their weighted sum 'total', of the answers `pose_rel_mm`
    (B, 17, 3) mm to batch['pose_2d_px']; `other`: the answers to the batch's second
    views ('pose_2d_px_other', the CAMERA_FIELDS suffixed '_other', 'view_valid')."""
    place = lambda pose, suffix: self.place(pose, batch['pose_2d_px' + suffix],
                                            _intrinsics(batch, suffix),
                                            batch.get('root_3d' + suffix))
    pose_cam = place(pose_rel_mm, '')
    lengths = bone_lengths(pose_rel_mm)
    terms = {
        'reprojection': self.reprojection_loss(pose_cam, batch['pose_2d_px'],
                                               _intrinsics(batch)),
        'bone_symmetry': bone_symmetry_loss(lengths),
        'bone_consistency': bone_consistency_loss(lengths, batch['subject_number']),
    }
    out = {t: jnp.mean(v) for t, v in terms.items()}
    out['multiview'] = jnp.zeros((), jnp.float32)
    if other is not None:
      views = [{'pose_rel': pose, 'pose_cam': cam, 'rotation': batch['camera_rotation' + suffix],
                'centre': batch['camera_centre' + suffix]}
               for pose, cam, suffix in ((pose_rel_mm, pose_cam, ''),
                                         (other, place(other, '_other'), '_other'))]
      loss, known = self.multiview_loss(views)
      mask = (batch['view_valid'] & known).astype(jnp.float32)
      out['multiview'] = jnp.sum(loss * mask) / jnp.maximum(jnp.sum(mask), 1.0)
    out['total'] = sum(self.weights[t] * out[t] for t in TERMS)
    return out
