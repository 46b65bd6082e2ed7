"""Batch sources of the training loop: what one jitted call trains on, and the evaluation.

- `ResidentPoses`: the pose splits live on the devices; an epoch is a few
  jitted calls, each a `lax.scan` over `steps_per_call` steps that gathers its
  batches from the epoch's permutation.
- `StreamedImages`: crops and poses stream from the TFDS records through
  `input_pipeline.image_batches`, one batch ahead on the devices; one jitted
  step per call, one compiled step per group of pairs.
Each yields calls `call(state) -> (state, group, metrics, bad_step, num_steps)`
for the loop in `train.py`, and evaluates with the shared `Evaluator`.
"""

import functools
import time

from absl import logging
import jax
import jax.numpy as jnp

from hpe_jax import evaluator as evaluator_lib
from hpe_jax import input_pipeline
from hpe_jax import modalities
from hpe_jax import parallel
from hpe_jax.evaluation import images as images_lib


def make_train_chunk(step_fn, collection_empty, batch_size, batch_sharding):
  """jit of `num_steps` train steps over slices of an epoch's permutation (one lax.scan)."""

  @functools.partial(jax.jit, static_argnames='num_steps', donate_argnums=0)
  def train_chunk(state, data, perm, first_step, num_steps):
    def body(carry, i):
      state, chunk_metrics, first_bad = carry
      idx = jax.lax.dynamic_slice_in_dim(perm, (first_step + i) * batch_size, batch_size)
      batch = {k: jax.lax.with_sharding_constraint(jnp.take(v, idx, axis=0), batch_sharding)
               for k, v in data.items()}
      state, step_metrics, bad_step = step_fn(state, batch)
      first_bad = jnp.where(first_bad < 0, bad_step, first_bad)
      return (state, chunk_metrics.merge(step_metrics), first_bad), None

    init = (state, collection_empty(), jnp.array(-1, jnp.int32))
    (state, chunk_metrics, first_bad), _ = jax.lax.scan(body, init, jnp.arange(num_steps))
    return state, chunk_metrics, first_bad

  return train_chunk


