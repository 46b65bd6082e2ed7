"""The graph pose network (config.model.pose_net='graph'): its layer, shapes and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_pair_shapes, load_config, random_batch, tiny_config
from hpe_jax import config_lib
from hpe_jax import train
from hpe_jax.models import factory
from hpe_jax.models import pose_graph
from hpe_jax.models import pose_mlp


def test_graph_layer_on_a_three_joint_chain_matches_the_hand_computation():
  # Chain 0 - 1 - 2; with self-loops the degrees are 2, 3, 2, so the normalised
  # adjacency is a_00 = a_22 = 1/2, a_11 = 1/3, a_01 = a_12 = 1/sqrt(6), a_02 = 0.
  conv = pose_graph.ModulatedGraphConv(1, adjacency=((0, 1, 0), (1, 0, 1), (0, 1, 0)))
  x = jnp.array([[[1.0], [2.0], [3.0]]])
  params = {'weights': {'kernel': jnp.array([[2.0, 1.0]])},  # W_self = 2, W_nbr = 1
            'modulation': jnp.array([[1.0], [2.0], [3.0]]),  # m_0, m_1, m_2
            'affinity': jnp.array([[0.0, 0.0, 0.4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
            'bias': jnp.zeros(1)}
  out = conv.apply({'params': params}, x)
  # (Q + Q^T) / 2 adds 0.2 to a_02 and a_20. out_i = a_ii m_i 2 x_i + sum_j a_ij m_j x_j:
  s6 = np.sqrt(6.0)
  expected = [0.5 * 1 * 2 * 1 + 2 * 2 / s6 + 0.2 * 3 * 3,  # 2.8 + 4/sqrt(6) = 4.4330
              1 / 3 * 2 * 2 * 2 + 1 * 1 / s6 + 3 * 3 / s6,  # 8/3 + 10/sqrt(6) = 6.7491
              0.5 * 3 * 2 * 3 + 2 * 2 / s6 + 0.2 * 1 * 1]  # 9.2 + 4/sqrt(6) = 10.8330
  np.testing.assert_allclose(np.asarray(out)[0, :, 0], expected, rtol=1e-6)


def test_skeleton_graph_is_the_non_root_bones_and_the_root_children_triangle():
  a = np.array(pose_graph.skeleton_adjacency())
  assert a.shape == (16, 16) and (a == a.T).all() and not np.diag(a).any()
  assert a.sum() == 2 * (13 + 3)  # 16 bones less the root's 3, plus RHip-LHip-Spine
  assert a[0, 3] == a[0, 6] == a[3, 6] == 1  # RHip, LHip, Spine (joints 1, 4, 7)
  reach = np.linalg.matrix_power(a + np.eye(16), 16)
  assert (reach > 0).all()  # connected


def _graph_config(name):
  config = load_config(name, 'tiny')
  config.model.update(pose_net='graph', graph_hidden=8)
  return config


@pytest.mark.parametrize('name', ['lifting', 'crossmodal'])
def test_every_pair_has_the_target_shape_with_the_graph_net(name):
  config = _graph_config(name)
  if name == 'lifting':
    config.pairs = [dict(source=s, target=t, weight=1.0, beta=0.001) for s, t in
                    (('pose_2d', 'pose_3d'), ('pose_3d', 'pose_3d'), ('pose_2d', 'pose_2d'))]
  model = factory.create_model(config)
  for m, net in list(model.encoders.items()) + list(model.decoders.items()):
    if m != 'image':
      assert isinstance(net, (pose_graph.GraphPoseEncoder, pose_graph.GraphPoseDecoder)), m
  # Shapes only (eval_shape): no compilation, so the ResNet of the image pairs costs little.
  variables = jax.eval_shape(lambda: factory.init_variables(config, model,
                                                            jax.random.PRNGKey(0)))
  assert 'affinity' in str(jax.tree_util.tree_structure(variables['params']))
  assert_pair_shapes(config, model, variables, random_batch(config))


def test_graph_net_in_bfloat16_keeps_float32_params_and_outputs():
  config = _graph_config('lifting')
  config.model.dtype = 'bfloat16'
  model = factory.create_model(config)
  variables = jax.eval_shape(lambda: factory.init_variables(config, model,
                                                            jax.random.PRNGKey(0)))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables['params']))
  rngs = {'dropout': jax.random.PRNGKey(1), 'latent': jax.random.PRNGKey(2)}
  out = jax.eval_shape(lambda v: model.apply(
      v, jnp.ones((4, 16, 2)), source='pose_2d', target='pose_3d', train=True, rngs=rngs,
      mutable=['batch_stats'])[0], variables)
  assert out['recon'].dtype == out['mean'].dtype == jnp.float32


def test_mlp_is_the_default_and_pose_net_is_checked():
  config = load_config('lifting', 'tiny')
  assert config.model.pose_net == 'mlp'
  model = factory.create_model(config)
  assert isinstance(model.encoders['pose_2d'], pose_mlp.PoseEncoder)
  assert isinstance(model.decoders['pose_3d'], pose_mlp.PoseDecoder)
  config.model.pose_net = 'gcn'
  with pytest.raises(config_lib.ConfigError, match="Unknown model.pose_net 'gcn'"):
    config_lib.check(config)


def test_tiny_graph_training_lowers_test_mpjpe(tiny_data_dir, tmp_path):
  def run(epochs):
    config = tiny_config(tiny_data_dir, num_epochs=epochs)
    config.model.update(pose_net='graph', graph_hidden=16)
    config.optimizer.learning_rate = 1e-2  # 90 steps at 1e-3 barely move the MLP either
    return train.train_and_evaluate(config, str(tmp_path / str(epochs)))['2d->3d/mpjpe'][
        'mean_over_actions']
  before, after = run(0), run(6)
  assert after < 0.75 * before, (before, after)
