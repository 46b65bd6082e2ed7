"""Cross-modal training: every pair's shapes, the pair schedules, one step per pair, a short run."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax import input_pipeline
from hpe_jax import schedules
from hpe_jax import train
from test_train import load_config

PAIRS = ('rgb->3d', 'rgb->rgb', '2d->3d', '3d->3d', '2d->2d')


def tiny_config(data_dir=None, name='crossmodal', **overrides):
  config = load_config(name, 'tiny')
  config.data_dir = data_dir
  config.update(overrides)
  return config


def _batch(config, n=4, seed=0):
  """A random batch in the training data's layout (uint8 crops, normalised poses)."""
  rng = np.random.default_rng(seed)
  s = config.image_size
  return {'image': jnp.asarray(rng.integers(0, 256, (n, s, s, 3)), jnp.uint8),
          'pose_2d': jnp.asarray(rng.normal(size=(n, 16, 2)), jnp.float32),
          'pose_3d': jnp.asarray(rng.normal(size=(n, 16, 3)), jnp.float32)}


def test_crossmodal_config_trains_the_thesis_pairs():
  config = tiny_config()
  assert tuple(train.pair_name(p) for p in config.pairs) == PAIRS
  assert [train.pair_name(p) for p in tiny_config(name='image').pairs] == ['rgb->3d']
  full = load_config('crossmodal', '')
  assert full.image_size == 256 and full.dataset == 'h36m_synthetic/default'


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_every_pair_has_the_target_shape_and_float32_outputs(dtype):
  config = tiny_config()
  config.model.dtype = dtype
  model = train.create_model(config)
  state = train.create_train_state(config, model, train.create_optimizer(config, 10),
                                   jax.random.PRNGKey(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  batch = _batch(config)
  for pair in config.pairs:
    x = train.model_input(batch, pair['source'])
    out = jax.eval_shape(lambda v, x, p=pair: model.apply(
        v, x, source=p['source'], target=p['target'], train=False), variables, x)
    assert out['recon'].shape == (4,) + train.modality_shape(config, pair['target']), pair
    assert out['recon'].dtype == jnp.float32
    assert out['mean'].shape == out['logvar'].shape == (4, config.model.latent_dim)
  # The image branch computes in the configured dtype (bf16 on accelerators).
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, source='image', target='pose_3d',
                                                  train=False))(variables, batch['image'] * 1.0)
  conv_dtypes = {eqn.outvars[0].aval.dtype for eqn in jaxpr.eqns
                 if eqn.primitive.name == 'conv_general_dilated'}
  assert conv_dtypes == {jnp.dtype(dtype)}


def test_auto_dtype_is_float32_on_cpu():
  config = tiny_config()
  config.model.dtype = 'auto'
  assert train.compute_dtype(config) == jnp.float32
  config.model.dtype = 'float16'
  with pytest.raises(ValueError, match="model.dtype must be 'auto', 'float32' or 'bfloat16'"):
    train.compute_dtype(config)


def test_schedules_visit_the_configured_pairs_in_order():
  config = tiny_config()
  n = len(config.pairs)
  config.pair_schedule = 'round_robin'
  groups = train.pair_groups(config)
  visited = [train.pair_name(groups[train.scheduled_group(config, step, 7)][0])
             for step in range(2 * n)]
  assert visited == list(PAIRS) * 2
  config.pair_schedule = 'per_epoch'
  visited = [train.pair_name(train.pair_groups(config)[train.scheduled_group(config, s, 3)][0])
             for s in range(3 * n)]
  assert visited == [name for name in PAIRS for _ in range(3)]
  config.pair_schedule = 'sum'
  assert [[train.pair_name(p) for p in g] for g in train.pair_groups(config)] == [list(PAIRS)]
  assert {train.scheduled_group(config, s, 3) for s in range(20)} == {0}
  config.pair_schedule = 'alternate'
  with pytest.raises(ValueError, match='pair_schedule must be one of'):
    train.pair_groups(config)


def test_pose_only_configs_need_the_sum_schedule(tmp_path):
  config = load_config('lifting', 'tiny')
  config.data_dir = str(tmp_path / 'not_read')
  config.pairs = [dict(source='pose_2d', target='pose_3d', weight=1.0, beta=0.001),
                  dict(source='pose_3d', target='pose_3d', weight=1.0, beta=0.001)]
  config.pair_schedule = 'round_robin'
  with pytest.raises(ValueError, match="Pose-only configs train every pair in one step"):
    train.train_and_evaluate(config, str(tmp_path))


def test_frozen_stages_do_not_move():
  config = tiny_config(pairs=[dict(source='image', target='pose_3d', weight=1.0, beta=0.001)])
  config.pretrained.trainable_stages = 'stage4,heads'
  model = train.create_model(config)
  tx = train.create_optimizer(config, 10)
  state = train.create_train_state(config, model, tx, jax.random.PRNGKey(0))
  step = jax.jit(lambda s, b: train.train_step(
      s, b, model=model, tx=tx, config=config, pairs=config.pairs,
      beta_fn=schedules.beta_schedule('constant', 1.0, 10),
      collection=train.make_metrics_collection(config.pairs)))
  new_state, _ = step(state, _batch(config, n=8))
  for collection in ('params', 'batch_stats'):
    before = getattr(state, collection)['encoders_image']['backbone']
    after = getattr(new_state, collection)['encoders_image']['backbone']
    for name in before:
      moved = any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(
          jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))
      assert moved == name.startswith('stage4'), (collection, name)
  before, after = state.params['encoders_image'], new_state.params['encoders_image']
  assert np.any(np.asarray(before['mean']['kernel']) != np.asarray(after['mean']['kernel']))


