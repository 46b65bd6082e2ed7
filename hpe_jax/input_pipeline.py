"""Reads the `h36m` / `h36m_synthetic` TFDS datasets for training and evaluation.

Pose data is small: a split's poses come from the build's pose side file
(`tfds_h36m.pose_arrays`) as NumPy arrays, to be put on the devices whole.
Images stream from the ArrayRecord files through grain (`hpe_jax.image_stream`).
In a multi-host job every process reads only its own part
(`tfds.split_for_jax_process`).
"""

import os

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from hpe_jax import config_lib
from hpe_jax import image_stream
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import parallel
from hpe_jax import pose_bodies
from hpe_jax import pose_noise
from hpe_jax import sequences
from hpe_jax import weak_supervision
from tfds_h36m import builders
from tfds_h36m import features
from tfds_h36m import pose_arrays

SYNTHETIC_DEFAULT = 'h36m_synthetic/default'
INTRINSICS = ('focal_length', 'center')  # the fields a 2D input space reads


class DatasetError(ValueError):
  """A built dataset this version cannot use (rebuild it): one line."""


def _known_configs(builder_name, data_dir):
  """Config names of a builder: the registered ones and any built in `data_dir`."""
  names = {c.name for c in tfds.builder_cls(builder_name).BUILDER_CONFIGS}
  folder = os.path.join(os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR),
                        builder_name)
  if os.path.isdir(folder):
    names |= {n for n in os.listdir(folder)  # not a killed build's incomplete.* folder
              if not n.startswith(('.', 'incomplete.')) and os.path.isdir(os.path.join(folder, n))}
  return sorted(names)


def check_dataset(name, data_dir=None, *, images=False):
  """Raises ConfigError (one line, nearest names) unless `name` is an h36m or h36m_synthetic
  config: 'h36m/poses', 'h36m_synthetic/default', or one you built ('h36m/poses_cpn');
  FileNotFoundError for a Human3.6M config that is not built in `data_dir`; and with
  `images`, image_stream.NotArrayRecord for a build grain cannot read."""
  builder_name, _, rest = name.partition('/')
  config_name = rest.split(':')[0]
  known = {b: _known_configs(b, data_dir) for b in builders.BUILDER_NAMES}
  full = [f'{b}/{c}' for b, cs in known.items() for c in cs]
  if builder_name not in known or not config_name or config_name not in known[builder_name]:
    raise config_lib.ConfigError(
        f'Unknown dataset {name!r}{config_lib.near_matches(name, full)}; known: '
        f'{", ".join(full)} (build your own with python -m tfds_h36m.prepare).')
  if builder_name == 'h36m_synthetic':  # built on first use
    builder = builders.load(name, data_dir)
  else:  # raises naming the build command
    builder = get_builder(name, data_dir, build_synthetic=False)
  if images and builder.is_prepared():
    image_stream.require_array_record(builder, name, data_dir)


def get_builder(name, data_dir=None, *, build_synthetic=True):
  """The dataset builder; builds a synthetic dataset that is not built yet.

  A real Human3.6M dataset must be built by the user beforehand (it needs the
  manual download), so a missing one is an error naming the build command.
  """
  builder = builders.load(name, data_dir)
  if not builder.is_prepared():
    if name.startswith('h36m_synthetic') and build_synthetic:
      logging.info('Building %s in %s (first time only, no download).', name, builder.data_dir)
      tfds.disable_progress_bar()  # the builder logs its own progress (examples/s, ETA)
      builder.download_and_prepare()
      return builder
    data_dir_flag = f'--data_dir={data_dir or "~/tensorflow_datasets"}'
    if name.startswith('h36m_synthetic'):  # generated: no files of the user's to point at
      raise FileNotFoundError(
          f'Dataset {name} is not built in {builder.data_dir}. It needs no download: build '
          f'it with python -m tfds_h36m.prepare --dataset={name} {data_dir_flag} (training '
          'on it builds it too).')
    what = 'a folder of BVH files' if name.startswith('mocap') else 'your Human3.6M copy'
    raise FileNotFoundError(
        f'Dataset {name} is not built in {builder.data_dir}. Build it from {what} first: '
        f'python -m tfds_h36m.prepare --dataset={name} --manual_dir=/path/to/files '
        f'{data_dir_flag}')
  return builder


