"""Training speed of the cross-modal VAE: images/s of each pair's jitted train step.

Times the real train step of hpe_jax.train (the step of each pair group from
`train.make_group_steps`, jitted with the state donated, as train.py jits it for
image configs) on a fixed batch already on the devices: random uint8 crops and
random normalised poses, sharded over the `data` axis of `parallel.make_data_mesh()`.
It measures the step, not the input pipeline (see benchmarks/input_pipeline.py for
that). For each (pair, batch size): compile time, a warm-up call, then a timed
loop of many steps with one block_until_ready at its end. FLOPs per step come
from XLA's cost analysis of the compiled step (summed over the devices; the
peak, and the fraction of it achieved, for known GPUs and TPUs only). Prints JSON lines; for
pose-only pairs `images_per_s` counts poses.

  python -m benchmarks.crossmodal --pairs=rgb-3d,rgb-rgb --image_size=256 \\
      --batch_sizes=32,128 --seconds=20 [--dtype=float32|bfloat16|auto] \\
      [--config=configs/crossmodal.py] [--all_pairs_sum]

Pairs are named as `modalities.Pair.name` gives them, with '-' or '->' ('rgb-3d',
'2d-3d', 'rgb->rgb'); `--pairs=all` (the default) takes every pair of the
config, `--pairs=` none (with --all_pairs_sum: only the summed step).
--all_pairs_sum adds the step of the 'sum' schedule: every pair's loss in one step.
"""

import json
import math
import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
from ml_collections import config_flags

from hpe_jax import modalities
from hpe_jax import optim
from hpe_jax import parallel
from hpe_jax import schedules
from hpe_jax import train
from hpe_jax.models import factory

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'configs',
                               'crossmodal.py')
config_flags.DEFINE_config_file('config', _DEFAULT_CONFIG,
                                'Cross-modal config file (and preset, e.g. :quick).',
                                lock_config=False)
_PAIRS = flags.DEFINE_list('pairs', ['all'],
                           "Pairs to time ('rgb-3d,rgb-rgb', ...); 'all': every pair of the "
                           'config; empty: none.')
_ALL_PAIRS_SUM = flags.DEFINE_bool('all_pairs_sum', False,
                                   "Also time one step of every pair summed ('sum' schedule).")
_IMAGE_SIZE = flags.DEFINE_integer('image_size', None,
                                   "Model input side, px (default: the config's).")
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['32', '128'],
                                 'Global batch sizes (each divisible by the device count).')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measurement time per (pair, batch size).')
_DTYPE = flags.DEFINE_enum('dtype', None, ['float32', 'bfloat16', 'auto'],
                           "Compute dtype (default: the config's model.dtype).")

# Dense peak FLOP/s per device by compute dtype. f32 on GPUs: TF32 tensor cores (JAX's
# default matmul/conv precision there); on TPUs f32 matmuls run in bf16 passes by default.
_PEAK_FLOPS = {  # device_kind: (bfloat16, float32)
    'NVIDIA H100 80GB HBM3': (989e12, 494e12),
    'NVIDIA H100 PCIe': (756e12, 378e12),
    'NVIDIA H200': (989e12, 494e12),
    'NVIDIA A100-SXM4-80GB': (312e12, 156e12),
    'NVIDIA A100-SXM4-40GB': (312e12, 156e12),
    'NVIDIA A100-PCIE-40GB': (312e12, 156e12),
    'NVIDIA A100 80GB PCIe': (312e12, 156e12),
    'TPU v4': (275e12, 275e12),
    'TPU v5 lite': (197e12, 197e12),
    'TPU v5': (459e12, 459e12),
    'TPU v6 lite': (918e12, 918e12),
}
_SHORT_TO_MODALITY = {short: modality for modality, short in modalities.SHORT_NAMES.items()}