@pytest.mark.slow
def test_one_step_of_each_pair_lowers_its_loss_on_a_fixed_batch(tiny_data_dir):
  config = tiny_config(tiny_data_dir, deterministic=True)
  config.model.dropout = 0.0
  builder = input_pipeline.get_builder(config.dataset, tiny_data_dir)
  stats = input_pipeline.normalization_stats(builder)
  batch = next(input_pipeline.image_batches(
      builder, 'train', batch_size=16, image_size=config.image_size, stats=stats,
      train=True).as_numpy_iterator())
  model = train.create_model(config)
  tx = train.create_optimizer(config, 10)
  initial = train.create_train_state(config, model, tx, jax.random.PRNGKey(0))
  beta_fn = schedules.beta_schedule('constant', 1.0, 10)
  for group in train.pair_groups(tiny_config(pair_schedule='round_robin')):
    key = train._metric_key(group[0], 'loss')  # pylint: disable=protected-access
    step = jax.jit(lambda s, b, g=group: train.train_step(
        s, b, model=model, tx=tx, config=config, pairs=g, beta_fn=beta_fn,
        collection=train.make_metrics_collection(g)))
    state, first = step(initial, batch)
    _, second = step(state, batch)
    before, after = (float(m.compute()[key]) for m in (first, second))
    assert after < before, (train.pair_name(group[0]), before, after)


@pytest.mark.slow
def test_short_crossmodal_run_improves_rgb_to_3d(tiny_data_dir, tmp_path):
  """rgb->3d, 2d->3d and 3d->3d share the latent space and the 3D decoder.

  Evaluated on the training split: the tiny test split's subject has poses that 480
  training crops do not cover, so a short run shows learning by fitting its data
  (measured: the untrained model and any short run both sit near 215 mm on test).
  """
  pairs = [dict(source=s, target='pose_3d', weight=1.0, beta=0.001)
           for s in ('image', 'pose_2d', 'pose_3d')]
  config = tiny_config(tiny_data_dir, pairs=pairs, pair_schedule='sum', eval_split='train',
                       num_epochs=0)
  untrained = train.train_and_evaluate(config, str(tmp_path / 'untrained'))
  config.num_epochs, config.eval_every_epochs = 30, 30
  summary = train.train_and_evaluate(config, str(tmp_path / 'run'))
  before = untrained['rgb->3d/mpjpe']['mean_over_actions']
  after = summary['rgb->3d/mpjpe']['mean_over_actions']
  assert after < 0.85 * before, (before, after)
  assert summary['2d->3d/mpjpe']['mean_over_actions'] < 0.85 * untrained[
      '2d->3d/mpjpe']['mean_over_actions']
  assert summary['compiles_after_first_epoch'] == 0
  table = (tmp_path / 'run' / 'results.md').read_text()
  assert 'rgb->3d MPJPE' in table and '2d->3d MPJPE' in table


@pytest.mark.slow
def test_streamed_sigterm_then_resume_equals_uninterrupted_run(tiny_data_dir, tmp_path,
                                                               monkeypatch):
  config = tiny_config(tiny_data_dir, num_epochs=2, pair_schedule='round_robin',
                       pairs=[dict(source='image', target='pose_3d', weight=1.0, beta=0.001),
                              dict(source='image', target='image', weight=1.0, beta=0.001),
                              dict(source='pose_2d', target='pose_3d', weight=1.0, beta=0.001)])
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert straight['compiles_after_first_epoch'] == 0
  assert (tmp_path / 'straight' / 'eval_images.png').stat().st_size > 10_000

  device_batches = train._device_batches  # pylint: disable=protected-access
  consumed = []

  def interrupting(dataset, sharding):
    for batch in device_batches(dataset, sharding):
      consumed.append(1)
      if len(consumed) == 20:  # Mid-epoch 2 (15 steps an epoch): the preemption signal.
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch

  monkeypatch.setattr(train, '_device_batches', interrupting)
  train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  manager = train.checkpoint_manager(str(tmp_path / 'resumed'), config)
  assert 15 < manager.latest_step() < 30
  monkeypatch.setattr(train, '_device_batches', device_batches)
  resumed = train.train_and_evaluate(config, str(tmp_path / 'resumed'))
  assert resumed['rgb->3d/mpjpe']['mean_over_actions'] == pytest.approx(
      straight['rgb->3d/mpjpe']['mean_over_actions'], rel=1e-6)
  model = train.create_model(config)
  state = train.create_train_state(config, model, train.create_optimizer(config, 1),
                                   jax.random.PRNGKey(0))
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  params = []
  for run in ('straight', 'resumed'):
    manager = train.checkpoint_manager(str(tmp_path / run), config)
    params.append(manager.restore(manager.latest_step(),
                                  args=ocp.args.StandardRestore(abstract)))
  assert int(params[0].step) == int(params[1].step) == 30
  for a, b in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
