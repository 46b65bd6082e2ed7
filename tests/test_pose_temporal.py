"""The temporal pose network (config.model.pose_net='temporal'): windows, the net, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_pair_shapes, load_config, random_batch, tiny_config
from hpe_jax import config_lib
from hpe_jax import input_pipeline
from hpe_jax import modalities
from hpe_jax import sequences
from hpe_jax import train
from hpe_jax.models import factory
from hpe_jax.models import pose_temporal


def test_a_window_at_a_sequence_edge_repeats_the_edge_frame():
  pose = jnp.arange(10.0)  # rows 0-3: one sequence, 4-9 another
  bounds = np.asarray([[0, 3]] * 4 + [[4, 9]] * 6, np.int32)
  offsets = sequences.window_offsets(5, causal=False)
  windows = sequences.gather_windows(pose, jnp.asarray([0, 3, 4, 7]), bounds[[0, 3, 4, 7]],
                                     offsets)
  np.testing.assert_array_equal(windows, [[0, 0, 0, 1, 2], [1, 2, 3, 3, 3],
                                          [4, 4, 4, 5, 6], [5, 6, 7, 8, 9]])
  causal = sequences.gather_windows(pose, jnp.asarray([5]), bounds[[5]],
                                    sequences.window_offsets(5, causal=True))
  np.testing.assert_array_equal(causal, [[4, 4, 4, 4, 5]])


def _shuffled_sequences(rng):
  """Rows of 2 subjects x 2 actions x 2 cameras, 7-12 frames each, in random order."""
  parts = []
  for subject in (1, 5):
    for action in (0, 3):
      for camera in (0, 2):
        n = rng.integers(7, 13)
        parts.append({'subject_number': np.full(n, subject), 'action': np.full(n, action),
                      'subaction': np.ones(n, np.int32), 'camera_index': np.full(n, camera),
                      'frame': np.arange(n)})
  arrays = {k: np.concatenate([p[k] for p in parts]).astype(np.int32) for k in parts[0]}
  order = rng.permutation(len(arrays['frame']))
  return {k: v[order] for k, v in arrays.items()}


def test_windows_never_cross_sequences_or_cameras():
  arrays = _shuffled_sequences(np.random.default_rng(0))
  arrays['pose_2d'] = np.arange(len(arrays['frame']))  # each row's own index, to follow it
  ordered = input_pipeline.in_frame_order(arrays)
  bounds = ordered['sequence_bounds']
  assert np.all(np.diff(ordered['frame'])[np.diff(bounds[:, 0]) == 0] == 1)
  rows = np.arange(len(bounds))
  windows = np.asarray(sequences.window_rows(rows, bounds, sequences.window_offsets(27, False)))
  for key in sequences.SEQUENCE_KEYS:
    np.testing.assert_array_equal(ordered[key][windows], ordered[key][rows][:, None] *
                                  np.ones((1, 27), np.int32))
  # The centre of every window is its own row; frames run in order, edges repeated.
  np.testing.assert_array_equal(windows[:, 13], rows)
  assert np.all(np.diff(ordered['frame'][windows], axis=1) >= 0)


def test_acceleration_is_the_second_difference_inside_sequences():
  t = np.arange(5, dtype=np.float32)
  poses = np.zeros((5, 2, 3), np.float32)
  poses[:, 0, 0] = t ** 2  # acceleration 2 mm / frame^2 on one of two joints: mean 1
  bounds = np.asarray([[0, 4]] * 5, np.int32)
  accel = np.asarray(sequences.acceleration_mm(jnp.asarray(poses), jnp.asarray(bounds)))
  assert np.isnan(accel[0]) and np.isnan(accel[4])
  np.testing.assert_allclose(accel[1:4], 1.0)


def test_windows_must_be_powers_of_three():
  config = load_config('temporal', 'tiny')
  config_lib.check(config)
  config.model.window = 30
  with pytest.raises(config_lib.ConfigError, match='power of 3'):
    config_lib.check(config)
  config = load_config('temporal', 'tiny')
  config.pairs = [dict(source='image', target='pose_3d', weight=1.0, beta=0.001)]
  with pytest.raises(config_lib.ConfigError, match='pose configs with 3D labels'):
    config_lib.check(config)


def _dilated_reference(params, window, causal):
  """VideoPose3D's dilated convolutions (no batch norm, ReLU), written out in NumPy: the
  expanding width-3 convolution, then per block a width-3 convolution dilated 3^i and a
  1x1 one, the skip connection cut to the output's frames, then the Gaussian head."""
  def conv(x, layer, dilation):
    kernel, bias = np.asarray(layer['conv']['kernel']), np.asarray(layer['conv']['bias'])
    length = len(x) - (kernel.shape[0] - 1) * dilation
    out = sum(x[k * dilation:k * dilation + length] @ kernel[k] for k in range(kernel.shape[0]))
    return np.maximum(out + bias, 0.0)
  x = conv(window.reshape(len(window), -1), params['TemporalLayer_0'], 1)
  dilation, layer = 3, 1
  while len(x) > 1:
    y = conv(conv(x, params[f'TemporalLayer_{layer}'], dilation),
             params[f'TemporalLayer_{layer + 1}'], 1)
    skip = 2 * dilation if causal else dilation
    x = x[skip:skip + len(y)] + y
    dilation, layer = 3 * dilation, layer + 2
  head = params['gaussian']
  return x[0] @ np.asarray(head['kernel']) + np.asarray(head['bias'])


