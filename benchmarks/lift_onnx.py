"""Inference speed of an exported lifter under onnxruntime alone (no JAX): poses/s per batch
size and one pose's latency, timed as `benchmarks.lift` times `Lifter.lift`.

  python -m hpe_jax.export --workdir=W --format=onnx --output=/tmp/lifter.onnx
  python -m benchmarks.lift_onnx --model=/tmp/lifter.onnx
"""

import json
import statistics
import time

from absl import app
from absl import flags
import numpy as np

_MODEL = flags.DEFINE_string('model', None, 'An ONNX file written by hpe_jax.export.')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '64', '4096'], 'Poses per call.')
_SECONDS = flags.DEFINE_float('seconds', 5.0, 'Measurement time per batch size.')
_LATENCY_CALLS = flags.DEFINE_integer('latency_calls', 2000, 'Timed calls of one pose.')
flags.mark_flag_as_required('model')


def main(argv):
  del argv
  import onnxruntime  # pylint: disable=g-import-not-at-top  # the export extra
  session = onnxruntime.InferenceSession(_MODEL.value, providers=['CPUExecutionProvider'])
  name = session.get_inputs()[0].name
  rng = np.random.default_rng(0)
  for batch in map(int, _BATCH_SIZES.value):
    x = (rng.normal(size=(batch, 17, 2)) * 100 + 500).astype(np.float32)  # px
    session.run(None, {name: x})
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < _SECONDS.value:
      session.run(None, {name: x})
      calls += 1
    seconds = time.perf_counter() - start
    print(json.dumps({'benchmark': 'lift_onnx', 'batch_size': batch,
                      'poses_per_s': round(calls * batch / seconds)}), flush=True)
  x = (rng.normal(size=(1, 17, 2)) * 100 + 500).astype(np.float32)
  times = []
  for _ in range(_LATENCY_CALLS.value):
    start = time.perf_counter()
    session.run(None, {name: x})
    times.append((time.perf_counter() - start) * 1e3)
  print(json.dumps({'benchmark': 'lift_onnx', 'latency': True,
                    'median_ms': round(statistics.median(times), 3),
                    'p90_ms': round(float(np.percentile(times, 90)), 3)}), flush=True)


if __name__ == '__main__':
  app.run(main)
