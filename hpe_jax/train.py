"""Training of cross-modal VAEs: RGB image, 2D pose and 3D pose in one latent space.

`train_and_evaluate` runs one loop over a batch source (`hpe_jax.batches`):
- pose-only configs: the whole pose dataset lives on the devices, and each
  jitted call is a `lax.scan` over `steps_per_call` train steps (no host round
  trip per step);
- configs with the image modality: batches stream from the TFDS records, one
  jitted step per call, one compiled step per group of pairs.
Both share the steps, one end-of-epoch (evaluation with `hpe_jax.evaluator`,
checkpoints), one logging path and one non-finite check. Programs are written
for the global batch and partitioned by `jit` with `NamedSharding`.
"""

import functools
import os
from typing import Any

from absl import logging
from clu import metrics as clu_metrics
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from hpe_jax import batches as batches_lib
from hpe_jax import checkpointing
from hpe_jax import config_lib
from hpe_jax import evaluator as evaluator_lib
from hpe_jax import files
from hpe_jax import input_pipeline
from hpe_jax import logs
from hpe_jax import losses
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import optim
from hpe_jax import parallel
from hpe_jax import schedules
from hpe_jax import summary_writer
from hpe_jax import weak_supervision
from hpe_jax import workdir as workdir_lib
from hpe_jax.evaluation import images as images_lib
from hpe_jax.models import factory
from hpe_jax.models import pretrained
from tfds_h36m import builders
from tfds_h36m import records
from tfds_h36m import skeleton

# What stops a training in one line (`hpe_jax.cli.errors_as_lines`, exit status 1): files and
# data that cannot be used, a busy workdir, a non-finite loss (beside OSError, always one line).
DATA_ERRORS = (checkpointing.CheckpointError, workdir_lib.WorkdirBusy, files.UnsafePath,
               builders.ForeignCode, records.DamagedRecords, input_pipeline.DatasetError,
               pretrained.WeightsError, FloatingPointError)


