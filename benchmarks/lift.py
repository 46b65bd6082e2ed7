"""Inference speed of a trained lifter: poses/s of `Lifter.lift` per batch size, one pose's latency.

Calls `hpe_jax.load_lifter(WORKDIR).lift(keypoints_px)` (posterior mean, no hypotheses) as a
user does, host NumPy in and out, on whatever devices JAX sees (the lifter runs on the
default one), or with --engine=onnx|onnx_int8 under onnxruntime (`load_lifter`'s engines).
Per batch size: one untimed call (compilation), then calls for --seconds; poses/s = poses
lifted / wall time. Latency: the median (and 90th percentile) wall time of --latency_calls
calls of one pose after a warm-up. Keypoints are random poses around the
workdir's 2D normalisation mean (px; for a lifter for any camera, its normalised image
plane's mean seen by a 1000 px camera, whose intrinsics each call passes); the numbers do
not depend on them, and each call pays the checks a user's does (`layout_check`). Targets (2-core
CPU, full-size model of configs/lifting.py): >= 100k poses/s at batch 4096, < 2 ms for
one pose. Prints JSON lines: one per batch size, one for the latency, then a summary (with
the 1-minute load average before and after: other processes on a shared machine slow it).

  python -m benchmarks.lift --workdir=workdirs/synergy/2d_to_3d [--batch_sizes=1,64,4096]
      [--engine=onnx_int8]
"""

import json
import os
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

import hpe_jax
from hpe_jax.inference import lifter as lifter_lib

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained workdir with a 2D->3D pair.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'best', "'best', 'last' or a step number.")
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '64', '4096'], 'Poses per lift call.')
_SECONDS = flags.DEFINE_float('seconds', 5.0, 'Measurement time per batch size.')
_LATENCY_CALLS = flags.DEFINE_integer('latency_calls', 2000, 'Timed calls of one pose.')
_ENGINE = flags.DEFINE_enum('engine', 'jax', lifter_lib.ENGINES,
                            "`load_lifter`'s engine: what computes the poses.")
flags.mark_flag_as_required('workdir')

TARGET_POSES_PER_S = 100_000  # at batch 4096
TARGET_LATENCY_MS = 2.0


CAMERA = {'focal_length': (1000.0, 1000.0), 'center': (500.0, 500.0)}  # px, any-camera lifters


def _keypoints(lifter, n, seed=0):
  """(n, 17, 2) px and the lift's camera arguments: the 2D mean pose with 2% of its spread
  as noise, pelvis between the hips."""
  stats = lifter.stats
  rng = np.random.default_rng(seed)
  joints = stats['pose_2d_mean'] + 0.02 * stats['pose_2d_std'] * rng.standard_normal((n, 16, 2))
  pelvis = 0.5 * (joints[:, 0] + joints[:, 3])  # RHip, LHip (joints 1 and 4 of 17)
  keypoints = np.concatenate([pelvis[:, None], joints], axis=1)
  if not lifter.any_camera:
    return keypoints.astype(np.float32), {}
  plane_to_px = keypoints * CAMERA['focal_length'][0] + np.asarray(CAMERA['center'])
  return plane_to_px.astype(np.float32), CAMERA


def _throughput(lifter, batch_size, seconds):
  keypoints, camera = _keypoints(lifter, batch_size)
  lifter.lift(keypoints, **camera)  # compiles this batch size
  calls, start = 0, time.perf_counter()
  while True:
    lifter.lift(keypoints, **camera)
    calls += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
      break
  return {'benchmark': 'lift', 'batch_size': batch_size, 'calls': calls,
          'seconds': round(elapsed, 3), 'poses_per_s': round(calls * batch_size / elapsed),
          'ms_per_call': round(1e3 * elapsed / calls, 3)}


def _latency(lifter, calls):
  keypoints, camera = _keypoints(lifter, 1, seed=1)
  for _ in range(50):
    lifter.lift(keypoints, **camera)
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    lifter.lift(keypoints, **camera)
    times.append(time.perf_counter() - start)
  times_ms = np.asarray(times) * 1e3
  return {'benchmark': 'lift', 'latency': True, 'calls': calls,
          'median_ms': round(float(statistics.median(times_ms)), 3),
          'p90_ms': round(float(np.percentile(times_ms, 90)), 3),
          'min_ms': round(float(times_ms.min()), 3)}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  load_before = os.getloadavg()[0]
  lifter = hpe_jax.load_lifter(_WORKDIR.value, _CHECKPOINT.value, engine=_ENGINE.value)
  model = lifter.config.model
  width = model.graph_hidden if model.pose_net == 'graph' else model.hidden
  setup = {'workdir': _WORKDIR.value, 'step': lifter.step, 'pose_net': model.pose_net,
           'width': width, 'num_blocks': model.num_blocks, 'latent_dim': model.latent_dim,
           'flip_test': bool(lifter.config.flip_test), 'engine': lifter.engine,
           'backend': jax.default_backend(),
           'devices': [d.device_kind for d in jax.devices()]}
  rates = {}
  for batch_size in [int(b) for b in _BATCH_SIZES.value]:
    record = _throughput(lifter, batch_size, _SECONDS.value)
    rates[batch_size] = record['poses_per_s']
    print(json.dumps(record), flush=True)
  latency = _latency(lifter, _LATENCY_CALLS.value)
  print(json.dumps(latency), flush=True)
  largest = max(rates)
  print(json.dumps({
      'benchmark': 'lift', 'summary': True, **setup,
      'poses_per_s': {str(b): r for b, r in rates.items()},
      'latency_median_ms': latency['median_ms'],
      'load_average': [round(load_before, 2), round(os.getloadavg()[0], 2)],
      'target_poses_per_s': TARGET_POSES_PER_S, 'target_latency_ms': TARGET_LATENCY_MS,
      'meets_throughput_target': bool(rates[largest] >= TARGET_POSES_PER_S),
      'meets_latency_target': bool(latency['median_ms'] < TARGET_LATENCY_MS)}), flush=True)


if __name__ == '__main__':
  app.run(main)
