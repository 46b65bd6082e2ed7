"""Metrics, losses and beta schedules against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax import losses
from hpe_jax import metrics
from hpe_jax import schedules


def _pose(rng, n=4):
  return rng.normal(size=(n, 17, 3)) * 300.0


def test_mpjpe_hand_computed():
  target = np.zeros((1, 17, 3))
  pred = target.copy()
  pred[0, 5] = [3.0, 4.0, 0.0]  # 5 mm
  pred[0, 9] = [0.0, 6.0, 8.0]  # 10 mm
  # (5 + 10) / 17 joints, root included.
  assert float(metrics.mpjpe(pred, target)[0]) == pytest.approx(15.0 / 17)
  errors = np.asarray(metrics.per_joint_error(pred, target))[0]
  assert errors[5] == pytest.approx(5.0) and errors[9] == pytest.approx(10.0) and errors[0] == 0


def test_mpjpe_aligns_roots():
  rng = np.random.default_rng(0)
  target = _pose(rng)
  shifted = target + np.array([100.0, -50.0, 2000.0])
  np.testing.assert_allclose(metrics.mpjpe(shifted, target), 0.0, atol=1e-3)


def test_p_mpjpe_is_zero_for_a_similarity_transform():
  rng = np.random.default_rng(1)
  target = _pose(rng)
  angle = np.deg2rad(30.0)
  rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                       [0, 0, 1.0]])
  pred = 1.7 * target @ rotation.T + np.array([10.0, 20.0, 30.0])
  np.testing.assert_allclose(metrics.p_mpjpe(pred, target), 0.0, atol=1e-3)
  assert float(metrics.mpjpe(pred, target).min()) > 50  # MPJPE sees the transform


def test_p_mpjpe_does_not_mirror():
  rng = np.random.default_rng(2)
  target = _pose(rng)
  mirrored = target * np.array([-1.0, 1.0, 1.0])
  assert float(metrics.p_mpjpe(mirrored, target).min()) > 1.0
  noisy = target + rng.normal(size=target.shape) * 20
  assert np.all(np.asarray(metrics.p_mpjpe(noisy, target)) <=
                np.asarray(metrics.mpjpe(noisy, target)) + 1e-4)


def test_action_table_hand_computed_and_jittable():
  errors = jnp.array([10.0, 20.0, 30.0, 40.0, 99.0])
  actions = jnp.array([0, 0, 2, 2, 15])  # id 15: padding, ignored
  table = jax.jit(metrics.action_table)(errors, actions)
  per_action = np.asarray(table['per_action'])
  assert per_action[0] == 15.0 and per_action[2] == 35.0
  assert np.isnan(per_action[1]) and np.isnan(per_action[14])
  assert float(table['mean_over_actions']) == 25.0  # mean of 15 and 35
  np.testing.assert_array_equal(np.asarray(table['counts'])[[0, 1, 2]], [2, 0, 2])


def test_format_action_table():
  names = [f'A{i}' for i in range(15)]
  text = metrics.format_action_table({'MPJPE': np.arange(15.0)}, names)
  rows = [line for line in text.splitlines() if line.startswith('| A') and 'Action' not in line]
  assert len(rows) == 15 and rows[3] == '| A3 | 3.0 |'
  assert '| **Average** | 7.0 |' in text and '17 joints (root included)' in text


def test_kl_divergence_hand_computed():
  # 0.5 * (exp(lv) + mu^2 - 1 - lv) per dim.
  assert float(losses.kl_divergence(jnp.ones((1, 4)), jnp.zeros((1, 4)))[0]) == pytest.approx(2.0)
  assert float(losses.kl_divergence(jnp.zeros((1, 4)), jnp.zeros((1, 4)))[0]) == 0.0
  # mu = 0, lv = log 2: 0.5 * (2 - 1 - log 2) per dim.
  value = losses.kl_divergence(jnp.zeros((1, 1)), jnp.full((1, 1), np.log(2.0)))
  assert float(value[0]) == pytest.approx(0.5 * (1 - np.log(2.0)), rel=1e-6)
  # Batch mean (2.0 and 0.0 -> 1.0) divided by 48 elements.
  mean = jnp.stack([jnp.ones(4), jnp.zeros(4)])
  loss = losses.gaussian_kl_loss(mean, jnp.zeros((2, 4)), 48)
  assert float(loss) == pytest.approx(1.0 / 48)


def test_kl_between_two_gaussians_hand_computed():
  # KL(N(1, 1) || N(0, 4)) = log 2 + (1 + 1) / 8 - 1/2 per dim.
  value = losses.gaussian_kl(jnp.ones((1, 3)), jnp.zeros((1, 3)), jnp.zeros((1, 3)),
                             jnp.full((1, 3), np.log(4.0)))
  assert float(value[0]) == pytest.approx(3 * (np.log(2.0) + 0.25 - 0.5), rel=1e-6)
  # KL(N(0, 2) || N(3, 1)) = 0.5 (-log 2 + 2 + 9 - 1) in one dim; equal Gaussians: 0.
  value = losses.gaussian_kl(jnp.zeros((1, 1)), jnp.full((1, 1), np.log(2.0)),
                             jnp.full((1, 1), 3.0), jnp.zeros((1, 1)))
  assert float(value[0]) == pytest.approx(0.5 * (10.0 - np.log(2.0)), rel=1e-6)
  mean, logvar = jnp.array([[0.3, -1.2]]), jnp.array([[0.5, -2.0]])
  assert float(losses.gaussian_kl(mean, logvar, mean, logvar)[0]) == pytest.approx(0.0, abs=1e-7)
  # Against the standard normal it is the VAE's KL.
  np.testing.assert_allclose(
      losses.gaussian_kl(mean, logvar, jnp.zeros_like(mean), jnp.zeros_like(mean)),
      losses.kl_divergence(mean, logvar), rtol=1e-6)


def test_reconstruction_losses_hand_computed():
  pred, target = jnp.array([[1.0, 2.0], [3.0, 5.0]]), jnp.array([[0.0, 2.0], [3.0, 1.0]])
  assert float(losses.mse_loss(pred, target)) == pytest.approx((1 + 0 + 0 + 16) / 4)
  assert float(losses.l1_loss(pred, target)) == pytest.approx((1 + 0 + 0 + 4) / 4)
  assert losses.mse_loss(pred.astype(jnp.bfloat16), target.astype(jnp.bfloat16)).dtype == jnp.float32


def test_beta_schedules_hand_computed():
  constant = schedules.beta_schedule('constant', 0.001, 100)
  assert float(constant(57)) == pytest.approx(0.001)
  linear = schedules.beta_schedule('linear', 2.0, 100, warmup_steps=10)
  assert [float(linear(s)) for s in (0, 5, 10, 50)] == pytest.approx([0.0, 1.0, 2.0, 2.0])
  # 4 cycles of 25 steps; beta rises over the first 12.5 steps of each.
  cyclical = schedules.beta_schedule('cyclical', 1.0, 100, num_cycles=4, ratio=0.5)
  values = [float(cyclical(s)) for s in (0, 6.25, 12.5, 24, 25, 31.25, 99)]
  assert values == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0])
  assert float(jax.jit(cyclical)(jnp.int32(31))) == pytest.approx(6 / 12.5)


@pytest.mark.parametrize('kwargs,message', [
    (dict(kind='exponential', beta=1.0, total_steps=10), 'must be'),
    (dict(kind='linear', beta=1.0, total_steps=10), 'warmup_steps'),
    (dict(kind='cyclical', beta=1.0, total_steps=10, ratio=0.0), 'ratio'),
    (dict(kind='constant', beta=-1.0, total_steps=10), 'beta must be >= 0'),
])
def test_beta_schedule_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    schedules.beta_schedule(**kwargs)
