"""Image examples for training and evaluation: grain over the dataset's ArrayRecord files.

The host only reads and decodes. Each process reads its own part of a split
(`tfds.split_for_jax_process`) through a grain `MapDataset`; JPEGs are decoded
(in grain's worker processes for training) at the smallest DCT scale that keeps
`image_size` px, and batches of uint8 crops with raw poses (px, mm) go to the
devices. There `device_batch` resizes, augments (`hpe_jax.augment`, in the
train step, keyed from the step's RNG) and normalises them.

Training reads one endless stream: the process's examples shuffled anew each
epoch by grain (seeded with the config's seed and the process index), so an
epoch of `steps_per_epoch` batches never drops the same examples. The stream's
iterator state goes into every checkpoint; a resumed run reads exactly the
batches an uninterrupted run would have read.
"""

import collections
import json
import os

from absl import flags
from absl import logging
import grain
import numpy as np
import simplejpeg

from hpe_jax import augment
from hpe_jax import normalization
from tfds_h36m import records

# Host batches prefetched per reading thread; a batch of 64 crops at 256 px is 12.6 MB.
_PREFETCH_BATCHES = 4


class NotArrayRecord(FileNotFoundError):
  """An image dataset built in TFRecord files (before ArrayRecord was the format): grain
  needs the random access of ArrayRecord files."""


def require_array_record(builder, name, data_dir):
  """Raises NotArrayRecord (one line, how to rebuild) unless the build is ArrayRecord."""
  if builder.info.file_format.value != 'array_record':
    raise NotArrayRecord(
        f'{name} in {builder.data_dir} is stored as {builder.info.file_format.value}; image '
        'training reads ArrayRecord with grain. Rebuild it: remove that folder, then run '
        f'python -m tfds_h36m.prepare --dataset={name} --data_dir={data_dir or "~/tensorflow_datasets"}'
        + ('' if name.startswith('h36m_synthetic') else ' --manual_dir=/path/to/h36m'))


def decoded_size(stored_size, image_size):
  """Side of a stored crop decoded at the largest JPEG DCT downscaling (1, 2, 4 or 8) that
  keeps at least image_size px: decoding at 1/r is faster than decoding whole and
  drops the high frequencies, so downsizing on the device aliases little."""
  ratio = max(r for r in (1, 2, 4, 8) if stored_size % r == 0 and stored_size // r >= image_size)
  return stored_size // ratio


class DecodeExample(grain.transforms.Map):
  """A serialised example -> the host half of a training example (uint8 crop, raw poses)."""

  def __init__(self, size):
    self.size = size

  def map(self, element):
    example = records.parse_image(element)
    # libjpeg-turbo with DCT scaling: 1.6-1.9x Pillow's decode here (356 against 563 us
    # for a 256 px crop, 190 against 353 us decoded to 64 px, on one core).
    pixels = simplejpeg.decode_jpeg(example.pop('image'), colorspace='RGB',
                                    min_height=self.size, min_width=self.size)
    if pixels.shape != (self.size, self.size, 3):
      raise ValueError(f'Decoded a crop of shape {pixels.shape}, expected {self.size} px.')
    return {'image': pixels, 'crop_box': example['crop_box'], 'pose_2d': example['pose_2d'],
            'pose_3d': example['pose_3d'], 'action': np.int32(example['action']),
            'camera_index': np.int32(example['camera_index']),
            'principal_x': np.float32(example['principal_x']), 'valid': np.bool_(True)}


def blank_example(size):
  """A padding row (valid=False) shaped like `DecodeExample`'s output."""
  return {'image': np.zeros((size, size, 3), np.uint8), 'crop_box': np.array([0, 0, 1], np.float32),
          'pose_2d': np.zeros((17, 2), np.float32), 'pose_3d': np.zeros((17, 3), np.float32),
          'action': np.int32(0), 'camera_index': np.int32(0), 'principal_x': np.float32(0),
          'valid': np.bool_(False)}


class _PaddedExamples(grain.transforms.Map):
  """Index -> the decoded example, or a blank one past the end (evaluation padding)."""

  def __init__(self, source, size):
    self.source, self.decode = source, DecodeExample(size)

  def map(self, element):
    if element < len(self.source):
      return self.decode.map(self.source[int(element)])
    return blank_example(self.decode.size)


def train_batches(source, *, batch_size, size, seed):
  """The endless training stream of one process as a MapDataset of batches: batch k is
  a pure function of (source, seed, k)."""
  return (grain.MapDataset.source(source).shuffle(seed=seed).repeat()
          .map(DecodeExample(size)).batch(batch_size, drop_remainder=True))


def eval_batches(source, *, batch_size, size, num_batches):
  """A split in the records' order as `num_batches` batches, padded with blank rows."""
  return (grain.MapDataset.range(num_batches * batch_size).map(_PaddedExamples(source, size))
          .batch(batch_size))


def num_workers(setting):
  """Worker processes for `config.input_workers`: -1 is one per host core but one, at most
  16, and none on a host of 2 cores or fewer (threads keep up there)."""
  if setting >= 0:
    return setting
  cores = os.cpu_count() or 1
  return 0 if cores <= 2 else min(16, cores - 1)


def iterate(batches, *, workers=0, threads=2):
  """An iterator over a MapDataset of batches: decoding in `workers` grain worker
  processes (0: `threads` threads of this process; the decoder releases the GIL)."""
  dataset = batches.to_iter_dataset(grain.ReadOptions(
      num_threads=threads, prefetch_buffer_size=_PREFETCH_BATCHES))
  if workers:
    if not flags.FLAGS.is_parsed():  # grain reads its absl flags (a notebook, a test)
      flags.FLAGS.mark_as_parsed()
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=workers, per_worker_buffer_size=_PREFETCH_BATCHES))
  return iter(dataset)


