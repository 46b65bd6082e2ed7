"""Speed of the image input pipeline: images/s of `input_pipeline.image_batches`.

Iterates training epochs (train=True, with and without augmentation) to NumPy
on this machine, as a training loop would, for each image size. The first batch
of each configuration (pipeline start-up and filling the shuffle buffer) is
timed separately and left out of the rate. Prints JSON lines. Builds the
synthetic dataset if it is not built yet.

  python -m benchmarks.input_pipeline --dataset=h36m_synthetic/default --data_dir=data \\
      --image_size=64,128,256 --batch_size=128 --seconds=20
"""

import json
import os
import time

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from hpe_jax import augment
from hpe_jax import input_pipeline

_DATASET = flags.DEFINE_string('dataset', input_pipeline.SYNTHETIC_DEFAULT, 'TFDS dataset/config.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_IMAGE_SIZES = flags.DEFINE_list('image_size', ['64', '128', '256'], 'Model input sides, px.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Batch size.')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measurement time per configuration.')


def _measure(builder, stats, image_size, augment_config):
  """Images/s over about `--seconds` of training batches, epoch after epoch."""
  batch_size = _BATCH_SIZE.value
  epoch, images, first_batch_s, start = 0, 0, None, time.perf_counter()
  while True:
    ds = input_pipeline.image_batches(
        builder, 'train', batch_size=batch_size, image_size=image_size, stats=stats,
        train=True, epoch=epoch, augment_config=augment_config)
    for _ in tfds.as_numpy(ds):
      if first_batch_s is None:
        first_batch_s = time.perf_counter() - start
        start = time.perf_counter()
      else:
        images += batch_size
      if time.perf_counter() - start >= _SECONDS.value:
        seconds = time.perf_counter() - start
        return {'images_per_s': round(images / seconds, 1), 'images': images,
                'seconds': round(seconds, 2), 'epochs_started': epoch + 1,
                'first_batch_s': round(first_batch_s, 2)}
    epoch += 1


def main(argv):
  del argv
  builder = input_pipeline.get_builder(_DATASET.value, _DATA_DIR.value)
  stats = input_pipeline.normalization_stats(builder)
  stored_size = builder.info.features['image'].shape[0]
  for image_size in map(int, _IMAGE_SIZES.value):
    for augment_config in (None, augment.default_config()):
      record = {
          'benchmark': 'input_pipeline', 'dataset': builder.info.full_name,
          'stored_size': stored_size, 'image_size': image_size,
          'batch_size': _BATCH_SIZE.value, 'augment': augment_config is not None,
          'cpu_count': os.cpu_count(),
          **_measure(builder, stats, image_size, augment_config),
      }
      print(json.dumps(record), flush=True)


if __name__ == '__main__':
  app.run(main)