def parse_pair(name, config):
  """'rgb-3d' / 'rgb->3d' -> that Pair of `modalities.pairs(config)` (as train.py has it)."""
  pairs = modalities.pairs(config)
  known = [p.name for p in pairs]
  parts = name.strip().replace('->', '-').split('-')
  wanted = [_SHORT_TO_MODALITY.get(p.strip().lower()) for p in parts]
  if len(parts) != 2 or None in wanted:
    raise app.UsageError(
        f'Unknown pair {name!r}: write source-target with modalities '
        f'{sorted(_SHORT_TO_MODALITY)}, e.g. rgb-3d. The config has: {", ".join(known)}.')
  for pair in pairs:
    if (pair.source, pair.target) == tuple(wanted):
      return pair
  raise app.UsageError(f'Pair {name!r} is not in the config; it has: {", ".join(known)}.')


def _global_array(value, sharding):
  """A global array from the same host value on every process (works multi-host)."""
  return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def _random_batch(config, batch_size, sharding, seed=0):
  """A fixed batch of every modality of the config: uint8 crops, normalised poses."""
  rng = np.random.default_rng(seed)
  batch = {}
  for modality in modalities.modalities(config):
    shape = (batch_size,) + modalities.modality_shape(config, modality)
    if modality == modalities.IMAGE:
      value = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
      value = rng.standard_normal(shape, dtype=np.float32)
    batch[modality] = _global_array(value, sharding)
  return batch


def _run_steps(step, state, batch, num_steps):
  """`num_steps` dispatched back to back, one block at the end; (state, seconds)."""
  start = time.perf_counter()
  for _ in range(num_steps):
    state, _, _ = step(state, batch)
  jax.block_until_ready(state)
  return state, time.perf_counter() - start


def _flops_per_step(compiled):
  """FLOPs of one step over all devices from XLA's cost analysis, or None if unavailable.

  The compiled program is one device's partition, so its count is multiplied by the
  devices: work every device repeats (the optimiser update of the replicated
  parameters) counts once per device, as it is executed.
  """
  try:
    cost = compiled.cost_analysis()
  except Exception as e:  # pylint: disable=broad-except  (not every backend implements it)
    logging.warning('No cost analysis: %s', e)
    return None
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  flops = float(cost.get('flops', 0.0)) if cost else 0.0
  return flops * jax.device_count() if flops > 0 else None


def jitted_group_step(config, model, group, batch_size, mesh):
  """(step, replicated initial state, fixed random batch) of the pairs `group` at
  `batch_size`, as train.py builds them: one jit per pair group, the state donated.

  `config.pair_schedule` must be the schedule that has `group` among its groups.
  """
  config = config.copy_and_resolve_references()
  config.batch_size = batch_size
  steps_per_epoch = 1000  # only shapes the learning-rate schedule
  tx = optim.create_optimizer(config, steps_per_epoch)
  state = jax.device_put(
      train.create_train_state(config, model, tx, jax.random.PRNGKey(config.seed)),
      parallel.replicated(mesh))
  num_steps = steps_per_epoch * config.num_epochs
  beta_fn = schedules.beta_schedule(
      config.beta_schedule.kind, 1.0, num_steps,
      warmup_steps=int(config.beta_schedule.warmup_epochs * steps_per_epoch),
      num_cycles=config.beta_schedule.num_cycles, ratio=config.beta_schedule.ratio)
  batch = _random_batch(config, batch_size, parallel.batch_sharding(mesh))
  group_steps = train.make_group_steps(model, tx, config, beta_fn)
  step = jax.jit(group_steps[modalities.groups(config).index(group)], donate_argnums=0)
  return step, state, batch


