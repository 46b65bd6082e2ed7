"""Reads the `h36m` / `h36m_synthetic` TFDS datasets for training and evaluation.

Pose data is small: a split's poses come back as NumPy arrays, to be put on the
devices whole. Images stream through `tf.data`. In a multi-host job every
process reads only its own part (`tfds.split_for_jax_process`).
"""

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import tfds_h36m.builders  # pylint: disable=unused-import  # registers the builders
from tfds_h36m import skeleton

POSE_KEYS = ('pose_2d', 'pose_3d', 'root_3d', 'action', 'subaction', 'frame')
SYNTHETIC_DEFAULT = 'h36m_synthetic/default'


def get_builder(name, data_dir=None, *, build_synthetic=True):
  """The dataset builder; builds a synthetic dataset that is not built yet.

  A real Human3.6M dataset must be built by the user beforehand (it needs the
  manual download), so a missing one is an error naming the build command.
  """
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    if name.startswith('h36m_synthetic') and build_synthetic:
      logging.info('Building %s in %s (first time only, no download).', name, builder.data_dir)
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
  camera_ids = tf.constant(skeleton.CAMERA_IDS)

  def select(ex):
    out = {k: ex[k] for k in POSE_KEYS}
    out['camera_index'] = tf.argmax(tf.cast(tf.equal(camera_ids, ex['camera_id']), tf.int32))
    return out

  ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
  parts = list(tfds.as_numpy(ds.prefetch(2)))
  if not parts:
    raise ValueError(f'Split {split!r} of {builder.info.full_name} is empty for this process.')
  arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  for k in ('action', 'subaction', 'frame', 'camera_index'):
    arrays[k] = arrays[k].astype(np.int32)
  return arrays


def image_dataset(builder, split, batch_size, *, shuffle=True, repeat=True, seed=0,
                  preprocess=None, process_index=None, process_count=None,
                  shuffle_buffer=4096, prefetch=2):
  """A `tf.data` pipeline of this process's batches of crops and poses.

  `batch_size` is per process. JPEG decoding and `preprocess(example) ->
  example` run in parallel; batches are dropped at the remainder so every
  step has the same shape (no recompiles).
  """
  read_config = tfds.ReadConfig(shuffle_seed=seed)
  ds = builder.as_dataset(split=_process_split(split, process_index, process_count),
                          shuffle_files=shuffle, read_config=read_config)
  if repeat:
    ds = ds.repeat()
  if shuffle:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  camera_ids = tf.constant(skeleton.CAMERA_IDS)

  def select(ex):
    out = {k: ex[k] for k in POSE_KEYS + ('image',)}
    out['camera_index'] = tf.argmax(tf.cast(tf.equal(camera_ids, ex['camera_id']), tf.int32))
    return preprocess(out) if preprocess else out

  ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=repeat)
  return ds.prefetch(prefetch)
