"""Pose normalisation: the one implementation every path uses."""

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
