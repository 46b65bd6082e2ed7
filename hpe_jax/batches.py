"""Batch sources of the training loop: what one jitted call trains on, and the evaluation.

- `ResidentPoses`: the pose splits live on the devices; an epoch is a few
  jitted calls, each a `lax.scan` over `steps_per_call` steps that gathers its
  batches from the epoch's permutation.
- `StreamedImages`: crops and poses stream from the ArrayRecord files through
  grain (`hpe_jax.image_stream`), one batch ahead on the devices; one jitted
  step per call, one compiled step per group of pairs, augmenting on the devices.
Each yields calls `call(state) -> (state, group, metrics, bad_step, num_steps)`
for the loop in `train.py`, and evaluates with the shared `Evaluator`.
"""

import functools
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import augment
from hpe_jax import config_lib
from hpe_jax import evaluator as evaluator_lib
from hpe_jax import image_stream
from hpe_jax import input_pipeline
from hpe_jax import mirror
from hpe_jax import pose_bodies
from hpe_jax import modalities
from hpe_jax import parallel
from hpe_jax import pose_noise
from hpe_jax import sequences
from hpe_jax import weak_supervision
from hpe_jax.evaluation import images as images_lib

# Folded into a step's RNG for its augmentation keys and for its choice of second views
# (dropout and latent keys are split from the same step RNG).
AUGMENT_STREAM = 7
VIEW_STREAM = 8
# Per-row fields of a second view, gathered beside the batch when the data has 'views'.
VIEW_FIELDS = ('pose_2d', 'pose_2d_px', 'camera_index', 'root_3d',
               *weak_supervision.CAMERA_FIELDS)


def gather_rows(data, idx, key, window_offsets=None):
  """The batch of rows `idx` of the resident arrays. Where the data has 'sequence_bounds'
  (rows in frame order), each row also gets 'pose_2d_window', the 2D poses of its frames
  at `window_offsets` (`hpe_jax.sequences`), and where it has 'root_distance' the windows of
  'pose_3d' and of it (`pose_bodies`). Where the data has 'views' (the rows of
  each frame's other cameras, `input_pipeline.view_table`), each row also gets a second view
  of its frame from a camera drawn with `key`: the VIEW_FIELDS suffixed '_other', and
  'view_valid' where that camera saw the frame."""
  batch = {k: jnp.take(v, idx, axis=0) for k, v in data.items()
           if k not in ('views', 'sequence_bounds')}
  if 'sequence_bounds' in data:
    row_bounds = jnp.take(data['sequence_bounds'], idx, axis=0)
    windowed = ('pose_2d', 'pose_3d', 'root_distance') if 'root_distance' in data else (
        'pose_2d',)
    for name in windowed:
      batch[f'{name}_window'] = sequences.gather_windows(data[name], idx, row_bounds,
                                                         window_offsets)
  if 'views' not in data:
    return batch
  views = jnp.take(data['views'], idx, axis=0)  # (B, cameras)
  offset = jax.random.randint(key, idx.shape, 1, views.shape[1])  # never the row's own camera
  other_camera = (batch['camera_index'] + offset) % views.shape[1]
  other = jnp.take_along_axis(views, other_camera[:, None], axis=1)[:, 0]
  batch['view_valid'] = other >= 0
  other = jnp.maximum(other, 0)
  batch.update({f'{k}_other': jnp.take(data[k], other, axis=0) for k in VIEW_FIELDS if k in data})
  return batch


def make_train_chunk(step_fn, collection_empty, batch_size, batch_sharding,
                     window_offsets=None):
  """jit of `num_steps` train steps over slices of an epoch's permutation (one lax.scan);
  `window_offsets` (`sequences.window_offsets`) for a temporal model's data."""

  @functools.partial(jax.jit, static_argnames='num_steps', donate_argnums=0)
  def train_chunk(state, data, perm, first_step, num_steps):
    def body(carry, i):
      state, chunk_metrics, first_bad = carry
      idx = jax.lax.dynamic_slice_in_dim(perm, (first_step + i) * batch_size, batch_size)
      key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), VIEW_STREAM)
      batch = {k: jax.lax.with_sharding_constraint(v, batch_sharding)
               for k, v in gather_rows(data, idx, key, window_offsets).items()}
      state, step_metrics, bad_step = step_fn(state, batch)
      first_bad = jnp.where(first_bad < 0, bad_step, first_bad)
      return (state, chunk_metrics.merge(step_metrics), first_bad), None

    init = (state, collection_empty(), jnp.array(-1, jnp.int32))
    (state, chunk_metrics, first_bad), _ = jax.lax.scan(body, init, jnp.arange(num_steps))
    return state, chunk_metrics, first_bad

  return train_chunk