class TrainStream:
  """The training batches of one process, and their state after the last batch the train
  steps consumed, which checkpoints save.

  The iterator runs ahead of the steps (grain's prefetch, one batch waiting on the
  devices), so its own state would skip batches on resume: `batches` records the
  state after each batch it yields and `consume` moves to it when that batch is
  trained. The state is grain's iterator state over `dataset[offset:]`, with the
  absolute batch count; restored with another worker count (whose iterator state
  does not carry over) the stream restarts at that count. Orbax saves it through
  grain's checkpoint handler (`get_state`/`set_state`, JSON bytes).
  """

  def __init__(self, dataset, workers):
    self.dataset, self.workers = dataset, workers
    self.state = {'offset': 0, 'next_batch': 0, 'workers': workers, 'grain': None}
    self._pending = collections.deque()

  def batches(self):
    """Yields host batches from the current state on."""
    resume = self.state['workers'] == self.workers and self.state['grain'] is not None
    offset = self.state['offset'] if resume else self.state['next_batch']
    iterator = iterate(self.dataset[offset:], workers=self.workers)
    if resume:
      iterator.set_state(self.state['grain'])
    count = self.state['next_batch']
    for batch in iterator:
      count += 1
      self._pending.append(dict(offset=offset, next_batch=count, workers=self.workers,
                                grain=iterator.get_state()))
      yield batch

  def consume(self):
    """The oldest yielded batch was trained: its state is the one to save."""
    self.state = self._pending.popleft()

  def get_state(self):
    return json.dumps(self.state).encode()

  def set_state(self, state):
    self.state = json.loads(state.decode())
    self._pending.clear()

  def start_prefetch(self):
    """Called by grain's handler after a restore: iteration starts in `batches`."""


def device_batch(batch, stats, image_size, augment_config=None, key=None):
  """A host batch -> the model's batch, on the devices (traceable; jit it or call it in a
  jitted step): crops resized to image_size (and augmented with `augment_config` and
  `key`) as float32 [0, 255]; pose_2d, pose_3d normalised (16 joints), pose_3d_mm the
  (flipped) 17-joint root-relative mm; action, camera_index, principal_x, valid as they are."""
  batch = augment.augment_batch(batch, key, augment_config, image_size)
  return {'image': batch['image'],
          'pose_2d': normalization.normalize(batch['pose_2d'], stats, 'pose_2d'),
          'pose_3d': normalization.normalize(batch['pose_3d'], stats, 'pose_3d'),
          'pose_3d_mm': batch['pose_3d'], 'action': batch['action'],
          'camera_index': batch['camera_index'], 'principal_x': batch['principal_x'],
          'valid': batch['valid']}


def log_rate(num_images, seconds, input_seconds, epoch):
  logging.info('Epoch %d: %.0f images/s over the epoch; %.0f%% of its time waiting for the '
               'input pipeline.', epoch, num_images / max(seconds, 1e-9),
               100 * input_seconds / max(seconds, 1e-9))