@pytest.mark.parametrize('causal', [False, True])
def test_the_encoder_equals_videopose3d_dilated_convolutions(causal):
  encoder = pose_temporal.TemporalPoseEncoder(window=27, causal=causal, latent_dim=3, hidden=5,
                                              dropout=0.0, use_batch_norm=False)
  window = jax.random.normal(jax.random.PRNGKey(1), (1, 27, 16, 2))
  params = encoder.init(jax.random.PRNGKey(0), window, train=False)['params']
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape),
                        params)  # non-zero biases
  mean, logvar = encoder.apply({'params': params}, window, train=False)
  expected = _dilated_reference(params, np.asarray(window[0], np.float64), causal)
  np.testing.assert_allclose(np.concatenate([mean[0], logvar[0]]), expected, rtol=1e-4,
                             atol=1e-4)


@pytest.mark.parametrize('causal', [True, False])
def test_the_causal_variant_uses_no_future_frame(causal):
  config = load_config('temporal', 'tiny')
  config.model.causal = causal
  model = factory.create_model(config)
  variables = factory.init_variables(config, model, jax.random.PRNGKey(0))
  offsets = sequences.window_offsets(config.model.window, causal)
  sequence = jax.random.normal(jax.random.PRNGKey(1), (30, 16, 2))
  changed = sequence.at[20:].add(1.0)  # frames 20 on differ

  def latents(seq):
    windows = sequences.sequence_windows(seq, offsets)
    return model.apply(variables, windows, source='pose_2d', target='pose_3d',
                       train=False)['mean']
  before, after = latents(sequence), latents(changed)
  unchanged = np.all(np.isclose(before, after), axis=1)
  if causal:
    assert unchanged[:20].all() and not unchanged[20:].any()
  else:  # a centred window of 9 sees 4 frames ahead
    assert unchanged[:16].all() and not unchanged[16:].any()


@pytest.mark.parametrize('name', ['temporal', 'crossmodal_poses'])
def test_every_pair_has_the_target_shape_with_the_temporal_net(name):
  config = load_config('temporal', 'tiny')
  if name == 'crossmodal_poses':
    config.pairs = [dict(source=s, target=t, weight=1.0, beta=0.001) for s, t in
                    (('pose_2d', 'pose_3d'), ('pose_3d', 'pose_3d'), ('pose_2d', 'pose_2d'))]
  model = factory.create_model(config)
  assert isinstance(model.encoders['pose_2d'], pose_temporal.TemporalPoseEncoder)
  variables = jax.eval_shape(lambda: factory.init_variables(config, model,
                                                            jax.random.PRNGKey(0)))
  batch = random_batch(config)
  batch['pose_2d_window'] = jnp.zeros((4,) + modalities.input_shape(config, 'pose_2d'))
  assert_pair_shapes(config, model, variables, batch)


def test_tiny_temporal_training_lowers_test_mpjpe_and_reports_jitter(tiny_poses_data_dir,
                                                                     tmp_path):
  def run(epochs):
    config = tiny_config(tiny_poses_data_dir, name='temporal', num_epochs=epochs,
                         flip_test=True)
    config.augment.flip_prob = 0.5
    config.model.hidden = 64
    config.optimizer.learning_rate = 3e-3
    return train.train_and_evaluate(config, str(tmp_path / str(epochs)))
  before, after = run(0), run(3)
  mpjpe = lambda s: s['2d->3d/mpjpe']['mean_over_actions']
  assert mpjpe(after) < 0.75 * mpjpe(before), (mpjpe(before), mpjpe(after))
  jitter_gt = after['jitter_gt']['mean_over_actions']
  assert jitter_gt == before['jitter_gt']['mean_over_actions'] and 0 < jitter_gt < 10
  assert 0 < after['2d->3d/jitter']['mean_over_actions'] < 10 * jitter_gt


def test_tiny_poses_holds_every_frame_of_each_sequence(tiny_poses_data_dir):
  builder = input_pipeline.get_builder('h36m_synthetic/tiny_poses', tiny_poses_data_dir)
  arrays = input_pipeline.in_frame_order(input_pipeline.load_pose_arrays(builder, 'test'))
  bounds = arrays['sequence_bounds']
  assert sequences.frame_step(arrays, bounds) == 1
  np.testing.assert_array_equal(bounds[:, 1] - bounds[:, 0] + 1, 40)  # 40 frames each
  assert len(np.unique(bounds[:, 0])) == 15 * 4  # 15 actions x 4 cameras of S9