def normalization_stats(builder, input_space='pixels', input_layout='h36m'):
  """Per-coordinate mean/std of the training split, stored at build time.

  Returns float32 arrays 'pose_3d_mean'/'pose_3d_std' (16, 3) in mm
  (root-relative) and 'pose_2d_mean'/'pose_2d_std' (16, 2) in px, for the 16
  non-root joints; for `input_space` 'camera', the 2D ones on the normalised image plane;
  for 'perspective_crop', computed now from the training poses (`_crop_stats`).
  """
  stats = builder.info.metadata.get('statistics')
  if stats is None:
    raise DatasetError(f'{builder.info.full_name} in {builder.data_dir} has no stored '
                     'normalisation statistics; rebuild it with this version of tfds_h36m.')
  if input_space == 'perspective_crop':
    stats = _crop_stats(builder, input_layout)
  elif input_space == 'camera':
    if 'pose_2d_camera_mean' not in stats:
      raise config_lib.ConfigError(
          f"input_space 'camera' needs the 2D statistics on the normalised image plane, which "
          f'{builder.info.full_name} in {builder.data_dir} was built without; rebuild it.')
    stats = dict(stats, pose_2d_mean=stats['pose_2d_camera_mean'],
                 pose_2d_std=stats['pose_2d_camera_std'])
  return {k: np.asarray(stats[k], np.float32) for k in normalization.STATS_KEYS}


def _crop_stats(builder, input_layout, chunk=100_000):
  """The statistics (`features.PoseStatistics`) of the training split's perspective crops
  (`normalization.perspective_crop`) and of its 3D poses in the turned cameras' frames: they
  depend on the layout's root, so they are not stored with the dataset (about 1 s per 100k
  poses)."""
  arrays = load_pose_arrays(builder, 'train', fields=('pose_2d', 'pose_3d') + INTRINSICS)
  stats = features.PoseStatistics()
  for start in range(0, len(arrays['pose_2d']), chunk):
    part = {k: np.asarray(v[start:start + chunk], np.float64) for k, v in arrays.items()}
    plane = normalization.input_pose_2d(normalization.camera_plane(
        part['pose_2d'], part['focal_length'], part['center']), input_layout)
    stats.update(normalization.to_crop_frame(part['pose_3d'], plane),
                 normalization.perspective_crop(plane))
  return stats.as_metadata()


def check_split(builder, split):
  """Raises ConfigError (one line, naming the splits that exist) unless `split` (TFDS split
  syntax: 'test', 'test[:10%]', 'train+test') reads from the built dataset."""
  try:
    builder.info.splits[split]  # pylint: disable=pointless-statement
  except (KeyError, ValueError):
    raise config_lib.ConfigError(
        f"No split {split!r} in {builder.info.full_name}: its splits are "
        f"{', '.join(sorted(builder.info.splits))} (TFDS split syntax: 'test', 'test[:10%]', "
        "'train+test').") from None


def _process_split(split, process_index, process_count):
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  if process_count == 1:
    return split
  return tfds.split_for_jax_process(split, process_index=process_index,
                                    process_count=process_count)


def load_pose_arrays(builder, split, *, process_index=None, process_count=None,
                     fields=tuple(pose_arrays.FIELDS)):
  """All poses of this process's part of `split` as NumPy arrays, in the records' order.

  Keys: pose_2d (N, 17, 2) px, pose_3d (N, 17, 3) root-relative mm, root_3d
  (N, 3) mm, action, subaction, frame (N,) int32, and camera_index (N,) int32
  (position of the camera in the standard order); or only `fields` of these. Read
  from the build's pose side file (`tfds_h36m.pose_arrays`): seconds for Human3.6M's
  1.7M examples.
  """
  check_split(builder, split)
  try:
    arrays = pose_arrays.load(builder, _process_split(split, process_index, process_count),
                              fields)
  except pose_arrays.SplitError as e:
    raise config_lib.ConfigError(str(e)) from None
  if not len(next(iter(arrays.values()))):
    raise config_lib.ConfigError(
        f'Split {split!r} of {builder.info.full_name} is empty for this process.')
  return arrays


def _process_sizes(builder, split, process_count):
  """Number of examples of `split` each process reads."""
  process_count = jax.process_count() if process_count is None else process_count
  return [builder.info.splits[_process_split(split, i, process_count)].num_examples
          for i in range(process_count)]


