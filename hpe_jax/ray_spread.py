"""Hypotheses consistent with the input 2D pose: the depth ambiguity along the camera rays.

Given its 2D pose and camera, a 3D pose is ambiguous along the rays through the 2D
joints (each joint's depth), hardly across them. `snap` makes any lifter's single answer
consistent with its input: the root placed by least squares on the 2D pose
(`camera_geometry.fit_root`, pinhole after undistortion), then each non-root joint moved
to the nearest point of its ray. The hypotheses (`sample`) are that pose plus offsets
drawn from a table of the same lifter's errors (`frame_errors`), each expressed in its
joints' ray frames (two axes across the ray, one along it) and turned into the new pose's
frames: a bootstrap of real errors, heavy tails and all, rather than a Gaussian.

`hpe_jax.fit_spread` builds the table (WORKDIR/ray_spread.npz) as Efron's .632 estimator
of prediction error weighs its parts: 63.2% errors on people the lifter did not see
(cross-fitting over the training subjects, pessimistic: those lifters saw fewer people),
36.8% its errors on its own training poses (optimistic: it fitted them). Needs the
camera's intrinsics: the evaluation has them, a 2D keypoint file does not.
"""

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import camera_geometry
from hpe_jax import files

SPREAD_FILE = 'ray_spread.npz'
# Efron's .632: the share of errors on unseen people in the table (Efron 1983).
HELD_OUT_SHARE = 0.632
NUM_COORDS = 48  # 16 non-root joints x 3
# The intrinsics `snap` takes, as named in `tfds_h36m.cameras.intrinsics_by_index`.
INTRINSICS = ('focal_length', 'center', 'radial_distortion', 'tangential_distortion')
_UP = (0.0, 1.0, 0.0)  # the camera's y axis: far from the rays of a person in view


def ray_frames(rays):
  """Orthonormal frames (..., 3, 3) of unit rays (..., 3): rows across the ray (horizontal),
  across it (vertical) and along it."""
  across = jnp.cross(jnp.asarray(_UP, rays.dtype), rays)
  across = across / jnp.linalg.norm(across, axis=-1, keepdims=True)
  return jnp.stack([across, jnp.cross(rays, across), rays], axis=-2)


def snap(pose_mm, pose_2d_px, intrinsics):
  """(pose (B, 17, 3) root-relative mm with its non-root joints on their rays, ray frames
  (B, 16, 3, 3)) of poses (B, 17, 3) lifted from pose_2d_px (B, 17, 2).

  intrinsics: (focal (B, 2), center (B, 2), radial (B, 3), tangential (B, 2)) px.
  """
  focal, center, radial, tangential = intrinsics
  pinhole = camera_geometry.undistort(pose_2d_px, focal, center, radial, tangential)
  on_rays, rays = camera_geometry.toward_rays(pose_mm, pinhole, focal, center)
  return on_rays, ray_frames(rays[:, 1:])


def frame_errors(pose_mm, frames, target_mm):
  """The errors target - pose (B, 17, 3) of the non-root joints in their ray frames,
  (B, 48) mm: per joint across, across, along."""
  errors = jnp.einsum('bjac,bjc->bja', frames, (target_mm - pose_mm)[:, 1:])
  return errors.reshape(errors.shape[0], NUM_COORDS)


def residual_table(held_out, in_sample, size, seed=0):
  """(M, 48) float32 rows for `sample`: errors on unseen people (held_out (N, 48)) and on
  the training poses (in_sample) in the .632 proportions, M at most `size`, drawn without
  replacement with `seed`."""
  total = int(min(size, len(held_out) / HELD_OUT_SHARE, len(in_sample) / (1 - HELD_OUT_SHARE)))
  num_held_out = int(np.ceil(HELD_OUT_SHARE * total))
  rng = np.random.default_rng(seed)
  pick = lambda rows, n: rows[rng.choice(len(rows), n, replace=False)]
  return np.concatenate([pick(held_out, num_held_out),
                         pick(in_sample, total - num_held_out)]).astype(np.float32)


def sample(pose_mm, frames, table, rng, temperature, num_samples):
  """K hypotheses (B, K, 17, 3) mm: pose (B, 17, 3) plus temperature x rows of `table`
  (M, 48), drawn uniformly, in the pose's ray frames (B, 16, 3, 3); the root stays at the
  origin."""
  batch = pose_mm.shape[0]
  rows = jax.random.randint(rng, (batch, num_samples), 0, table.shape[0])
  offsets = jnp.asarray(table, pose_mm.dtype)[rows].reshape(batch, num_samples, 16, 3)
  offsets = jnp.einsum('bjac,bkja->bkjc', frames, offsets)
  offsets = jnp.pad(offsets, ((0, 0), (0, 0), (1, 0), (0, 0)))
  return pose_mm[:, None] + temperature * offsets


def save(workdir, table, record):
  """Writes the table and what it was built from (a JSON-able dict) to
  WORKDIR/ray_spread.npz, atomically."""
  path = files.inside(workdir, SPREAD_FILE)
  with files.staged([path]) as tmps:
    with open(tmps[path], 'wb') as f:
      np.savez(f, table=np.asarray(table, np.float32), record=json.dumps(record))
  return path


class SpreadFileError(ValueError):
  """A ray_spread.npz that is not a table of this project (damaged, foreign): one line."""


def load(workdir):
  """The table (M, 48) float32 of WORKDIR/ray_spread.npz; FileNotFoundError naming the
  command that writes it."""
  path = os.path.join(workdir, SPREAD_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{workdir} has no {SPREAD_FILE}: fit it first with python -m '
                            f'hpe_jax.fit_spread --workdir={workdir}')
  try:
    with np.load(path, allow_pickle=False) as f:  # never unpickles: an object array is refused
      table = np.asarray(f['table'], np.float32)
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise SpreadFileError(f'{path} is not a table written by hpe_jax.fit_spread '
                          f'({" ".join(str(e).split())[:120]}): fit it again with python -m '
                          f'hpe_jax.fit_spread --workdir={workdir}') from None
  if table.ndim != 2 or table.shape[1] != NUM_COORDS or not len(table):
    raise SpreadFileError(f'{path} holds a {table.shape} table, not (rows, {NUM_COORDS}).')
  return table
