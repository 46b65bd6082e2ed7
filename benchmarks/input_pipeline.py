"""Speed of the image input: the host stream (grain: read, parse, decode) and the device half
(`image_stream.device_batch`: resize, augmentation, normalisation).

Host: images/s of the training stream `input_pipeline.train_image_batches` as
the trainer iterates it, per image size and decoding set-up (`--workers`: 0 is
one reading thread in this process, about one core; N is N grain worker
processes), and per host core. The host does the same work with augmentation on
or off: augmentation runs on the device. The first batch (start-up, worker
spawn) is timed separately.
Device: images/s of the jitted device half on a fixed batch on the default
device, with augmentation off and with the default augmentation on.
Prints JSON lines. Builds the synthetic dataset if it is not built yet.

  python -m benchmarks.input_pipeline --dataset=h36m_synthetic/default --data_dir=data \\
      --image_size=64,256 --workers=0,2 --batch_size=128 --seconds=20
"""

import json
import os
import time

from absl import app
from absl import flags
import jax

from hpe_jax import augment
from hpe_jax import image_stream
from hpe_jax import input_pipeline

_DATASET = flags.DEFINE_string('dataset', input_pipeline.SYNTHETIC_DEFAULT, 'TFDS dataset/config.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_IMAGE_SIZES = flags.DEFINE_list('image_size', ['64', '256'], 'Model input sides, px.')
_WORKERS = flags.DEFINE_list('workers', ['0', '2'], 'Decoding set-ups: 0 = one thread, '
                             'N = N grain worker processes.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Batch size.')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measurement time per configuration.')


def _host(builder, image_size, workers):
  """Images/s of the training stream over about `--seconds`."""
  batch_size = _BATCH_SIZE.value
  batches = input_pipeline.train_image_batches(builder, batch_size=batch_size,
                                               image_size=image_size, seed=0)
  stream = image_stream.iterate(batches, workers=workers, threads=1 if not workers else 2)
  start = time.perf_counter()
  next(stream)
  first_batch_s = time.perf_counter() - start
  images, start = 0, time.perf_counter()
  while time.perf_counter() - start < _SECONDS.value:
    next(stream)
    images += batch_size
  rate = images / (time.perf_counter() - start)
  return {'images_per_s': round(rate, 1), 'images_per_s_per_core': round(rate / max(workers, 1), 1),
          'first_batch_s': round(first_batch_s, 2), 'images': images}


def _device(builder, stats, image_size, augment_config):
  """Images/s of the jitted device half on one batch already on the device."""
  host = input_pipeline.train_image_batches(builder, batch_size=_BATCH_SIZE.value,
                                            image_size=image_size, seed=0)[0]
  batch = jax.device_put(host)
  prepare = jax.jit(lambda b, k: image_stream.device_batch(b, stats, image_size,
                                                           augment_config, k))
  key = jax.random.key(0)
  jax.block_until_ready(prepare(batch, key))
  calls, start = 0, time.perf_counter()
  while time.perf_counter() - start < _SECONDS.value / 2:
    out = prepare(batch, jax.random.fold_in(key, calls))
    calls += 1
  jax.block_until_ready(out)
  seconds = time.perf_counter() - start
  return {'images_per_s': round(calls * _BATCH_SIZE.value / seconds, 1), 'calls': calls}


def main(argv):
  del argv
  builder = input_pipeline.get_builder(_DATASET.value, _DATA_DIR.value)
  stats = input_pipeline.normalization_stats(builder)
  common = {'dataset': builder.info.full_name,
            'stored_size': builder.info.features['image'].shape[0],
            'batch_size': _BATCH_SIZE.value, 'cpu_count': os.cpu_count()}
  for image_size in map(int, _IMAGE_SIZES.value):
    for workers in map(int, _WORKERS.value):
      print(json.dumps({'benchmark': 'host_stream', **common, 'image_size': image_size,
                        'workers': workers, 'augment': 'on the device: same host work',
                        **_host(builder, image_size, workers)}), flush=True)
    for augment_config in (None, augment.default_config()):
      print(json.dumps({'benchmark': 'device_half', **common, 'image_size': image_size,
                        'device': jax.devices()[0].device_kind,
                        'augment': augment_config is not None,
                        **_device(builder, stats, image_size, augment_config)}), flush=True)


if __name__ == '__main__':
  app.run(main)