def measure(config, label, group, batch_size, seconds, mesh):
  """One record: the train step of the pairs `group` (named `label`) at `batch_size`."""
  step, state, batch = jitted_group_step(config, factory.create_model(config), group,
                                         batch_size, mesh)

  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()  # `step` reuses this executable
  compile_s = time.perf_counter() - start
  flops_per_step = _flops_per_step(compiled)

  counter = parallel.CompileCounter()
  counter.start()
  state, first_step_s = _run_steps(step, state, batch, 1)  # warm-up
  # A short calibration fixes the length of the timed loop (no per-step sync in it).
  calibration_steps, elapsed = 1, 0.0
  while True:
    state, elapsed = _run_steps(step, state, batch, calibration_steps)
    if elapsed >= min(1.0, 0.1 * seconds) or calibration_steps >= 64:
      break
    calibration_steps *= 2
  timed_steps = max(1, math.ceil(seconds * calibration_steps / elapsed))
  state, timed_s = _run_steps(step, state, batch, timed_steps)
  counter.stop()
  if counter.count:
    logging.warning('%d compilations after the first one: the rate includes them.',
                    counter.count)

  device = jax.devices()[0]
  dtype = factory.compute_dtype(config)
  peak = None
  if device.platform in ('gpu', 'tpu') and device.device_kind in _PEAK_FLOPS:
    bf16_peak, f32_peak = _PEAK_FLOPS[device.device_kind]
    peak = (bf16_peak if dtype == np.dtype('bfloat16') else f32_peak) * jax.device_count()
  flops_per_s = flops_per_step * timed_steps / timed_s if flops_per_step else None
  return {
      'benchmark': 'crossmodal_train_step',
      'pair': label,
      'pairs': [p.name for p in group],
      'device': device.device_kind, 'num_devices': jax.device_count(),
      'jax_version': jax.__version__, 'dtype': dtype.name,
      'image_size': config.image_size, 'batch_size': batch_size,
      'compile_s': round(compile_s, 2), 'first_step_s': round(first_step_s, 3),
      'steps': timed_steps, 'seconds': round(timed_s, 2),
      'images_per_s': round(batch_size * timed_steps / timed_s, 1),
      'ms_per_step': round(1e3 * timed_s / timed_steps, 2),
      'gflops_per_step': round(flops_per_step / 1e9, 2) if flops_per_step else None,
      'achieved_gflops_per_s': round(flops_per_s / 1e9, 1) if flops_per_s else None,
      'peak_gflops_per_s': round(peak / 1e9) if peak else None,
      'peak_fraction': round(flops_per_s / peak, 4) if peak and flops_per_s else None,
      'recompiles': counter.count,
  }


def _with_schedule(config, schedule):
  config = config.copy_and_resolve_references()
  config.pair_schedule = schedule
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  parallel.maybe_initialize_distributed()
  config = flags.FLAGS.config
  if _IMAGE_SIZE.value is not None:
    config.image_size = _IMAGE_SIZE.value
  if _DTYPE.value is not None:
    config.model.dtype = _DTYPE.value
  names = [n for n in _PAIRS.value if n.strip()]
  pairs = (modalities.pairs(config) if names == ['all']
           else [parse_pair(n, config) for n in names])
  # The groups train.py jits: one pair each (round robin, per epoch) or all of them ('sum'),
  # each with the config whose schedule has it.
  round_robin, summed = _with_schedule(config, 'round_robin'), _with_schedule(config, 'sum')
  per_pair = {g[0]: g for g in modalities.groups(round_robin)}
  groups = [(p.name, per_pair[p], round_robin) for p in pairs]
  if _ALL_PAIRS_SUM.value:
    groups += [('sum', g, summed) for g in modalities.groups(summed)]
  if not groups:
    raise app.UsageError('Nothing to time: give --pairs or --all_pairs_sum.')
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  bad = [b for b in batch_sizes if b <= 0 or b % jax.device_count()]
  if bad:
    raise app.UsageError(f'Batch sizes {bad} do not divide by the {jax.device_count()} '
                         'devices.')
  mesh = parallel.make_data_mesh()
  for label, group, group_config in groups:
    for batch_size in batch_sizes:
      record = measure(group_config, label, group, batch_size, _SECONDS.value, mesh)
      if jax.process_index() == 0:
        print(json.dumps(record), flush=True)


if __name__ == '__main__':
  app.run(main)
