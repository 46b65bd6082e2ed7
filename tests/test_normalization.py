"""Pose normalisation: the one implementation every path uses."""

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf

from hpe_jax import metrics
from hpe_jax import normalization


def test_denormalize_and_add_root():
  x = jnp.ones((2, 16, 3))
  pose = normalization.add_root(normalization.denormalize(x, jnp.full((16, 3), 5.0), jnp.full((16, 3), 2.0)))
  assert pose.shape == (2, 17, 3)
  np.testing.assert_array_equal(pose[:, 0], 0.0)
  np.testing.assert_array_equal(pose[:, 1:], 7.0)


def test_normalize_and_pose_3d_mm_invert_each_other():
  stats = {'pose_3d_mean': np.full((16, 3), 10.0, np.float32),
           'pose_3d_std': np.full((16, 3), 2.0, np.float32)}
  pose = np.zeros((1, 17, 3), np.float32)
  pose[0, 1] = (14.0, 8.0, 10.0)  # root at the origin, a joint in mm
  normalized = normalization.normalize(pose, stats, 'pose_3d')
  assert normalized.shape == (1, 16, 3)
  np.testing.assert_allclose(normalized[0, 0], (2.0, -1.0, 0.0))
  np.testing.assert_allclose(normalized[0, 1], (-5.0, -5.0, -5.0))
  np.testing.assert_allclose(normalization.pose_3d_mm(normalized, stats), pose)
  errors = metrics.pose_errors(jnp.asarray(pose) + jnp.array([0.0, 0.0, 17.0]), pose)
  np.testing.assert_allclose(errors['mpjpe'], 0.0, atol=1e-6)  # a shift of the whole pose
  assert errors['per_joint'].shape == (1, 17) and errors['p_mpjpe'].shape == (1,)


def test_tensorflow_and_numpy_normalise_alike(tmp_path):
  rng = np.random.default_rng(0)
  stats = {k: rng.uniform(1, 3, (16, 2 if '2d' in k else 3)).astype(np.float32)
           for k in normalization.STATS_KEYS}
  pose = rng.normal(0, 500, (4, 17, 2)).astype(np.float32)
  tf_stats = {k: tf.constant(v) for k, v in stats.items()}
  np.testing.assert_array_equal(
      normalization.normalize(tf.constant(pose), tf_stats, 'pose_2d').numpy(),
      normalization.normalize(pose, stats, 'pose_2d'))
  normalization.save(str(tmp_path), stats)
  loaded = normalization.load(str(tmp_path))
  for key in normalization.STATS_KEYS:
    np.testing.assert_array_equal(loaded[key], stats[key])
  assert normalization.load(str(tmp_path / 'none')) is None


def _camera_pose(rng, n=8):
  """Random people (N, 17, 3) mm in front of a camera, some far off its axis, and their
  normalised image plane coordinates (N, 17, 2)."""
  body = rng.normal(0.0, 300.0, (n, 17, 3))
  body -= body[:, :1]
  root = np.stack([rng.uniform(-4000, 4000, n), rng.uniform(-3000, 3000, n),
                   rng.uniform(3000, 9000, n)], axis=-1)
  points = body + root[:, None]
  return body, root, points[..., :2] / points[..., 2:]


def test_perspective_crop_is_what_a_camera_turned_to_the_root_sees():
  body, root, plane = _camera_pose(np.random.default_rng(0))
  crop = normalization.perspective_crop(plane)
  turned_body = normalization.to_crop_frame(body, plane)
  turned_root = normalization.to_crop_frame(root[:, None], plane)[:, 0]
  # The root lies on the turned camera's axis, at its distance.
  np.testing.assert_allclose(turned_root[:, :2], 0.0, atol=1e-6)
  np.testing.assert_allclose(turned_root[:, 2], np.linalg.norm(root, axis=-1))
  # The crop is the turned camera's projection of the pose, scaled to unit RMS radius.
  points = turned_body + turned_root[:, None]
  projected = points[..., :2] / points[..., 2:]
  radius = np.sqrt((projected ** 2).sum(-1).mean(-1))
  np.testing.assert_allclose(crop, projected / radius[:, None, None], atol=1e-9)
  np.testing.assert_allclose(np.sqrt((crop ** 2).sum(-1).mean(-1)), 1.0)
  # Bone lengths are kept, and from_crop_frame undoes to_crop_frame.
  np.testing.assert_allclose(np.linalg.norm(turned_body, axis=-1), np.linalg.norm(body, axis=-1))
  np.testing.assert_allclose(normalization.from_crop_frame(turned_body, plane), body, atol=1e-9)


def test_perspective_crop_ignores_distance_and_mirrors_with_the_image():
  body, root, plane = _camera_pose(np.random.default_rng(1))
  crop = normalization.perspective_crop(plane)
  crop_at = lambda k: normalization.perspective_crop(  # the body k times as far, same ray
      (body + k * root[:, None])[..., :2] / (body + k * root[:, None])[..., 2:])
  scaled = 3 * body + 3 * root[:, None]  # a body 3x the size, 3x as far: the same image
  np.testing.assert_allclose(normalization.perspective_crop(scaled[..., :2] / scaled[..., 2:]),
                             crop, atol=1e-9)
  # Farther away only the perspective of the view changes, less and less.
  assert np.abs(crop_at(20) - crop_at(10)).max() < 0.02 < np.abs(crop_at(2) - crop).max()
  # The crop of the mirrored image (x -> -x) is the mirrored crop, and the turned frames mirror.
  flip = np.array([-1.0, 1.0])
  np.testing.assert_allclose(normalization.perspective_crop(plane * flip), crop * flip,
                             atol=1e-9)
  flip_3d = np.array([-1.0, 1.0, 1.0])
  np.testing.assert_allclose(normalization.to_crop_frame(body * flip_3d, plane * flip),
                             normalization.to_crop_frame(body, plane) * flip_3d, atol=1e-9)


def test_perspective_crop_traces_in_jax_as_in_numpy():
  body, _, plane = _camera_pose(np.random.default_rng(2))
  crop = jax.jit(normalization.perspective_crop)(jnp.asarray(plane, jnp.float32))
  back = jax.jit(normalization.from_crop_frame)(jnp.asarray(body, jnp.float32),
                                               jnp.asarray(plane, jnp.float32))
  np.testing.assert_allclose(crop, normalization.perspective_crop(plane), atol=1e-5)
  np.testing.assert_allclose(back, normalization.from_crop_frame(body, plane), atol=1e-2)
