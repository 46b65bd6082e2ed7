"""Devices and hosts: multi-host start-up, the data mesh, global arrays, equal-row padding,
and keeping a batch ahead on the devices.

Programs are written for the global batch and partitioned by `jit` with
`NamedSharding` over one `data` axis, so the same code runs on one CPU, several
GPUs or a multi-host TPU slice.
"""

import collections
import os

import jax
from jax.experimental import multihost_utils
import numpy as np


def maybe_initialize_distributed():
  """Joins a multi-host job when the environment describes one (TPU VMs, SLURM, or explicit
  JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)."""
  explicit = os.environ.get('JAX_COORDINATOR_ADDRESS')
  tpu_pod = os.environ.get('TPU_WORKER_HOSTNAMES', '').count(',') > 0
  slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  if explicit:
    jax.distributed.initialize(
        coordinator_address=explicit,
        num_processes=int(os.environ['JAX_NUM_PROCESSES']),
        process_id=int(os.environ['JAX_PROCESS_ID']))
  elif tpu_pod or slurm:
    jax.distributed.initialize()


def enable_compilation_cache():
  """Keeps compiled XLA programs on disk (JAX's persistent cache), so a resumed run, an
  `evaluate` or a rerun of a config starts without compiling again: on 2 CPU cores the
  lifting model's first step came 5 s sooner. The directory is $JAX_COMPILATION_CACHE_DIR
  when set, else ~/.cache/hpe_jax/xla."""
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    jax.config.update('jax_compilation_cache_dir',
                      os.path.join(os.path.expanduser('~'), '.cache', 'hpe_jax', 'xla'))


def make_data_mesh(devices=None):
  """A 1D mesh over all devices (or `devices`) with one `data` axis, sharded by `jit`."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def batch_sharding(mesh):
  """Rows split over the `data` axis."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))


def replicated(mesh):
  """The same value on every device."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def global_array(local, sharding):
  """A global array from this process's rows (identical row counts on every process)."""
  global_shape = (local.shape[0] * jax.process_count(),) + local.shape[1:]
  return jax.make_array_from_process_local_data(sharding, local, global_shape)


def equal_local_rows(n_local, multiple, pad):
  """Rows every process keeps (pad=False: the minimum, rounded down to `multiple`) or pads to
  (pad=True: the maximum, rounded up)."""
  counts = (multihost_utils.process_allgather(np.array(n_local)) if jax.process_count() > 1
            else np.array([n_local]))
  n = int(counts.max() if pad else counts.min())
  return (-(-n // multiple) * multiple) if pad else (n // multiple) * multiple


def pad_rows(arrays, rows):
  """Zero rows appended to every array of a dict (or one array) up to `rows`; padding rows
  of evaluation data carry valid=False, so they never count."""
  if isinstance(arrays, dict):
    return {k: pad_rows(v, rows) for k, v in arrays.items()}
  arrays = np.asarray(arrays)
  return np.concatenate([arrays, np.zeros((rows - len(arrays),) + arrays.shape[1:],
                                          arrays.dtype)])


def device_batches(local_batches, sharding):
  """Global device arrays from an iterator of this process's batches (dicts of NumPy arrays),
  kept one batch ahead so the host-to-device copy overlaps the running step."""
  ahead = collections.deque()
  for local in local_batches:
    ahead.append({k: global_array(v, sharding) for k, v in local.items()})
    if len(ahead) == 2:
      yield ahead.popleft()
  yield from ahead


# jax.monitoring's event of one XLA compilation, with its duration in seconds.
COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'


class CompileCounter:
  """Counts XLA compilations and sums their seconds between `start()` and `stop()`
  (jax.monitoring): recompiles after warm-up, and the warm-up of a progress report."""

  def __init__(self):
    self.count = 0
    self.seconds = 0.0
    self.active = False

  def _listener(self, event, duration_secs, **kwargs):
    del kwargs
    if event == COMPILE_EVENT:
      self.count += 1
      self.seconds += duration_secs

  def start(self):
    if not self.active:
      jax.monitoring.register_event_duration_secs_listener(self._listener)
      self.active = True

  def stop(self):
    if self.active:
      jax.monitoring.unregister_event_duration_listener(self._listener)
      self.active = False
