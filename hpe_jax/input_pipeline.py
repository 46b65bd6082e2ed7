"""Reads the `h36m` / `h36m_synthetic` TFDS datasets for training and evaluation.

Pose data is small: a split's poses come back as NumPy arrays, to be put on the
devices whole. Images stream through `tf.data` (`image_batches`), decoded,
augmented and batched in parallel with the training step. In a multi-host job
every process reads only its own part (`tfds.split_for_jax_process`).
"""

import os

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from hpe_jax import augment
from hpe_jax import config_lib
from hpe_jax import normalization
from hpe_jax import parallel
from tfds_h36m import builders
from tfds_h36m import skeleton

POSE_KEYS = ('pose_2d', 'pose_3d', 'root_3d', 'action', 'subaction', 'frame')
SYNTHETIC_DEFAULT = 'h36m_synthetic/default'
# Training examples are shuffled in a buffer of this many still-encoded examples
# (JPEG bytes and poses, tens of KB each at 256 px), read from files in a shuffled
# order; TFDS already spread examples over the files at random when building.
SHUFFLE_BUFFER = 4096


def _known_configs(builder_name, data_dir):
  """Config names of a builder: the registered ones and any built in `data_dir`."""
  names = {c.name for c in tfds.builder_cls(builder_name).BUILDER_CONFIGS}
  folder = os.path.join(os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR),
                        builder_name)
  if os.path.isdir(folder):
    names |= {n for n in os.listdir(folder) if not n.startswith('.')}
  return sorted(names)


def check_dataset(name, data_dir=None):
  """Raises ConfigError (one line, nearest names) unless `name` is an h36m or h36m_synthetic
  config: 'h36m/poses', 'h36m_synthetic/default', or one you built ('h36m/poses_cpn'); and
  FileNotFoundError for a Human3.6M config that is not built in `data_dir`."""
  builder_name, _, rest = name.partition('/')
  config_name = rest.split(':')[0]
  known = {b: _known_configs(b, data_dir) for b in builders.BUILDER_NAMES}
  full = [f'{b}/{c}' for b, cs in known.items() for c in cs]
  if builder_name not in known or not config_name or config_name not in known[builder_name]:
    raise config_lib.ConfigError(
        f'Unknown dataset {name!r}{config_lib.near_matches(name, full)}; known: '
        f'{", ".join(full)} (build your own with python -m tfds_h36m.prepare).')
  if builder_name != 'h36m_synthetic':  # a synthetic one is built on first use
    get_builder(name, data_dir, build_synthetic=False)  # raises naming the build command


def get_builder(name, data_dir=None, *, build_synthetic=True):
  """The dataset builder; builds a synthetic dataset that is not built yet.

  A real Human3.6M dataset must be built by the user beforehand (it needs the
  manual download), so a missing one is an error naming the build command.
  """
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    if name.startswith('h36m_synthetic') and build_synthetic:
      logging.info('Building %s in %s (first time only, no download).', name, builder.data_dir)
      tfds.disable_progress_bar()  # the builder logs its own progress (examples/s, ETA)
      builder.download_and_prepare()
    else:
      raise FileNotFoundError(
          f'Dataset {name} is not built in {builder.data_dir}. Build it from your Human3.6M '
          f'copy first: python -m tfds_h36m.prepare --dataset={name} '
          f'--manual_dir=/path/to/h36m --data_dir={data_dir or "~/tensorflow_datasets"}')
  return builder


def normalization_stats(builder):
  """Per-coordinate mean/std of the training split, stored at build time.

  Returns float32 arrays 'pose_3d_mean'/'pose_3d_std' (16, 3) in mm
  (root-relative) and 'pose_2d_mean'/'pose_2d_std' (16, 2) in px, for the 16
  non-root joints.
  """
  stats = builder.info.metadata.get('statistics')
  if stats is None:
    raise ValueError(f'{builder.info.full_name} in {builder.data_dir} has no stored '
                     'normalisation statistics; rebuild it with this version of tfds_h36m.')
  return {k: np.asarray(v, np.float32) for k, v in stats.items() if k != 'num_examples'}


def _process_split(split, process_index, process_count):
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  if process_count == 1:
    return split
  return tfds.split_for_jax_process(split, process_index=process_index,
                                    process_count=process_count)


def _camera_index(camera_id):
  """Position of a camera id string in `skeleton.CAMERA_IDS` (int64 tensor)."""
  return tf.argmax(tf.cast(tf.equal(tf.constant(skeleton.CAMERA_IDS), camera_id), tf.int32))


