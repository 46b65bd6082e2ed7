"""The pose MLPs' BatchNorm (hand-written backward pass) against flax.linen.BatchNorm.

Its statistics over a batch sharded across devices are covered by
tests/test_train.py::test_four_devices_equal_one_device.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax.models import batch_norm


def _inputs(shape, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(3.0, 2.0, shape), jnp.float32)  # off-centre, not unit scale
  features = shape[-1]
  params = {'scale': jnp.asarray(rng.normal(1.0, 0.3, features), jnp.float32),
            'bias': jnp.asarray(rng.normal(0.0, 0.5, features), jnp.float32)}
  stats = {'mean': jnp.asarray(rng.normal(0.0, 1.0, features), jnp.float32),
           'var': jnp.asarray(rng.uniform(0.5, 2.0, features), jnp.float32)}
  return x, params, stats


def _pair(train):
  return (batch_norm.BatchNorm(use_running_average=not train, momentum=0.9),
          nn.BatchNorm(use_running_average=not train, momentum=0.9))


def test_variables_are_flax_batch_norms():
  x, _, _ = _inputs((8, 5))
  ours, flax_bn = _pair(train=True)
  a = ours.init(jax.random.PRNGKey(0), x)
  b = flax_bn.init(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize('shape', [(64, 7), (4, 3, 5, 6)])
def test_training_output_statistics_and_gradients_match_flax(shape):
  x, params, stats = _inputs(shape)
  weights = jnp.asarray(np.random.default_rng(1).normal(size=shape), jnp.float32)
  results = []
  for module in _pair(train=True):
    def loss(x, params):
      y, updates = module.apply({'params': params, 'batch_stats': stats}, x,
                                mutable=['batch_stats'])
      return jnp.sum(y * weights) + 0.5 * jnp.sum(y**2), (y, updates['batch_stats'])
    (value, (y, new_stats)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        x, params)
    results.append((value, y, new_stats, grads))
  (v0, y0, s0, g0), (v1, y1, s1, g1) = results
  np.testing.assert_allclose(y0, y1, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(v0, v1, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(s0), jax.tree.leaves(s1)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_gradient_of_hand_computed_cases():
  # The outputs of a feature sum to N * bias whatever x is, so d(sum y)/dx = 0, and
  # d(sum y)/dbias = N, d(sum y)/dscale = sum(x_hat) = 0.
  x, params, stats = _inputs((16, 4))
  module = batch_norm.BatchNorm(use_running_average=False)

  def total(x, params):
    y, _ = module.apply({'params': params, 'batch_stats': stats}, x, mutable=['batch_stats'])
    return jnp.sum(y)

  dx, dparams = jax.grad(total, argnums=(0, 1))(x, params)
  np.testing.assert_allclose(dx, 0.0, atol=1e-5)
  np.testing.assert_allclose(dparams['bias'], 16.0, rtol=1e-6)
  np.testing.assert_allclose(dparams['scale'], 0.0, atol=1e-5)
  # Two samples per feature: x_hat = -1, +1 whatever x, so y = -scale + bias, scale + bias
  # and d(y_1)/dx is zero too (sigma grows with the gap).
  pair = jnp.array([[1.0], [5.0]])
  y, _ = module.apply({'params': {'scale': jnp.array([2.0]), 'bias': jnp.array([0.5])},
                       'batch_stats': {'mean': jnp.zeros(1), 'var': jnp.ones(1)}}, pair,
                      mutable=['batch_stats'])
  np.testing.assert_allclose(y[:, 0], [-1.5, 2.5], rtol=1e-5)


def test_evaluation_uses_running_statistics_like_flax():
  x, params, stats = _inputs((32, 6))
  ours, flax_bn = _pair(train=False)
  variables = {'params': params, 'batch_stats': stats}
  np.testing.assert_allclose(ours.apply(variables, x), flax_bn.apply(variables, x),
                             rtol=1e-6, atol=1e-6)
  expected = (x - stats['mean']) / np.sqrt(stats['var'] + 1e-5) * params['scale'] + params['bias']
  np.testing.assert_allclose(ours.apply(variables, x), expected, rtol=1e-5, atol=1e-5)
