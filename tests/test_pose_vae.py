"""Pose encoders/decoders and the cross-modal VAE over one latent space."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hpe_jax import losses
from hpe_jax.models import pose_mlp
from hpe_jax.models import vae

SMALL = dict(hidden=16, num_blocks=1, dropout=0.1)


def _model(deterministic=False, batch_norm=True):
  common = dict(SMALL, use_batch_norm=batch_norm)
  return vae.CrossModalVAE(
      encoders={'pose_2d': pose_mlp.PoseEncoder(latent_dim=4, **common),
                'pose_3d': pose_mlp.PoseEncoder(latent_dim=4, **common)},
      decoders={'pose_3d': pose_mlp.PoseDecoder(num_joints=16, joint_dim=3, **common)},
      deterministic_latent=deterministic)


def _inputs(n=8, seed=0):
  rng = np.random.default_rng(seed)
  return {'pose_2d': jnp.asarray(rng.normal(size=(n, 16, 2)), jnp.float32),
          'pose_3d': jnp.asarray(rng.normal(size=(n, 16, 3)), jnp.float32)}


def _init(model):
  key = jax.random.PRNGKey(0)
  return model.init({'params': key, 'dropout': key, 'latent': key}, _inputs(2),
                    method=model.init_all)


def _rngs(seed):
  return {'dropout': jax.random.PRNGKey(seed), 'latent': jax.random.PRNGKey(seed + 100)}


def test_every_encoder_and_decoder_is_initialised():
  variables = _init(_model())
  assert set(variables['params']) == {'encoders_pose_2d', 'encoders_pose_3d', 'decoders_pose_3d'}
  assert 'batch_stats' in variables
  assert 'batch_stats' not in _init(_model(batch_norm=False))


def test_shapes_and_sampling():
  model, x = _model(), _inputs()
  variables = _init(model)
  outs = [model.apply(variables, x['pose_2d'], source='pose_2d', target='pose_3d', train=True,
                      rngs=_rngs(s), mutable=['batch_stats'])[0] for s in (1, 2)]
  assert outs[0]['recon'].shape == (8, 16, 3) and outs[0]['recon'].dtype == jnp.float32
  assert outs[0]['mean'].shape == outs[0]['logvar'].shape == (8, 4)
  assert not np.allclose(outs[0]['z'], outs[1]['z'])  # reparameterised samples
  ev = model.apply(variables, x['pose_2d'], source='pose_2d', target='pose_3d', train=False)
  np.testing.assert_array_equal(ev['z'], ev['mean'])  # posterior mean at evaluation


def test_deterministic_mode_never_samples():
  model, x = _model(deterministic=True), _inputs()
  variables = _init(model)
  out = model.apply(variables, x['pose_2d'], source='pose_2d', target='pose_3d', train=True,
                    rngs=_rngs(1), mutable=['batch_stats'])[0]
  np.testing.assert_array_equal(out['z'], out['mean'])


def test_logvar_is_clamped_and_outputs_finite():
  model = _model()
  variables = _init(model)
  out = model.apply(variables, jnp.full((4, 16, 2), 1e6), source='pose_2d', target='pose_3d',
                    train=False)
  assert np.all(np.abs(np.asarray(out['logvar'])) <= 10.0)
  assert np.all(np.isfinite(np.asarray(out['recon'])))


def test_pairs_share_the_decoder_and_batch_stats_update():
  model, x = _model(), _inputs()
  variables = _init(model)
  a = model.apply(variables, x['pose_2d'], source='pose_2d', target='pose_3d', train=False)
  b = model.apply(variables, x['pose_3d'], source='pose_3d', target='pose_3d', train=False)
  # Decoding the 3D encoder's latent with the 2D pair's path gives the 3D pair's output.
  same = model.apply(variables, b['z'], 'pose_3d', False, method=model.decode)
  np.testing.assert_allclose(same, b['recon'], rtol=1e-6)
  assert not np.allclose(a['recon'], b['recon'])
  _, updates = model.apply(variables, x['pose_2d'], source='pose_2d', target='pose_3d',
                           train=True, rngs=_rngs(3), mutable=['batch_stats'])
  before = jax.tree.leaves(variables['batch_stats'])
  after = jax.tree.leaves(updates['batch_stats'])
  assert any(not np.allclose(u, v) for u, v in zip(before, after))


def test_adam_steps_lower_the_loss_on_a_fixed_batch():
  model, x = _model(), _inputs(32)
  variables = _init(model)
  tx = optax.adam(1e-2)
  params, batch_stats = variables['params'], variables['batch_stats']
  opt_state = tx.init(params)

  def loss_fn(params, batch_stats, rngs):
    out, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x['pose_2d'],
                               source='pose_2d', target='pose_3d', train=True, rngs=rngs,
                               mutable=['batch_stats'])
    loss = losses.mse_loss(out['recon'], x['pose_3d']) + 1e-3 * losses.gaussian_kl_loss(
        out['mean'], out['logvar'], 48)
    return loss, updates['batch_stats']

  first = None
  for step in range(30):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, batch_stats, _rngs(step))
    first = float(loss) if first is None else first
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  assert float(loss) < 0.8 * first


def test_unknown_activation_is_an_error():
  with pytest.raises(ValueError, match='Unknown activation'):
    pose_mlp.PoseEncoder(activation='swishy', **SMALL).init(
        jax.random.PRNGKey(0), jnp.zeros((2, 16, 2)), False)