class ResidentPoses:
  """Pose-only training: the splits on the devices, `steps_per_call` steps per jitted call."""

  # Checkpoints hold no input state: an epoch's order follows from the RNG and the epoch.
  input_state = None

  def __init__(self, config, builder, stats, mesh, evaluator):
    self.config, self.stats = config, stats
    self.batch_sharding = parallel.batch_sharding(mesh)
    self.replicated = parallel.replicated(mesh)
    self.train_data, self.eval_data = input_pipeline.load_pose_data(config, builder, stats, mesh)
    self.num_train = self.train_data['pose_2d'].shape[0]
    steps_per_epoch = self.num_train // config.batch_size
    if steps_per_epoch == 0:
      raise config_lib.ConfigError(
          f'batch_size {config.batch_size} is larger than the training split '
          f'({self.num_train} poses'
          f"{' left after train_exclude_subjects' if config.train_exclude_subjects else ''}): "
          'lower --config.batch_size.')
    # Each jitted call runs `steps_per_call` steps; an epoch is a whole number of calls.
    self.calls_per_epoch = -(-steps_per_epoch // config.steps_per_call)
    self.steps_per_call = steps_per_epoch // self.calls_per_epoch
    self.steps_per_epoch = self.steps_per_call * self.calls_per_epoch
    logging.info('%d training poses, %d steps/epoch of %d (%d jitted calls of %d steps), '
                 '%d epochs.', self.num_train, self.steps_per_epoch, config.batch_size,
                 self.calls_per_epoch, self.steps_per_call, config.num_epochs)
    self._evaluate = evaluator.resident_fn(self.replicated)
    self._announced = False

  def build_steps(self, group_steps, rng):
    (train_step,) = group_steps  # pose-only configs train every pair in one step
    collection = train_step.keywords['collection']
    settings = augment.check_config(self.config.augment)
    flip_prob, noise, missing, bone_scale, leg_bend = (settings[k] for k in (
        'flip_prob', 'pose_2d_noise', 'missing_joints', 'bone_scale', 'leg_bend'))

    def step(state, batch):
      key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), AUGMENT_STREAM)
      if pose_bodies.enabled(settings):
        batch = pose_bodies.new_bodies(batch, self.stats, jax.random.fold_in(key, 2),
                                       self.config.input_layout, bone_scale, leg_bend)
      if flip_prob > 0:  # keyed as the image configs' augmentation
        mask = jax.random.bernoulli(key, flip_prob, batch['camera_index'].shape)
        batch = mirror.flip_pose_batch(batch, self.stats, mask)
      if noise > 0 or missing > 0:
        batch = pose_noise.corrupt_batch(batch, self.stats, jax.random.fold_in(key, 1), noise,
                                         missing, self.config.input_layout)
      return train_step(state, batch)

    self._chunk = make_train_chunk(step, collection.empty, self.config.batch_size,
                                   self.batch_sharding,
                                   sequences.config_window_offsets(self.config))
    del rng  # the epochs' order follows config.seed

  def _epoch_perm(self, epoch):
    """The order of an epoch's poses, from (seed, epoch) alone, the same on every host.

    Drawn with NumPy: 40 ms for 1.56M poses where XLA:CPU's sort takes 0.8 s (and
    jax.random.permutation 1.8 s), which would delay every epoch's first step.
    """
    order = np.random.default_rng([self.config.seed, epoch]).permutation(
        self.num_train).astype(np.int32)
    return jax.make_array_from_callback(order.shape, self.replicated, lambda i: order[i])

  def epoch_calls(self, step, report):
    """The calls of the rest of `step`'s epoch."""
    epoch, in_epoch = divmod(step, self.steps_per_epoch)
    if not self._announced:
      self._announced = True
      logging.info('Compiling the train step (first call only).')
    perm = self._epoch_perm(epoch)
    for c in range(in_epoch // self.steps_per_call, self.calls_per_epoch):
      def call(state, first=c * self.steps_per_call):
        with report.timed('train'):
          state, chunk_metrics, bad = self._chunk(state, self.train_data, perm, first,
                                                  self.steps_per_call)
        return state, 0, chunk_metrics, bad, self.steps_per_call
      yield call

  def evaluate(self, variables):
    per_pose = jax.device_get(self._evaluate(variables, self.eval_data))
    return evaluator_lib.summarize(per_pose), None


class StreamedImages:
  """Image training: batches stream from the records through grain; one jitted step per
  call and group, which augments and normalises the batch on the devices first."""

  steps_per_call = 1

  def __init__(self, config, builder, stats, mesh, evaluator):
    self.config, self.builder = config, builder
    self.batch_sharding = parallel.batch_sharding(mesh)
    replicated = parallel.replicated(mesh)
    self.local_batch = config.batch_size // jax.process_count()
    self.steps_per_epoch = input_pipeline.batches_per_epoch(  # the same on every process
        builder, 'train', self.local_batch, train=True)
    if self.steps_per_epoch == 0:
      raise config_lib.ConfigError(
          f'batch_size {config.batch_size} is larger than the training split '
          f"({builder.info.splits['train'].num_examples} crops): lower --config.batch_size.")
    workers = image_stream.num_workers(config.input_workers)
    logging.info('%d steps/epoch of %d (%s) at %d px, %d epochs; pairs %s, schedule %r; '
                 'decoding in %s.', self.steps_per_epoch, config.batch_size, config.dataset,
                 config.image_size, config.num_epochs,
                 ', '.join(p.name for p in modalities.pairs(config)), config.pair_schedule,
                 f'{workers} grain worker processes' if workers else 'threads')
    batches = input_pipeline.train_image_batches(
        builder, batch_size=self.local_batch, image_size=config.image_size, seed=config.seed)
    # The stream's state is saved in every checkpoint beside the train state.
    self.input_state = self.stream = image_stream.TrainStream(batches, workers)
    self._prepare = functools.partial(image_stream.device_batch, stats=stats,
                                      image_size=config.image_size)
    self._evaluate = evaluator.batch_fn(replicated, prepare=self._prepare)
    self._prepare_jit = jax.jit(self._prepare)
    self._images = (images_lib.make_image_generator(evaluator.model, replicated)
                    if modalities.IMAGE in evaluator.model.decoders else None)
    self._device_batches = None
    self._compiled = set()

  def build_steps(self, group_steps, rng):
    del rng  # the order follows config.seed; augmentation keys come from the state's RNG
    augment_config = augment.check_config(self.config.augment)

    def step(state, batch, train_step):
      key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), AUGMENT_STREAM)
      return train_step(state, self._prepare(batch, augment_config=augment_config, key=key))

    self._steps = [jax.jit(functools.partial(step, train_step=s), donate_argnums=0)
                   for s in group_steps]

  def _call(self, state, batch, group):
    if group not in self._compiled:
      logging.info('Compiling the train step of %s (first time only).',
                   ' + '.join(p.name for p in modalities.groups(self.config)[group]))
    self.stream.consume()
    state, step_metrics, bad = self._steps[group](state, batch)
    if group not in self._compiled:
      jax.block_until_ready(state.step)
      self._compiled.add(group)
    return state, group, step_metrics, bad, 1

  def epoch_calls(self, step, report):
    """The calls of the rest of `step`'s epoch, one per streamed batch."""
    if self._device_batches is None:  # one stream for the whole run
      self._device_batches = parallel.device_batches(self.stream.batches(),
                                                     self.batch_sharding)
    epoch, start_batch = divmod(step, self.steps_per_epoch)
    epoch_start, input_secs = time.time(), 0.0
    for _ in range(start_batch, self.steps_per_epoch):
      tick = time.time()
      with report.timed('input'):
        batch = next(self._device_batches)
      input_secs += time.time() - tick
      group = modalities.scheduled_group(self.config, step, self.steps_per_epoch)
      yield functools.partial(self._call, batch=batch, group=group)
      step += 1
    if step % self.steps_per_epoch == 0:
      image_stream.log_rate((self.steps_per_epoch - start_batch) * self.config.batch_size,
                            time.time() - epoch_start, input_secs, epoch + 1)

  def evaluate(self, variables):
    first = []

    def keep_first(batches):
      for batch in batches:
        if not first:
          first.append(batch)
        yield batch

    # Every process reads the same number of (padded) batches, so the jitted calls stay in step.
    batches = input_pipeline.eval_image_batches(
        self.builder, self.config.eval_split,
        batch_size=self.config.eval_batch_size // jax.process_count(),
        image_size=self.config.image_size)
    device = parallel.device_batches(image_stream.iterate(batches), self.batch_sharding)
    per_pose = evaluator_lib.Evaluator.run_batches(self._evaluate, variables, keep_first(device))
    summary = evaluator_lib.summarize(per_pose)
    if self._images is None:
      return summary, None
    generate, labels = self._images
    return summary, (generate(variables, self._prepare_jit(first[0])), labels)