class ResidentPoses:
  """Pose-only training: the splits on the devices, `steps_per_call` steps per jitted call."""

  def __init__(self, config, builder, stats, mesh, evaluator):
    self.config = config
    self.batch_sharding = parallel.batch_sharding(mesh)
    self.replicated = parallel.replicated(mesh)
    self.train_data, self.eval_data = input_pipeline.load_pose_data(config, builder, stats, mesh)
    self.num_train = self.train_data['pose_3d'].shape[0]
    steps_per_epoch = self.num_train // config.batch_size
    if steps_per_epoch == 0:
      raise ValueError(f'batch_size {config.batch_size} exceeds the {self.num_train} training '
                       'poses.')
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
    (step_fn,) = group_steps  # pose-only configs train every pair in one step
    collection = step_fn.keywords['collection']
    self._chunk = make_train_chunk(step_fn, collection.empty, self.config.batch_size,
                                   self.batch_sharding)
    num_train = self.num_train
    self._epoch_perm = jax.jit(lambda key, epoch: jax.random.permutation(
        jax.random.fold_in(key, epoch), num_train), out_shardings=self.replicated)
    self._perm_key = jax.random.fold_in(rng, 1)

  def epoch_calls(self, step, report):
    """The calls of the rest of `step`'s epoch."""
    epoch, in_epoch = divmod(step, self.steps_per_epoch)
    if not self._announced:
      self._announced = True
      logging.info('Compiling the train step (first call only).')
    perm = self._epoch_perm(self._perm_key, epoch)
    for c in range(in_epoch // self.steps_per_call, self.calls_per_epoch):
      def call(state, first=c * self.steps_per_call):
        with report.timed('train', wait_jax_async_dispatch=False):
          state, chunk_metrics, bad = self._chunk(state, self.train_data, perm, first,
                                                  self.steps_per_call)
        return state, 0, chunk_metrics, bad, self.steps_per_call
      yield call

  def evaluate(self, variables):
    per_pose = jax.device_get(self._evaluate(variables, self.eval_data))
    return evaluator_lib.summarize(per_pose), None


class StreamedImages:
  """Image training: batches stream from the records; one jitted step per call and group."""

  steps_per_call = 1

  def __init__(self, config, builder, stats, mesh, evaluator):
    self.config, self.builder, self.stats = config, builder, stats
    self.batch_sharding = parallel.batch_sharding(mesh)
    replicated = parallel.replicated(mesh)
    self.steps_per_epoch = input_pipeline.batches_per_epoch(  # the same on every process
        builder, 'train', config.batch_size // jax.process_count(), train=True)
    if self.steps_per_epoch == 0:
      raise ValueError(f'batch_size {config.batch_size} exceeds the training split.')
    logging.info('%d steps/epoch of %d (%s) at %d px, %d epochs; pairs %s, schedule %r.',
                 self.steps_per_epoch, config.batch_size, config.dataset, config.image_size,
                 config.num_epochs, ', '.join(p.name for p in modalities.pairs(config)),
                 config.pair_schedule)
    self._evaluate = evaluator.batch_fn(replicated)
    self._images = (images_lib.make_image_generator(evaluator.model, replicated)
                    if modalities.IMAGE in evaluator.model.decoders else None)
    self._compiled = set()

  def build_steps(self, group_steps, rng):
    del rng  # the order and augmentation follow config.seed
    self._steps = [jax.jit(step, donate_argnums=0) for step in group_steps]

  def _batches(self, split, batch_size, train, epoch=0, start_batch=0):
    augment = self.config.augment if train else None
    dataset = input_pipeline.image_batches(
        self.builder, split, batch_size=batch_size // jax.process_count(),
        image_size=self.config.image_size, stats=self.stats, train=train,
        seed=self.config.seed, epoch=epoch, start_batch=start_batch, augment_config=augment)
    return parallel.device_batches(dataset.as_numpy_iterator(), self.batch_sharding)

  def _call(self, state, batch, group):
    if group not in self._compiled:
      logging.info('Compiling the train step of %s (first time only).',
                   ' + '.join(p.name for p in modalities.groups(self.config)[group]))
    state, step_metrics, bad = self._steps[group](state, batch)
    if group not in self._compiled:
      jax.block_until_ready(state.step)
      self._compiled.add(group)
    return state, group, step_metrics, bad, 1

  def epoch_calls(self, step, report):
    """The calls of the rest of `step`'s epoch, one per streamed batch."""
    epoch, start_batch = divmod(step, self.steps_per_epoch)
    batches = self._batches('train', self.config.batch_size, True, epoch, start_batch)
    epoch_start, input_secs = time.time(), 0.0
    while True:
      tick = time.time()
      with report.timed('input', wait_jax_async_dispatch=False):
        batch = next(batches, None)
      input_secs += time.time() - tick
      if batch is None:
        break
      group = modalities.scheduled_group(self.config, step, self.steps_per_epoch)
      yield functools.partial(self._call, batch=batch, group=group)
      step += 1
    if step % self.steps_per_epoch == 0:
      seconds = max(time.time() - epoch_start, 1e-9)
      logging.info('Epoch %d: %.0f images/s over the epoch; %.0f%% of its time waiting for '
                   'the input pipeline.', step // self.steps_per_epoch,
                   (self.steps_per_epoch - start_batch) * self.config.batch_size / seconds,
                   100 * input_secs / seconds)

  def evaluate(self, variables):
    first = []

    def keep_first(batches):
      for batch in batches:
        if not first:
          first.append(batch)
        yield batch

    # Every process reads the same number of (padded) batches, so the jitted calls stay in step.
    batches = self._batches(self.config.eval_split, self.config.eval_batch_size, False)
    per_pose = evaluator_lib.Evaluator.run_batches(self._evaluate, variables,
                                                   keep_first(batches))
    summary = evaluator_lib.summarize(per_pose)
    if self._images is None:
      return summary, None
    generate, labels = self._images
    return summary, (generate(variables, first[0]), labels)