def load_pose_arrays(builder, split, *, process_index=None, process_count=None,
                     batch_size=8192):
  """All poses of this process's part of `split` as NumPy arrays, in file order.

  Keys: pose_2d (N, 17, 2) px, pose_3d (N, 17, 3) root-relative mm, root_3d
  (N, 3) mm, action, subaction, frame (N,) int32, and camera_index (N,) int32
  (position of the camera in the standard order). Images are never decoded.
  """
  decoders = {'image': tfds.decode.SkipDecoding()} if 'image' in builder.info.features else None
  ds = builder.as_dataset(split=_process_split(split, process_index, process_count),
                          shuffle_files=False, decoders=decoders)

  def select(ex):
    out = {k: ex[k] for k in POSE_KEYS}
    out['camera_index'] = _camera_index(ex['camera_id'])
    return out

  ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
  parts = list(tfds.as_numpy(ds.prefetch(2)))
  if not parts:
    raise ValueError(f'Split {split!r} of {builder.info.full_name} is empty for this process.')
  arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  for k in ('action', 'subaction', 'frame', 'camera_index'):
    arrays[k] = arrays[k].astype(np.int32)
  return arrays


def _process_sizes(builder, split, process_count):
  """Number of examples of `split` each process reads."""
  process_count = jax.process_count() if process_count is None else process_count
  return [builder.info.splits[_process_split(split, i, process_count)].num_examples
          for i in range(process_count)]


def batches_per_epoch(builder, split, batch_size, train, process_count=None):
  """Batches `image_batches` yields per process, the same on every process.

  Training drops the remainder (of the smallest process part); evaluation pads
  the last batches of every process up to the largest part, so all processes
  run the same number of steps.
  """
  sizes = _process_sizes(builder, split, process_count)
  if train:
    return min(sizes) // batch_size
  return -(-max(sizes) // batch_size)


def _jpeg_ratio(stored_size, image_size):
  """Largest JPEG DCT downscaling (1, 2, 4 or 8) that keeps >= image_size px.

  Decoding at 1/r size is faster than decoding whole and low-pass filters (the
  high DCT frequencies are dropped), so a 256 px crop becomes a 64 px input with
  little aliasing.
  """
  return max(r for r in (1, 2, 4, 8) if stored_size % r == 0 and stored_size // r >= image_size)


def _example_seeds(seed, epoch, process_index):
  """(file shuffle seed, example shuffle seed, augmentation key [2]) of one epoch."""
  state = np.random.SeedSequence([seed, epoch, process_index]).generate_state(4)
  return int(state[0]), int(state[1]), tf.constant(state[2:].astype(np.int64))


def image_batches(builder, split, *, batch_size, image_size, stats, train, seed=0, epoch=0,
                  start_batch=0, augment_config=None, process_index=None, process_count=None,
                  prefetch=2):
  """One epoch of this process's part of `split` as a `tf.data` pipeline of batches.

  Each element is a dict of `batch_size` (per process) rows:
    image: uint8 (B, image_size, image_size, 3), the crop resized (and augmented);
    pose_2d: float32 (B, 16, 2), full-image px of the 16 non-root joints, normalised
      with `stats` (from `normalization_stats`);
    pose_3d: float32 (B, 16, 3), root-relative mm, normalised likewise;
    pose_3d_mm: float32 (B, 17, 3), root-relative camera-frame mm;
    action, camera_index: int32 (B,) (camera_index: position in skeleton.CAMERA_IDS);
    valid: bool (B,), False on evaluation padding rows.
  Poses are those of the image after any flip.

  train=True: examples in an order that is a function of (seed, epoch, process)
  alone (seeded TFDS file shuffle, then a seeded shuffle buffer), augmented with
  `augment_config` (see `augment.default_config`; None: no augmentation) using a
  stateless seed per example from the same values and the example's position in
  the epoch; the remainder is dropped. The same arguments give identical batches,
  and `start_batch=k` gives exactly the batches from the k-th on (resuming
  mid-epoch: the skipped examples are read but not decoded).
  train=False: file order, no augmentation, and the last batch is padded with
  valid=False rows, so every batch has one shape and a jitted step never recompiles.

  JPEGs are decoded at the smallest DCT scale that keeps image_size px, then
  resized (or crop-jittered) by `augment.augment`, in parallel (AUTOTUNE) and
  in order.
  """
  if augment_config is not None and not train:
    raise ValueError('Evaluation batches are never augmented: pass augment_config=None.')
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  num_batches = batches_per_epoch(builder, split, batch_size, train, process_count)
  if not 0 <= start_batch <= num_batches:
    raise ValueError(f'start_batch={start_batch} is outside the epoch of {num_batches} batches.')
  process_split = _process_split(split, process_index, process_count)
  file_seed, shuffle_seed, augment_key = _example_seeds(seed, epoch, process_index)
  ds = builder.as_dataset(split=process_split, shuffle_files=train,
                          read_config=tfds.ReadConfig(shuffle_seed=file_seed),
                          decoders={'image': tfds.decode.SkipDecoding()})
  if train:
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed)
  ds = ds.enumerate().skip(start_batch * batch_size)

  stored_size = builder.info.features['image'].shape[0]
  ratio = _jpeg_ratio(stored_size, image_size)
  zeros = {k: 0.0 for k in augment.default_config().keys()}
  config = zeros if augment_config is None else augment_config
  tf_stats = {k: tf.constant(stats[k]) for k in normalization.STATS_KEYS}

  def prepare(index, ex):
    image = tf.io.decode_jpeg(ex['image'], channels=3, ratio=ratio)
    image.set_shape((stored_size // ratio, stored_size // ratio, 3))
    example = {'image': image, 'crop_box': ex['crop_box'], 'pose_2d': ex['pose_2d'],
               'pose_3d': ex['pose_3d']}
    example = augment.augment(example, tf.random.fold_in(augment_key, index), config, image_size)
    return {
        'image': example['image'],
        'pose_2d': normalization.normalize(example['pose_2d'], tf_stats, 'pose_2d'),
        'pose_3d': normalization.normalize(example['pose_3d'], tf_stats, 'pose_3d'),
        'pose_3d_mm': example['pose_3d'],
        'action': tf.cast(ex['action'], tf.int32),
        'camera_index': tf.cast(_camera_index(ex['camera_id']), tf.int32),
        'valid': tf.constant(True),
    }

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if not train:
    padding = num_batches * batch_size - _process_sizes(builder, split, process_count)[
        process_index]
    blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), ds.element_spec)
    ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(padding))
  ds = ds.batch(batch_size, drop_remainder=True).take(num_batches - start_batch)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(prefetch)


