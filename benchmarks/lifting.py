"""Training speed of the lifting VAE (2D -> 3D): samples/s, epoch time, FLOP/s.

Runs the real jitted train calls of training (`batches.make_train_chunk` over the
step of `train.make_group_steps`: a lax.scan over steps, data resident on the
devices) with the config of configs/lifting.py (configs/temporal.py for --pose_net=temporal, whose
windows of --window frames are gathered from sequences of 1,000 rows), on random
normalised poses of Human3.6M's training size (1,559,752 poses), so no dataset needs to
be built. Prints JSON lines.

  python -m benchmarks.lifting --batch_sizes=256,4096 [--pose_net=graph] [--full_epoch] [--trace_dir=DIR]
  python -m benchmarks.lifting --pose_net=temporal --window=243 --samples_per_call=4096
"""

import json
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

import configs
from hpe_jax import batches
from hpe_jax import config_lib
from hpe_jax import optim
from hpe_jax import parallel
from hpe_jax import schedules
from hpe_jax import sequences
from hpe_jax import train
from hpe_jax.models import factory

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['256', '4096'], 'Global batch sizes.')
_NUM_POSES = flags.DEFINE_integer('num_poses', 1_559_752, 'Training poses (Human3.6M: 1,559,752).')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measurement time per batch size.')
_FULL_EPOCH = flags.DEFINE_bool('full_epoch', False, 'Also time one whole epoch per batch size.')
_TRACE_DIR = flags.DEFINE_string(
    'trace_dir', None, 'Also write a jax.profiler trace of one jitted call per batch size here '
    '(per-op times: TensorBoard profile plugin or xprof).')
_POSE_NET = flags.DEFINE_enum('pose_net', 'mlp', ['mlp', 'graph', 'temporal'],
                              'config.model.pose_net: the MLP, the skeleton graph network or '
                              'the temporal convolutions.')
_WINDOW = flags.DEFINE_integer('window', 243, 'config.model.window of --pose_net=temporal.')
_HIDDEN = flags.DEFINE_integer('hidden', None, 'config.model.hidden (default: the config\'s).')
SEQUENCE_ROWS = 1000  # rows of each random sequence (Human3.6M's run 1,000-5,000 frames)
_SAMPLES_PER_CALL = flags.DEFINE_integer('samples_per_call', 51_200,
                                         'Training samples per jitted call (sets its steps).')

# Dense peak FLOP/s of some devices (f32 / TF32 matmul), for the achieved fraction.
_PEAK_FLOPS = {'NVIDIA H100 80GB HBM3': 494e12, 'NVIDIA H200': 494e12, 'TPU v4': 275e12,
               'TPU v5 lite': 197e12}


def _config(batch_size, steps_per_call):
  temporal = _POSE_NET.value == 'temporal'
  config = config_lib.load(os.path.join(os.path.dirname(configs.__file__),
                                        'temporal.py' if temporal else 'lifting.py'))
  config.batch_size = batch_size
  config.steps_per_call = steps_per_call
  config.model.pose_net = _POSE_NET.value
  config.model.window = _WINDOW.value
  if _HIDDEN.value:
    config.model.hidden = _HIDDEN.value
  return config


def _data(n, sharded):
  """Random normalised poses (and sequence bounds for the temporal net) on the devices."""
  rng = np.random.default_rng(0)
  data = {'pose_2d': rng.standard_normal((n, 16, 2), np.float32),
          'pose_3d': rng.standard_normal((n, 16, 3), np.float32)}
  if _POSE_NET.value == 'temporal':
    first = np.arange(n, dtype=np.int32) // SEQUENCE_ROWS * SEQUENCE_ROWS
    data['sequence_bounds'] = np.stack([first, np.minimum(first + SEQUENCE_ROWS, n) - 1], 1)
  return {k: jax.device_put(v, sharded) for k, v in data.items()}


def main(argv):
  del argv
  mesh = parallel.make_data_mesh()
  sharded = parallel.batch_sharding(mesh)
  replicated = parallel.replicated(mesh)
  n = _NUM_POSES.value - _NUM_POSES.value % jax.device_count()
  data = _data(n, sharded)
  device = jax.devices()[0]
  for batch_size in map(int, _BATCH_SIZES.value):
    steps_per_epoch = n // batch_size
    steps = max(1, min(_SAMPLES_PER_CALL.value // batch_size, steps_per_epoch))
    config = _config(batch_size, steps)
    model = factory.create_model(config)
    tx = optim.create_optimizer(config, steps_per_epoch)
    state = jax.device_put(
        train.create_train_state(config, model, tx, jax.random.PRNGKey(0)), replicated)
    beta_fn = schedules.beta_schedule('constant', 1.0, steps_per_epoch)
    (step,) = train.make_group_steps(model, tx, config, beta_fn)  # pose-only: one 'sum' group
    chunk = batches.make_train_chunk(step, step.keywords['collection'].empty, batch_size,
                                     sharded, sequences.config_window_offsets(config))
    perm = jax.device_put(jnp.arange(n, dtype=jnp.int32), replicated)
    # XLA's cost analysis counts a loop body once: take one step's FLOPs.
    cost = chunk.lower(state, data, perm, 0, 1).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops_per_call = float(cost.get('flops', 0.0)) * steps if cost else 0.0
    state, _, _ = chunk(state, data, perm, 0, steps)  # warm-up
    jax.block_until_ready(state)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < _SECONDS.value:
      state, _, _ = chunk(state, data, perm, 0, steps)
      jax.block_until_ready(state)  # else dispatch runs ahead and the loop overshoots
      calls += 1
    seconds = time.perf_counter() - start
    samples_per_s = calls * steps * batch_size / seconds
    flops_per_s = flops_per_call * calls / seconds
    peak = _PEAK_FLOPS.get(device.device_kind)
    record = {
        'benchmark': 'lifting_train_jax', 'device': device.device_kind,
        'num_devices': jax.device_count(), 'pose_net': _POSE_NET.value,
        'window': config.model.window if _POSE_NET.value == 'temporal' else None,
        'hidden': (config.model.graph_hidden if _POSE_NET.value == 'graph'
                   else config.model.hidden), 'batch_size': batch_size,
        'samples_per_s': round(samples_per_s, 1),
        'epoch_seconds_estimated': round(n / samples_per_s, 2),
        'steps_per_call': steps,
        'achieved_gflops_per_s': round(flops_per_s / 1e9, 1),
        'peak_fraction': round(flops_per_s / peak, 4) if peak else None,
    }
    if _FULL_EPOCH.value:
      calls_per_epoch = steps_per_epoch // steps
      jax.block_until_ready(state)
      start = time.perf_counter()
      for call in range(calls_per_epoch):
        state, _, _ = chunk(state, data, perm, call * steps, steps)
      jax.block_until_ready(state)
      record['epoch_seconds_measured'] = round(time.perf_counter() - start, 2)
      record['epoch_poses'] = calls_per_epoch * steps * batch_size
    if _TRACE_DIR.value:
      record['trace_dir'] = os.path.join(_TRACE_DIR.value, f'batch_{batch_size}')
      with jax.profiler.trace(record['trace_dir']):
        state, _, _ = chunk(state, data, perm, 0, steps)
        jax.block_until_ready(state)
    print(json.dumps(record), flush=True)


if __name__ == '__main__':
  app.run(main)
