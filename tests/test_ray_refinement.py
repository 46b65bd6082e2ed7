"""The ray refinement of an any-camera lifter's answer (hpe_jax/ray_refinement.py)."""

import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax import camera_geometry
from hpe_jax import ray_refinement


def _scene(seed=0, n=5):
  """Root-relative poses (N, 17, 3) mm that miss their keypoints across the rays, those
  keypoints (N, 17, 2) on the normalised image plane, and the poses they are the projections
  of (root-relative, mm)."""
  rng = np.random.default_rng(seed)
  truth = rng.normal(0.0, 300.0, (n, 17, 3))
  truth -= truth[:, :1]
  root = np.stack([rng.uniform(-1000, 1000, n), rng.uniform(-500, 500, n),
                   rng.uniform(3000, 6000, n)], -1)[:, None]
  placed = truth + root
  answer = truth + rng.normal(0.0, 60.0, truth.shape)
  return answer - answer[:, :1], placed[..., :2] / placed[..., 2:], truth


def test_weight_by_hand():
  assert ray_refinement.weight(0.0) == 1.0
  assert ray_refinement.weight(ray_refinement.LIFTER_RAY_ERROR) == pytest.approx(0.5)
  assert ray_refinement.weight(3 * ray_refinement.LIFTER_RAY_ERROR) == pytest.approx(0.1)
  for bad in (-0.01, np.inf, np.nan):
    with pytest.raises(ValueError, match='keypoint_noise'):
      ray_refinement.weight(bad)
  missing = np.zeros((2, 17), bool)
  missing[1, 16] = True
  weights = ray_refinement.joint_weights(missing, 0.0)
  assert weights.dtype == np.float32 and weights[1, 16] == 0 and weights.sum() == 33


def test_refine_moves_joints_onto_their_rays_by_the_weight():
  answer, plane, truth = _scene()
  ones = np.ones(answer.shape[:2])
  on_rays = ray_refinement.refine(answer, plane, ones)
  # Placed at the root fitted to the answer, every non-root joint lies on its keypoint's ray.
  root = camera_geometry.fit_root(answer, plane, np.ones((5, 2)), np.zeros((5, 2)))[:, None]
  placed = on_rays + root
  np.testing.assert_allclose(placed[:, 1:, :2] / placed[:, 1:, 2:], plane[:, 1:], atol=1e-9)
  assert np.all(on_rays[:, 0] == 0) and np.abs(on_rays - answer).max() > 10
  # Weight 0 leaves a joint where it was; the move is linear in the weight.
  np.testing.assert_allclose(ray_refinement.refine(answer, plane, 0 * ones), answer, atol=1e-9)
  half = ray_refinement.refine(answer, plane, 0.5 * ones)
  np.testing.assert_allclose(half, (answer + on_rays) / 2, atol=1e-9)
  per_joint = ones.copy()
  per_joint[:, 5] = 0.0
  some = ray_refinement.refine(answer, plane, per_joint)
  np.testing.assert_allclose(some[:, 5], answer[:, 5], atol=1e-9)
  np.testing.assert_allclose(some[:, 6], on_rays[:, 6], atol=1e-9)
  # A pose that projects onto its keypoints stays as it is.
  np.testing.assert_allclose(ray_refinement.refine(truth, plane, ones), truth, atol=1e-6)


def test_refine_traces_in_jax_as_in_numpy():
  answer, plane, _ = _scene(1)
  weights = np.full(answer.shape[:2], 0.7)
  in_jax = ray_refinement.refine(jnp.asarray(answer, jnp.float32), jnp.asarray(plane, jnp.float32),
                                 jnp.asarray(weights, jnp.float32))
  np.testing.assert_allclose(in_jax, ray_refinement.refine(answer, plane, weights), atol=0.05)