def batches_per_epoch(builder, split, batch_size, train, process_count=None):
  """Batches of an epoch per process, the same on every process.

  Training: the smallest process part's whole batches (the stream runs on into the
  next epoch); evaluation: the largest part's batches, the last ones padded, so all
  processes run the same number of steps.
  """
  sizes = _process_sizes(builder, split, process_count)
  if train:
    return min(sizes) // batch_size
  return -(-max(sizes) // batch_size)


def image_source(builder, split, process_index=None, process_count=None):
  """This process's part of `split` as a random-access source of serialised examples."""
  from array_record.python import array_record_data_source  # pylint: disable=g-import-not-at-top
  check_split(builder, split)
  process_split = _process_split(split, process_index, process_count)
  return array_record_data_source.ArrayRecordDataSource(
      builder.info.splits[process_split].file_instructions)


def train_image_batches(builder, *, batch_size, image_size, seed, process_index=None,
                        process_count=None):
  """The endless training stream of this process (`image_stream.train_batches`), shuffled
  with a seed from `seed` and the process index."""
  if process_index is None:
    process_index, process_count = jax.process_index(), jax.process_count()
  source = image_source(builder, 'train', process_index, process_count)
  shuffle_seed = int(np.random.SeedSequence([seed, process_index]).generate_state(1)[0])
  return image_stream.train_batches(source, batch_size=batch_size, seed=shuffle_seed,
                                    size=_decoded_size(builder, image_size))


def eval_image_batches(builder, split, *, batch_size, image_size, process_index=None,
                       process_count=None):
  """This process's part of `split` in the records' order, as the same number of padded
  batches on every process (`batches_per_epoch`), so jitted calls stay in step."""
  source = image_source(builder, split, process_index, process_count)
  num_batches = batches_per_epoch(builder, split, batch_size, False, process_count)
  return image_stream.eval_batches(source, batch_size=batch_size, num_batches=num_batches,
                                   size=_decoded_size(builder, image_size))


def _decoded_size(builder, image_size):
  return image_stream.decoded_size(builder.info.features['image'].shape[0], image_size)


def log_dataset(config):
  if config.dataset.startswith('h36m_synthetic'):
    logging.info('Training on the synthetic stand-in %s: its numbers are not Human3.6M '
                 'numbers. Set --config.dataset=h36m/images (or h36m/poses) for your own '
                 'build.', config.dataset)


def input_pose_2d(arrays, config, noise=0.0):
  """The 2D poses (N, 17, 2) of a split's arrays (`load_pose_arrays`, with the intrinsics) in
  `config.input_space` (`normalization.input_space_pose_2d`), with the Gaussian part of
  `pose_noise.corrupt` at level `noise` (seeded by config.seed; no joint missing) where it
  is positive."""
  pose_2d = normalization.input_space_pose_2d(arrays, config.input_space)
  if noise > 0:
    key = jax.random.PRNGKey(config.seed)
    pose_2d = np.asarray(pose_noise.corrupt(key, jnp.asarray(pose_2d, jnp.float32), noise,
                                            0.0, variable=False))
  return pose_2d


def model_pose_2d(arrays, stats, config, noise=0.0):
  """The 2D encoder's input (N, 16, 2) of a split's arrays: `input_pose_2d`, then
  `normalization.model_pose_2d`."""
  return normalization.model_pose_2d(input_pose_2d(arrays, config, noise), stats,
                                     config.input_layout, config.input_space)


def target_pose_3d(arrays, pose_2d, config):
  """The 3D poses (N, 17, 3) mm a model of `config` answers for its 2D input `pose_2d`
  (`input_pose_2d`): the camera-frame poses, or for `input_space` 'perspective_crop' the
  same poses in the frame of the camera turned to look at each root
  (`normalization.to_crop_frame`; MPJPE and the aligned errors do not change)."""
  if config.input_space != 'perspective_crop':
    return arrays['pose_3d']
  return normalization.to_crop_frame(
      np.asarray(arrays['pose_3d'], np.float64),
      normalization.input_pose_2d(np.asarray(pose_2d, np.float64), config.input_layout))


def eval_pose_arrays(arrays, stats, rows, config, *, row_offset=0):
  """A split's poses (from `load_pose_arrays`) as the evaluator reads them, zero-padded to
  `rows` (padding rows have valid=False): normalised pose_2d (`model_pose_2d`, with the
  config's eval_pose_2d_noise), pose_3d, and pose_3d_mm, action, camera_index, principal_x
  (the mirror's column), valid, with `config.ray_refinement` or a perspective crop
  pose_2d_plane (the 2D input on the normalised image plane, torso as the model reads it); and, for arrays `in_frame_order`, their `sequence_bounds`
  plus `row_offset` (a padding row is a sequence of its own), for temporal windows and the
  jitter."""
  n = len(arrays['pose_3d'])
  pose_2d = input_pose_2d(arrays, config, config.eval_pose_2d_noise)
  pose_3d = target_pose_3d(arrays, pose_2d, config)
  data = {'pose_2d': normalization.model_pose_2d(pose_2d, stats, config.input_layout,
                                                 config.input_space),
          'pose_3d': normalization.normalize(pose_3d, stats, 'pose_3d')}
  if config.ray_refinement or config.input_space == 'perspective_crop':
    # the keypoints whose rays the answers move toward, or that turn a crop's back
    data['pose_2d_plane'] = normalization.input_pose_2d(pose_2d, config.input_layout)
  data.update(pose_3d_mm=pose_3d, action=arrays['action'],
              camera_index=arrays['camera_index'],
              principal_x=normalization.principal_x(arrays, config.input_space),
              valid=np.ones(n, bool))
  data = _float32(parallel.pad_rows(data, rows))
  if 'sequence_bounds' in arrays:
    own = np.repeat(np.arange(rows, dtype=np.int32)[:, None], 2, axis=1)
    data['sequence_bounds'] = np.concatenate([arrays['sequence_bounds'], own[n:]]) + row_offset
  return data


def in_frame_order(arrays, keep=None):
  """`arrays` (with `sequences.SEQUENCE_FIELDS`) sorted by sequence and frame, the first
  `keep` rows, and `sequence_bounds` (N, 2): each row's first and last row."""
  order = sequences.frame_order(arrays)[:keep]
  arrays = {k: v[order] for k, v in arrays.items()}
  arrays['sequence_bounds'] = sequences.bounds(arrays)
  return arrays


def _float32(data):
  return {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}


def view_table(arrays):
  """(N, C) int32: row r's entry k is the row of the same frame (subject, action, subaction,
  frame) seen by camera k (of the C camera indices), or -1 where the split has none
  (multi-view consistency)."""
  key = np.stack([arrays[k].astype(np.int64) for k in
                  ('subject_number', 'action', 'subaction', 'frame')], axis=1)
  _, group = np.unique(key, axis=0, return_inverse=True)
  group = group.reshape(-1)
  table = np.full((group.max() + 1, int(arrays['camera_index'].max()) + 1), -1, np.int32)
  table[group, arrays['camera_index']] = np.arange(len(group), dtype=np.int32)
  return table[group]


def _load_train_arrays(config, builder, fields):
  """The training split's `fields` (`load_pose_arrays`) without the rows of the subjects in
  `config.train_exclude_subjects`."""
  exclude = list(config.train_exclude_subjects)
  arrays = load_pose_arrays(builder, 'train', fields=tuple(dict.fromkeys(
      fields + (('subject_number',) if exclude else ()))))
  if not exclude:
    return arrays
  keep = ~np.isin(arrays['subject_number'], exclude)
  if not keep.any():
    raise config_lib.ConfigError(f'train_exclude_subjects {exclude} leaves no training poses.')
  return {k: v[keep] for k, v in arrays.items()}


def _weak_train_arrays(config, builder, stats):
  """The training arrays of a weakly supervised config: 2D poses, cameras, subjects, the
  views of each frame, and root_3d only for `weak.root` 'known'; never pose_3d."""
  fields = ['pose_2d', 'camera_index', 'subject_number', 'action', 'subaction', 'frame',
            *weak_supervision.CAMERA_FIELDS]
  if config.weak.root == 'known':
    fields.append('root_3d')
  arrays = _load_train_arrays(config, builder, tuple(fields))
  keep = parallel.equal_local_rows(len(arrays['pose_2d']), jax.local_device_count(), pad=False)
  arrays = {k: v[:keep] for k, v in arrays.items()}
  train = {'pose_2d': model_pose_2d(arrays, stats, config), 'pose_2d_px': arrays['pose_2d'],
           'principal_x': normalization.principal_x(arrays, config.input_space)}
  train.update({k: arrays[k] for k in ('camera_index', 'subject_number', 'root_3d',
                                      *weak_supervision.CAMERA_FIELDS) if k in arrays})
  if config.weak.multiview > 0:
    # Rows of global arrays: this process's rows follow those of the processes before it
    # (a frame's views held by another process are not used).
    views = view_table(arrays)
    train['views'] = np.where(views >= 0, views + jax.process_index() * keep, -1)
  return _float32(train)


def _train_sequences(arrays, keep, window):
  """This process's first `keep` training rows in frame order, their `sequence_bounds` as
  rows of the global array; warns when the rows are not every frame."""
  arrays = in_frame_order(arrays, keep)
  step = sequences.frame_step(arrays, arrays['sequence_bounds'])
  if step != 1:
    logging.warning('Consecutive rows of a sequence are %d frames apart: the windows of %d '
                    'rows see %.0f fps, not 50. Train temporal models on every frame '
                    '(h36m/poses, h36m_synthetic/poses).', step, window, 50 / step)
  arrays['sequence_bounds'] += np.int32(jax.process_index() * keep)
  return arrays


def _train_arrays(config, builder, stats):
  """Normalised training poses, camera_index, principal_x (the mirror's column), and for
  new bodies each pose's root_distance (mm)."""
  if config.supervision == 'weak':
    return _weak_train_arrays(config, builder, stats)
  temporal = modalities.is_temporal(config)
  new_bodies = pose_bodies.enabled(config.augment)
  fields = ('pose_2d', 'pose_3d', 'camera_index') + INTRINSICS + (
      sequences.SEQUENCE_FIELDS if temporal else ()) + (('root_3d',) if new_bodies else ())
  arrays = _load_train_arrays(config, builder, tuple(dict.fromkeys(fields)))
  keep = parallel.equal_local_rows(len(arrays['pose_3d']), jax.local_device_count(), pad=False)
  if temporal:  # windows of consecutive rows; the cut drops the last sequence's tail
    arrays = _train_sequences(arrays, keep, config.model.window)
  arrays = {k: v[:keep] for k, v in arrays.items()}
  pose_2d = input_pose_2d(arrays, config)
  train = _float32({
      'pose_2d': normalization.model_pose_2d(pose_2d, stats, config.input_layout,
                                             config.input_space),
      'pose_3d': normalization.normalize(target_pose_3d(arrays, pose_2d, config), stats,
                                         'pose_3d'),
      'principal_x': normalization.principal_x(arrays, config.input_space)})
  train['camera_index'] = arrays['camera_index']
  if new_bodies:  # the distance new bodies are filmed from (`hpe_jax.pose_bodies`)
    train['root_distance'] = np.linalg.norm(arrays['root_3d'], axis=-1).astype(np.float32)
  if temporal:
    train['sequence_bounds'] = arrays['sequence_bounds']
  return train


def load_pose_data(config, builder, stats, mesh):
  """Normalised training (with camera_index) and evaluation (`config.eval_split`, in frame
  order with sequence bounds) poses as global arrays sharded over the mesh's `data` axis.

  Training rows are cut to the same count on every process (a multiple of the local
  devices); evaluation rows are zero-padded (valid=False) to whole eval batches.
  """
  sharding = parallel.batch_sharding(mesh)
  train = _train_arrays(config, builder, stats)
  fields = tuple(dict.fromkeys(('pose_2d', 'pose_3d') + INTRINSICS + sequences.SEQUENCE_FIELDS))
  arrays = in_frame_order(load_pose_arrays(builder, config.eval_split, fields=fields))
  per_process_batch = config.eval_batch_size // jax.process_count()
  rows = parallel.equal_local_rows(len(arrays['pose_3d']),
                                   np.lcm(per_process_batch, jax.local_device_count()), pad=True)
  evaluation = eval_pose_arrays(arrays, stats, rows, config,
                                row_offset=jax.process_index() * rows)
  return ({k: parallel.global_array(v, sharding) for k, v in train.items()},
          {k: parallel.global_array(v, sharding) for k, v in evaluation.items()})
