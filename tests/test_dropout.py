"""The hash-mask dropout of the pose MLPs: rate, scaling, independence, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax.models import dropout


def _apply(x, rate, seed, deterministic=False):
  return dropout.Dropout(rate).apply({}, x, deterministic,
                                     rngs={'dropout': jax.random.PRNGKey(seed)})


def test_keep_fraction_matches_the_rate_within_binomial_error():
  shape = (256, 512)
  n = np.prod(shape)
  for rate in (0.1, 0.2, 0.5, 0.9):
    for seed in range(3):
      mask = np.asarray(dropout.keep_mask(jax.random.PRNGKey(seed), shape, 1.0 - rate))
      sigma = np.sqrt(rate * (1 - rate) / n)
      assert abs(mask.mean() - (1.0 - rate)) < 5 * sigma, (rate, seed, mask.mean())
      # Every row and column keeps about the same share: no striping by index.
      assert np.abs(mask.mean(axis=0) - (1 - rate)).max() < 6 * np.sqrt(rate * (1 - rate) / 256)
      assert np.abs(mask.mean(axis=1) - (1 - rate)).max() < 6 * np.sqrt(rate * (1 - rate) / 512)


def test_masks_look_independent_across_elements_and_keys():
  shape = (256, 512)
  a = np.asarray(dropout.keep_mask(jax.random.PRNGKey(0), shape, 0.8), np.float64).ravel()
  b = np.asarray(dropout.keep_mask(jax.random.PRNGKey(1), shape, 0.8), np.float64).ravel()
  limit = 5 / np.sqrt(a.size)  # correlation of independent Bernoullis: ~N(0, 1/n)
  for lag in (1, 2, 512):  # neighbours in a row, and the same column in the next row
    assert abs(np.corrcoef(a[:-lag], a[lag:])[0, 1]) < limit
  assert abs(np.corrcoef(a, b)[0, 1]) < limit
  # Keys one fold_in apart (successive layers or steps) are as unrelated.
  key = jax.random.PRNGKey(3)
  c = np.asarray(dropout.keep_mask(jax.random.fold_in(key, 0), shape, 0.8), np.float64).ravel()
  d = np.asarray(dropout.keep_mask(jax.random.fold_in(key, 1), shape, 0.8), np.float64).ravel()
  assert abs(np.corrcoef(c, d)[0, 1]) < limit


def test_training_zeroes_and_rescales_and_evaluation_is_identity():
  x = jnp.asarray(np.random.default_rng(0).uniform(1.0, 2.0, (64, 128)), jnp.float32)
  y = np.asarray(_apply(x, 0.25, seed=0))
  kept = y != 0
  np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / 0.75, rtol=1e-6)
  assert 0.65 < kept.mean() < 0.85
  np.testing.assert_array_equal(np.asarray(_apply(x, 0.25, 0, deterministic=True)), x)
  np.testing.assert_array_equal(np.asarray(_apply(x, 0.0, 0)), x)


def test_same_key_same_mask_other_key_other_mask():
  x = jnp.ones((32, 64))
  np.testing.assert_array_equal(_apply(x, 0.5, 7), _apply(x, 0.5, 7))
  assert not np.array_equal(_apply(x, 0.5, 7), _apply(x, 0.5, 8))


def test_gradient_passes_only_through_kept_elements():
  x = jnp.ones((16, 32))
  grad = jax.grad(lambda v: _apply(v, 0.5, 3).sum())(x)
  kept = np.asarray(_apply(x, 0.5, 3)) != 0
  np.testing.assert_allclose(np.asarray(grad), np.where(kept, 2.0, 0.0))


def test_bad_rate_is_an_error():
  with pytest.raises(ValueError, match='dropout rate'):
    _apply(jnp.ones((2, 2)), 1.0, 0)