def log_dataset(config):
  if config.dataset.startswith('h36m_synthetic'):
    logging.info('Training on the synthetic stand-in %s: its numbers are not Human3.6M '
                 'numbers. Set --config.dataset=h36m/images (or h36m/poses) for your own '
                 'build.', config.dataset)


def eval_pose_arrays(arrays, stats, rows):
  """A split's poses (from `load_pose_arrays`) as the evaluator reads them, zero-padded to
  `rows` (padding rows have valid=False): normalised pose_2d, pose_3d, and pose_3d_mm,
  action, camera_index, valid."""
  n = len(arrays['pose_3d'])
  data = {m: normalization.normalize(arrays[m], stats, m) for m in ('pose_2d', 'pose_3d')}
  data.update(pose_3d_mm=arrays['pose_3d'], action=arrays['action'],
              camera_index=arrays['camera_index'], valid=np.ones(n, bool))
  return _float32(parallel.pad_rows(data, rows))


def _float32(data):
  return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}


def load_pose_data(config, builder, stats, mesh):
  """Normalised training and evaluation (`config.eval_split`) poses as global arrays sharded
  over the mesh's `data` axis.

  Training rows are cut to the same count on every process (a multiple of the local
  devices); evaluation rows are zero-padded (valid=False) to whole eval batches.
  """
  sharding = parallel.batch_sharding(mesh)
  arrays = load_pose_arrays(builder, 'train')
  keep = parallel.equal_local_rows(len(arrays['pose_3d']), jax.local_device_count(), pad=False)
  train = _float32({m: normalization.normalize(arrays[m][:keep], stats, m)
                    for m in ('pose_2d', 'pose_3d')})
  arrays = load_pose_arrays(builder, config.eval_split)
  per_process_batch = config.eval_batch_size // jax.process_count()
  rows = parallel.equal_local_rows(len(arrays['pose_3d']),
                                   np.lcm(per_process_batch, jax.local_device_count()), pad=True)
  evaluation = eval_pose_arrays(arrays, stats, rows)
  return ({k: parallel.global_array(v, sharding) for k, v in train.items()},
          {k: parallel.global_array(v, sharding) for k, v in evaluation.items()})