class TrainState(flax.struct.PyTreeNode):
  """Everything a resumed run needs: parameters, BatchNorm statistics, optimiser and RNG."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array


def create_train_state(config, model, tx, rng):
  """Initial parameters of every encoder and decoder (ImageNet weights for the image
  encoder when `config.pretrained.path` names a file), and the optimiser state."""
  init_rng, state_rng = jax.random.split(rng)
  variables = factory.init_variables(config, model, init_rng)
  params, batch_stats = variables['params'], variables['batch_stats']
  key = f'encoders_{modalities.IMAGE}'
  if key in params:
    path = config.pretrained.path
    if path:
      loaded = pretrained.apply_pretrained(
          {'params': params[key], 'batch_stats': batch_stats[key]},
          pretrained.load_resnet18(path))
      params = {**params, key: loaded['params']}
      batch_stats = {**batch_stats, key: loaded['batch_stats']}
      logging.info('Image encoder: ImageNet weights from %s; trainable stages: %s.', path,
                   factory.trainable_stages(config))
    else:
      logging.info('Image encoder: random initialisation (set config.pretrained.path to a '
                   'torchvision resnet18 .pth or .safetensors file for ImageNet weights).')
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=tx.init(params), rng=state_rng)


def variables_of(state):
  """The model variables of a TrainState, as `model.apply` takes them."""
  return {'params': state.params, 'batch_stats': state.batch_stats}


def make_metrics_collection(pairs, weak=None):
  """A clu Collection of the train losses of `pairs` (and of each weak term of the pairs
  ending in 3D), averaged (built inside the jitted steps)."""
  names = [pair.metric_key(n) for pair in pairs for n in ('loss', 'recon_loss', 'kl')]
  if weak is not None:
    names += [pair.metric_key(t) for pair in pairs if pair.target == modalities.POSE_3D
              for t in weak_supervision.TERMS]
  names += ['loss', 'beta_scale']
  return clu_metrics.Collection.create(
      **{n: clu_metrics.Average.from_output(n) for n in names})


def _conditional_losses(model, variables, batch, pair, rngs, config):
  """A CVAE pair's reconstruction (posterior and, by gsnn_weight, prior samples) and
  KL(q(z | 3D) || p(z | source)), divided by the 3D pose's 48 elements as the thesis's KL."""
  weight = config.prior.gsnn_weight
  out, updates = model.apply(variables, normalization.model_input(batch, pair.source),
                             batch[modalities.POSE_3D], source=pair.source, train=True,
                             decode_prior=weight > 0,
                             prior_temperature=config.prior.gsnn_temperature,
                             method=model.conditional, rngs=rngs,
                             mutable=['batch_stats'])
  target = batch[modalities.POSE_3D]
  recon = (1.0 - weight) * losses.mse_loss(out['recon'], target)
  if weight > 0:
    recon += weight * losses.mse_loss(out['recon_prior'], target)
  kl = jnp.mean(losses.gaussian_kl(out['mean'], out['logvar'], out['prior_mean'],
                                   out['prior_logvar']))
  return recon, kl / np.prod(modalities.POSE_SHAPES[modalities.POSE_3D]), updates['batch_stats']


def _weak_losses(model, variables, batch, pair, rngs, weak):
  """A weakly supervised pair's losses (`hpe_jax.weak_supervision`) on the 3D answers to the
  batch's 2D poses (and, for multi-view consistency, to their second views), its KL, and
  each weak term for the logs."""
  x = batch[modalities.POSE_2D]
  if weak.multiview:
    x = jnp.concatenate([x, batch['pose_2d_other']])
  out, updates = model.apply(variables, x, source=pair.source, target=pair.target, train=True,
                             rngs=rngs, mutable=['batch_stats'])
  pose_mm = normalization.pose_3d_mm(out['recon'], weak.stats)
  n = batch[modalities.POSE_2D].shape[0]
  terms = weak.losses(pose_mm[:n], batch, pose_mm[n:] if weak.multiview else None)
  kl = losses.gaussian_kl_loss(out['mean'], out['logvar'],
                               int(np.prod(modalities.POSE_SHAPES[modalities.POSE_3D])))
  return terms.pop('total'), kl, updates['batch_stats'], terms


def _pair_losses(model, variables, batch, pair, rngs, config, weak=None):
  """Reconstruction (MSE for poses, L1 for images) and KL losses of one pair on a batch,
  the new BatchNorm statistics, and any further terms to log."""
  if weak is not None and pair.target == modalities.POSE_3D:
    return _weak_losses(model, variables, batch, pair, rngs, weak)
  if pair in modalities.conditional_pairs(config):
    return (*_conditional_losses(model, variables, batch, pair, rngs, config), {})
  out, updates = model.apply(variables, normalization.model_input(batch, pair.source),
                             source=pair.source, target=pair.target, train=True,
                             rngs=rngs, mutable=['batch_stats'])
  target = normalization.model_input(batch, pair.target)
  if pair.target == modalities.IMAGE:
    recon = losses.l1_loss(out['recon'], target)
  else:
    recon = losses.mse_loss(out['recon'], target)
  kl = losses.gaussian_kl_loss(out['mean'], out['logvar'],
                               int(np.prod(modalities.modality_shape(config, pair.target))))
  return recon, kl, updates['batch_stats'], {}


def train_step(state, batch, *, model, tx, config, pairs, beta_fn, collection, weak=None):
  """One optimiser step on a global batch; the losses of `pairs` are summed (`weak`: the
  weak supervision of a config without 3D labels).

  Returns the new state, the step's metrics and the step number if its loss is
  not finite (else -1).
  """
  step_rng = jax.random.fold_in(state.rng, state.step)
  dropout_rng, latent_rng = jax.random.split(step_rng)
  beta_scale = beta_fn(state.step)
  all_pairs = modalities.pairs(config)

  def loss_fn(params):
    batch_stats = state.batch_stats
    total, logs = 0.0, {}
    for pair in pairs:
      i = all_pairs.index(pair)  # Each pair's RNG stream is the same under every schedule.
      rngs = {'dropout': jax.random.fold_in(dropout_rng, i),
              'latent': jax.random.fold_in(latent_rng, i)}
      recon, kl, batch_stats, terms = _pair_losses(
          model, {'params': params, 'batch_stats': batch_stats}, batch, pair, rngs, config, weak)
      beta = 0.0 if config.deterministic else pair.beta * beta_scale
      loss = pair.weight * (recon + beta * kl)
      total += loss
      logs.update({pair.metric_key('loss'): loss, pair.metric_key('recon_loss'): recon,
                   pair.metric_key('kl'): kl})
      logs.update({pair.metric_key(t): v for t, v in terms.items()})
    return total, (batch_stats, logs)

  (loss, (batch_stats, logs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state)
  step_metrics = collection.single_from_model_output(loss=loss, beta_scale=beta_scale, **logs)
  bad_step = jnp.where(jnp.isfinite(loss), -1, state.step)
  return new_state, step_metrics, bad_step


def make_group_steps(model, tx, config, beta_fn, weak=None):
  """One train-step function per group of pairs (see `modalities.groups`), not yet jitted."""
  return [functools.partial(train_step, model=model, tx=tx, config=config, pairs=group,
                            beta_fn=beta_fn, collection=make_metrics_collection(group, weak),
                            weak=weak)
          for group in modalities.groups(config)]


def _setup(config):
  """The dataset, model, batch source and normalisation stats of a checked config. Writes
  nothing: data that does not fit the config (a batch larger than the training split, an
  eval split the dataset lacks) stops before the workdir."""
  builder = input_pipeline.get_builder(config.dataset, config.data_dir)
  input_pipeline.log_dataset(config)
  input_pipeline.check_split(builder, config.eval_split)
  stats = input_pipeline.normalization_stats(builder, config.input_space,
                                             config.input_layout)
  weak = None
  if config.supervision == 'weak':
    stats = weak_supervision.label_free_stats(stats, config.weak.pose_3d_std_mm)
    # The weak losses compare 2D poses in px, whatever the model's input space.
    weak = weak_supervision.WeakSupervision(
        config.weak, stats, input_pipeline.normalization_stats(builder)['pose_2d_std'])
  mesh = parallel.make_data_mesh()
  model = factory.create_model(config)
  evaluator = evaluator_lib.Evaluator(model, config, stats)
  cls = (batches_lib.StreamedImages if modalities.uses_images(config)
         else batches_lib.ResidentPoses)
  source = cls(config, builder, stats, mesh, evaluator)
  return source, model, mesh, weak, stats


def _beta_fn(config, steps_per_epoch):
  """The multiplier of every pair's beta by step; ConfigError for a schedule the run's steps
  cannot hold (a linear warm-up of no step, fewer steps than cycles)."""
  beta = config.beta_schedule
  try:
    return schedules.beta_schedule(
        beta.kind, 1.0, steps_per_epoch * config.num_epochs,
        warmup_steps=int(beta.warmup_epochs * steps_per_epoch), num_cycles=beta.num_cycles,
        ratio=beta.ratio)
  except ValueError as e:
    raise config_lib.ConfigError(
        f'beta_schedule: {e} ({steps_per_epoch} steps per epoch).') from None


class _Run:
  """The state of one training run between its calls: counters, windows, writer, manager."""

  def __init__(self, config, workdir, source, model, mesh, weak):
    self.config, self.source = config, source
    self.steps_per_epoch = source.steps_per_epoch
    self.num_steps = self.steps_per_epoch * config.num_epochs
    tx = optim.create_optimizer(config, self.steps_per_epoch)
    rng = jax.random.PRNGKey(config.seed)
    state = jax.device_put(create_train_state(config, model, tx, rng),
                           parallel.replicated(mesh))
    beta_fn = _beta_fn(config, self.steps_per_epoch)
    source.build_steps(make_group_steps(model, tx, config, beta_fn, weak), rng)
    self.writer = summary_writer.SummaryWriter(workdir,
                                               just_logging=jax.process_index() > 0)
    self.manager = checkpointing.training_manager(workdir, config.keep_checkpoints)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored, self.manager = checkpointing.restore_latest(
        self.manager, abstract, workdir, config.keep_checkpoints)
    self.state = state if restored is None else restored
    self.start_step = self.step = int(self.state.step)
    if restored is not None and source.input_state is not None and not (
        checkpointing.restore_data(self.manager, self.start_step, source.input_state)):
      logging.warning('The checkpoint of step %d holds no input-stream state (an earlier '
                      'version wrote it): the image stream starts anew.', self.start_step)
    self.report = summary_writer.ProgressReport(self.num_steps, self.writer,
                                                config.log_every_secs)
    self.hooks = [self.report]
    if config.profile and jax.process_index() == 0:
      # Traces the steps after the first jitted call of this run (the first one compiles).
      self.hooks.append(summary_writer.StepTrace(
          workdir, first_step=self.start_step + source.steps_per_call,
          num_steps=source.steps_per_call))
    self.preemption = checkpointing.Preemption()
    self.compiles = parallel.CompileCounter()
    self.summary = self.pictures = None
    self._evaluated_once = False
    self._window, self._bad, self._last_log = {}, [], self.step

  def evaluate(self):
    """Evaluates the current state; its first call (which compiles) is kept out of the count."""
    counting = self.compiles.active
    if not self._evaluated_once:
      self.compiles.stop()
    with self.report.timed('eval'):
      self.summary, self.pictures = self.source.evaluate(variables_of(self.state))
    if not self._evaluated_once and counting:
      self.compiles.start()
    self._evaluated_once = True

  def after_call(self, group, call_metrics, bad_step, num_steps):
    """Counts the call's steps, runs the hooks, and logs when due; True when preempted."""
    self.step += num_steps
    self._window[group] = (call_metrics if group not in self._window
                           else self._window[group].merge(call_metrics))
    self._bad.append(bad_step)
    for hook in self.hooks:
      hook(self.step)
    preempted = self.preemption.reached(self.manager)
    every = self.config.log_every_steps
    if (preempted or self.step % self.steps_per_epoch == 0
        or self.step // every > self._last_log // every):
      self.log_window()
    return preempted

  def log_window(self):
    """The one non-finite check and the train scalars of the steps since the last log."""
    bad = np.asarray(jax.device_get(self._bad)).reshape(-1)
    bad = bad[bad >= 0]
    if bad.size:
      with checkpointing.writing(self.manager):
        self.manager.wait_until_finished()
      raise FloatingPointError(
          f'Non-finite loss at step {int(bad.min())}; stopped. The last good checkpoint is '
          f'{checkpointing.last_good(self.manager)}.')
    scalars, totals = {}, {}
    for group_metrics in self._window.values():
      for name in ('loss', 'beta_scale'):
        average = getattr(group_metrics, name)
        sums = totals.setdefault(name, [0.0, 0.0])
        sums[0] += float(average.total)
        sums[1] += float(average.count)
      scalars.update({f'train/{k}': v for k, v in group_metrics.compute().items()})
    scalars.update({f'train/{k}': s / max(c, 1.0) for k, (s, c) in totals.items()})
    self.writer.write_scalars(self.step, scalars, log=False)
    self._log_losses(scalars)
    self._window, self._bad, self._last_log = {}, [], self.step

  def _log_losses(self, scalars):
    """One console line of the train losses: the loss and each pair's that the window
    trained (TensorBoard has every term)."""
    keys = {p.name: f'train/{p.metric_key("loss")}' for p in modalities.pairs(self.config)}
    logs.info_wrapped(
        f'Step {self.step}/{self.num_steps}: train loss {scalars["train/loss"]:.4g}; ',
        [f'{name} {scalars[key]:.4g}' for name, key in keys.items() if key in scalars])

  def end_of_epoch(self, preempted):
    """Evaluates and checkpoints as configured at an epoch's end (or on preemption)."""
    config = self.config
    epoch_done, in_epoch = divmod(self.step, self.steps_per_epoch)
    save_metrics = None
    if in_epoch == 0 and (epoch_done % config.eval_every_epochs == 0
                          or self.step == self.num_steps):
      self.evaluate()
      results = evaluator_lib.scalars(self.summary)
      self.writer.write_scalars(self.step, {f'eval/{k}': v for k, v in results.items()},
                                log=False)
      if self.pictures is not None:
        self.writer.write_images(
            self.step, {'eval/images': images_lib.image_grid(np.asarray(self.pictures[0]))[None]})
      logs.info_wrapped(f'Epoch {epoch_done} (step {self.step}), {config.eval_split} split: ',
                        evaluator_lib.headline(results))
      best = evaluator_lib.best_metric(config, self.summary)
      save_metrics = {'mpjpe': best} if best is not None else None
    if preempted or (in_epoch == 0 and (epoch_done % config.checkpoint_every_epochs == 0
                                        or self.step == self.num_steps)):
      with checkpointing.writing(self.manager):
        self.manager.save(self.step, metrics=save_metrics, args=checkpointing.save_args(
            self.state, self.source.input_state))
    if in_epoch == 0 and epoch_done == 1 + self.start_step // self.steps_per_epoch:
      self.compiles.start()  # The train steps compile in the first epoch of a run; count the rest.
    if preempted:
      with checkpointing.writing(self.manager):
        self.manager.wait_until_finished()
      raise checkpointing.Preempted(self.step, self.manager.directory)

  def train(self):
    """The one training loop: epochs of calls from the batch source."""
    if self.start_step >= self.num_steps:
      logging.info('Training is complete (step %d of %d): evaluating the last checkpoint.',
                   self.start_step, self.num_steps)
    while self.step < self.num_steps:
      preempted = False
      for call in self.source.epoch_calls(self.step, self.report):
        self.state, group, call_metrics, bad_step, num_steps = call(self.state)
        if self.step == self.start_step:
          jax.block_until_ready(self.state.step)
          logging.info('First train call of this run done (%d steps).', num_steps)
        preempted = self.after_call(group, call_metrics, bad_step, num_steps)
        if preempted:
          break
      self.end_of_epoch(preempted)
    with checkpointing.writing(self.manager):
      self.manager.wait_until_finished()
    if self.summary is None:  # Nothing was trained in this run: evaluate the restored state.
      self.evaluate()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains the configured pairs, evaluates on the eval split, checkpoints; returns the
  final eval summary (with 'compiles_after_first_epoch', which should be 0).

  Raises `checkpointing.Preempted` after saving when stopped by SIGTERM.
  """
  workdir = os.path.abspath(workdir)
  config_lib.check(config)  # Config and dataset errors stop before anything is written.
  input_pipeline.check_dataset(config.dataset, config.data_dir,
                               images=modalities.uses_images(config))
  if config.batch_size % jax.device_count() or config.eval_batch_size % jax.device_count():
    raise config_lib.ConfigError(
        f'batch_size {config.batch_size} and eval_batch_size {config.eval_batch_size} must '
        f'divide by the {jax.device_count()} devices.')
  source, model, mesh, weak, stats = _setup(config)  # reads the data; writes nothing
  _beta_fn(config, source.steps_per_epoch)
  workdir_lib.first_config(workdir)  # a damaged config.json stops before anything is written
  os.makedirs(workdir, exist_ok=True)
  lock = workdir_lib.Lock(workdir) if jax.process_index() == 0 else None
  if lock:
    lock.acquire()
  try:
    if jax.process_index() == 0:
      normalization.save(workdir, stats)
    run = _Run(config, workdir, source, model, mesh, weak)
    if jax.process_index() == 0:
      workdir_lib.record_config(workdir, config)
    try:
      run.train()
    finally:
      run.compiles.stop()
      run.report.close()
      checkpointing.close(run.manager)
    return _finish(run, workdir)
  finally:
    if lock:
      lock.release()


def _finish(run, workdir):
  """Logs recompiles, writes the results table and the final image grid.

  The table is not printed: the last evaluation's means are logged (`end_of_epoch`), and
  `python -m hpe_jax.evaluate` prints the tables of a checkpoint once, with the rest of its
  report."""
  if run.compiles.count:
    logging.warning('%d XLA compilations after the first epoch: something recompiles.',
                    run.compiles.count)
  summary = dict(run.summary, compiles_after_first_epoch=run.compiles.count)
  table = evaluator_lib.format_results(summary, skeleton.action_names(run.config.dataset))
  if jax.process_index() == 0:
    if table:
      path = files.inside(workdir, 'results.md')
      files.write_atomic(path, table + '\n')
      logging.info('Wrote the per-action table of the last evaluation to %s.', path)
    if run.pictures is not None:  # The last evaluation is of the final state.
      path = files.inside(workdir, 'eval_images.png')
      images_lib.save_image_grid(path, np.asarray(run.pictures[0]), run.pictures[1])
      logging.info('Wrote test crops, reconstructions and pose-generated images to %s', path)
  run.writer.close()
  return summary
