"""Training and evaluation of cross-modal pose VAEs (2D->3D lifting is one pair).

The whole pose dataset lives on the devices, sharded along the mesh's `data`
axis. An epoch is a few jitted calls, each a `lax.scan` over many train steps,
so a step costs no host round trip. Programs are written for the global batch
and partitioned by `jit` with `NamedSharding`: the same code runs on one CPU,
several GPUs or a multi-host TPU slice, and gradients and BatchNorm statistics
are reduced over the global batch.
"""

import functools
import os
import signal
import time
from typing import Any

from absl import logging
from clu import metric_writers
from clu import metrics as clu_metrics
from clu import periodic_actions
import flax
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from hpe_jax import input_pipeline
from hpe_jax import losses
from hpe_jax import metrics
from hpe_jax import schedules
from hpe_jax.models import pose_mlp
from hpe_jax.models import vae
from tfds_h36m import skeleton

# Model inputs/outputs of each modality: the 16 non-root joints, normalised.
MODALITY_SHAPES = {'pose_2d': (16, 2), 'pose_3d': (16, 3)}


class TrainState(flax.struct.PyTreeNode):
  """Everything a resumed run needs: parameters, BatchNorm statistics, optimiser and RNG."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array


def pair_name(pair):
  """'2d->3d' for pose_2d -> pose_3d."""
  short = lambda m: m.replace('pose_', '')
  return f'{short(pair["source"])}->{short(pair["target"])}'


def _metric_key(pair, name):
  return f'{pair["source"]}_to_{pair["target"]}_{name}'


def create_model(config):
  """A CrossModalVAE with an encoder per source and a decoder per target modality."""
  m = config.model
  common = dict(hidden=m.hidden, num_blocks=m.num_blocks, dropout=m.dropout,
                use_batch_norm=m.batch_norm, activation=m.activation)
  sources = sorted({p['source'] for p in config.pairs})
  targets = sorted({p['target'] for p in config.pairs})
  for modality in sources + targets:
    if modality not in MODALITY_SHAPES:
      raise ValueError(f'Unknown modality {modality!r}; known: {sorted(MODALITY_SHAPES)}')
  encoders = {s: pose_mlp.PoseEncoder(latent_dim=m.latent_dim, **common) for s in sources}
  decoders = {t: pose_mlp.PoseDecoder(num_joints=MODALITY_SHAPES[t][0],
                                      joint_dim=MODALITY_SHAPES[t][1], **common)
              for t in targets}
  return vae.CrossModalVAE(encoders=encoders, decoders=decoders,
                           logvar_clip=m.logvar_clip, deterministic_latent=config.deterministic)


def create_optimizer(config, steps_per_epoch):
  """The configured optax optimiser ('adam', 'adamw' or 'sgd'), schedule and clipping."""
  opt = config.optimizer
  lr, warmup = opt.learning_rate, int(opt.warmup_epochs * steps_per_epoch)
  total = config.num_epochs * steps_per_epoch
  if opt.lr_schedule == 'constant':
    schedule = optax.constant_schedule(lr)
  elif opt.lr_schedule == 'exponential':
    schedule = optax.exponential_decay(
        lr, transition_steps=max(int(opt.lr_decay_epochs * steps_per_epoch), 1),
        decay_rate=opt.lr_decay_rate)
  elif opt.lr_schedule == 'cosine':
    schedule = optax.cosine_decay_schedule(lr, decay_steps=max(total - warmup, 1))
  else:
    raise ValueError(f"lr_schedule must be 'constant', 'exponential' or 'cosine', "
                     f'got {opt.lr_schedule!r}')
  if warmup:
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), schedule], [warmup])
  if opt.name == 'adam':
    optimizer = optax.adam(schedule)
  elif opt.name == 'adamw':
    optimizer = optax.adamw(schedule, weight_decay=opt.weight_decay)
  elif opt.name == 'sgd':
    optimizer = optax.sgd(schedule, momentum=0.9)
  else:
    raise ValueError(f"optimizer.name must be 'adam', 'adamw' or 'sgd', got {opt.name!r}")
  if opt.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), optimizer)
  return optimizer


def create_train_state(config, model, tx, rng):
  """Initial parameters of every encoder and decoder, and the optimiser state."""
  init_rng, state_rng = jax.random.split(rng)
  inputs = {m: jnp.zeros((2,) + MODALITY_SHAPES[m]) for m in MODALITY_SHAPES}
  variables = model.init({'params': init_rng, 'dropout': init_rng, 'latent': init_rng},
                         inputs, method=model.init_all)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=tx.init(params), rng=state_rng)


def make_metrics_collection(config, train):
  """A clu Collection of per-pair averages (built inside the jitted steps)."""
  names = []
  for pair in config.pairs:
    if train:
      names += [_metric_key(pair, n) for n in ('loss', 'recon_loss', 'kl')]
    elif pair['target'] == 'pose_3d':
      names += [_metric_key(pair, n) for n in ('mpjpe', 'p_mpjpe')]
    else:
      names += [_metric_key(pair, 'error_px')]
  if train:
    names += ['loss', 'beta_scale']
  return clu_metrics.Collection.create(
      **{n: clu_metrics.Average.from_output(n) for n in names})


def _pair_losses(model, variables, batch, pair, rngs, train):
  """Reconstruction and KL losses of one encoder->decoder pair on a batch."""
  out, updates = model.apply(variables, batch[pair['source']], source=pair['source'],
                             target=pair['target'], train=train, rngs=rngs,
                             mutable=['batch_stats'])
  recon = losses.mse_loss(out['recon'], batch[pair['target']])
  kl = losses.gaussian_kl_loss(out['mean'], out['logvar'],
                               int(np.prod(MODALITY_SHAPES[pair['target']])))
  return recon, kl, updates['batch_stats']


def train_step(state, batch, *, model, tx, config, beta_fn, collection):
  """One optimiser step on a global batch, all configured pairs summed in the loss."""
  step_rng = jax.random.fold_in(state.rng, state.step)
  dropout_rng, latent_rng = jax.random.split(step_rng)
  beta_scale = beta_fn(state.step)

  def loss_fn(params):
    batch_stats = state.batch_stats
    total, logs = 0.0, {}
    for i, pair in enumerate(config.pairs):
      rngs = {'dropout': jax.random.fold_in(dropout_rng, i),
              'latent': jax.random.fold_in(latent_rng, i)}
      recon, kl, batch_stats = _pair_losses(
          model, {'params': params, 'batch_stats': batch_stats}, batch, pair, rngs, True)
      beta = 0.0 if config.deterministic else pair['beta'] * beta_scale
      loss = pair['weight'] * (recon + beta * kl)
      total += loss
      logs.update({_metric_key(pair, 'loss'): loss, _metric_key(pair, 'recon_loss'): recon,
                   _metric_key(pair, 'kl'): kl})
    return total, (batch_stats, logs)

  (loss, (batch_stats, logs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state)
  step_metrics = collection.single_from_model_output(loss=loss, beta_scale=beta_scale, **logs)
  return new_state, step_metrics


def make_train_chunk(model, tx, config, beta_fn, batch_sharding):
  """jit of `num_steps` train steps over slices of an epoch's permutation (one lax.scan)."""
  collection = make_metrics_collection(config, train=True)
  step_fn = functools.partial(train_step, model=model, tx=tx, config=config,
                              beta_fn=beta_fn, collection=collection)
  batch_size = config.batch_size

  @functools.partial(jax.jit, static_argnames='num_steps', donate_argnums=0)
  def train_chunk(state, data, perm, first_step, num_steps):
    def body(carry, i):
      state, step_metrics, first_bad = carry
      idx = jax.lax.dynamic_slice_in_dim(perm, (first_step + i) * batch_size, batch_size)
      batch = {k: jax.lax.with_sharding_constraint(jnp.take(v, idx, axis=0), batch_sharding)
               for k, v in data.items()}
      new_state, new_metrics = step_fn(state, batch)
      loss = new_metrics.loss.total
      first_bad = jnp.where((first_bad < 0) & ~jnp.isfinite(loss), state.step, first_bad)
      return (new_state, step_metrics.merge(new_metrics), first_bad), None

    init = (state, collection.empty(), jnp.array(-1, jnp.int32))
    (state, chunk_metrics, first_bad), _ = jax.lax.scan(body, init, jnp.arange(num_steps))
    return state, chunk_metrics, first_bad

  return train_chunk


def make_eval_fn(model, config, stats, replicated):
  """jit of the evaluation of every pair on a whole (padded) split, in batches.

  Returns per-pose errors in mm for pairs ending in 3D (MPJPE over 17 joints
  with the root included, and P-MPJPE) and per-joint errors, and the mean
  2D reconstruction error in px for pairs ending in 2D.
  """
  eval_batch = config.eval_batch_size
  mean_3d, std_3d = stats['pose_3d_mean'], stats['pose_3d_std']
  mean_2d, std_2d = stats['pose_2d_mean'], stats['pose_2d_std']

  @functools.partial(jax.jit, out_shardings=replicated)
  def evaluate(state, data):
    variables = {'params': state.params, 'batch_stats': state.batch_stats}
    n = data['valid'].shape[0]
    batched = jax.tree.map(lambda v: v.reshape((n // eval_batch, eval_batch) + v.shape[1:]),
                           data)

    def per_batch(batch):
      out = {}
      for pair in config.pairs:
        pred = model.apply(variables, batch[pair['source']], source=pair['source'],
                           target=pair['target'], train=False)['recon']
        name = pair_name(pair)
        if pair['target'] == 'pose_3d':
          pred_mm = metrics.add_root(metrics.denormalize(pred, mean_3d, std_3d))
          out[f'{name}/mpjpe'] = metrics.mpjpe(pred_mm, batch['pose_3d_mm'])
          out[f'{name}/p_mpjpe'] = metrics.p_mpjpe(pred_mm, batch['pose_3d_mm'])
          out[f'{name}/per_joint'] = metrics.per_joint_error(pred_mm, batch['pose_3d_mm'])
        else:
          pred_px = metrics.denormalize(pred, mean_2d, std_2d)
          target_px = metrics.denormalize(batch['pose_2d'], mean_2d, std_2d)
          out[f'{name}/error_px'] = jnp.mean(
              jnp.linalg.norm(pred_px - target_px, axis=-1), axis=-1)
      return out

    per_pose = jax.lax.map(per_batch, batched)
    per_pose = jax.tree.map(lambda v: v.reshape((n,) + v.shape[2:]), per_pose)
    return per_pose, data['action'], data['valid']

  return evaluate


def summarize_eval(per_pose, actions, valid):
  """Host-side tables of one evaluation: per-action means, mean over actions, per joint."""
  valid = np.asarray(valid, bool)
  actions = np.asarray(actions)[valid]
  summary = {}
  for key, values in per_pose.items():
    values = np.asarray(values)[valid]
    if key.endswith('/per_joint'):
      summary[key] = values.mean(axis=0)
      continue
    table = metrics.action_table(jnp.asarray(values), jnp.asarray(actions),
                                 num_actions=len(skeleton.ACTIONS))
    summary[key] = {'per_action': np.asarray(table['per_action']),
                    'mean_over_actions': float(table['mean_over_actions']),
                    'mean_over_poses': float(values.mean())}
  return summary


def _global_array(local, sharding):
  """A global array from this process's rows (identical row counts on every process)."""
  global_shape = (local.shape[0] * jax.process_count(),) + local.shape[1:]
  return jax.make_array_from_process_local_data(sharding, local, global_shape)


def _equal_local_rows(n_local, multiple, pad):
  """Rows every process keeps (pad=False: the minimum) or pads to (pad=True: the maximum)."""
  counts = multihost_utils.process_allgather(np.array(n_local)) if jax.process_count() > 1 \
      else np.array([n_local])
  n = int(counts.max() if pad else counts.min())
  return (-(-n // multiple) * multiple) if pad else (n // multiple) * multiple


def load_pose_data(config, mesh):
  """Normalised train and test poses as global arrays sharded over the `data` axis."""
  builder = input_pipeline.get_builder(config.dataset, config.data_dir)
  if config.dataset.startswith('h36m_synthetic'):
    logging.info('Training on the synthetic stand-in %s: its numbers are not Human3.6M '
                 'numbers. Set --config.dataset=h36m/poses for your own build.', config.dataset)
  stats = input_pipeline.normalization_stats(builder)
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  local_devices = jax.local_device_count()
  out = {}
  for split in ('train', 'test'):
    arrays = input_pipeline.load_pose_arrays(builder, split)
    n = len(arrays['pose_3d'])
    data = {
        'pose_2d': (arrays['pose_2d'][:, 1:] - stats['pose_2d_mean']) / stats['pose_2d_std'],
        'pose_3d': (arrays['pose_3d'][:, 1:] - stats['pose_3d_mean']) / stats['pose_3d_std'],
    }
    if split == 'train':
      keep = _equal_local_rows(n, local_devices, pad=False)
      data = {k: v[:keep] for k, v in data.items()}
    else:
      per_process_batch = config.eval_batch_size // jax.process_count()
      rows = _equal_local_rows(n, np.lcm(per_process_batch, local_devices), pad=True)
      data.update(pose_3d_mm=arrays['pose_3d'], action=arrays['action'],
                  camera_index=arrays['camera_index'], valid=np.ones(n, bool))
      data = {k: np.concatenate([v, np.zeros((rows - n,) + v.shape[1:], v.dtype)])
              for k, v in data.items()}
    data = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in data.items()}
    out[split] = {k: _global_array(v, sharding) for k, v in data.items()}
  return out['train'], out['test'], stats


def make_data_mesh(devices=None):
  """A 1D mesh over all devices (or `devices`) with one `data` axis, sharded by `jit`."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


class _Preemption:
  """Notes a SIGTERM (preemptible TPU VMs) so the loop saves and stops after the current call."""

  def __init__(self):
    self.requested = False
    try:
      signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # Not the main thread (e.g. a notebook worker): no handler.
      pass

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint after the current steps.')
    self.requested = True


def checkpoint_manager(workdir, config):
  """Orbax manager keeping the latest N checkpoints and the best by test MPJPE."""
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=config.keep_checkpoints),
      ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m['mpjpe'], reverse=True, n=1,
                                    keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options)


def _best_metric(config, summary):
  """Mean-over-actions MPJPE (mm) of the first pair ending in 3D, for checkpoint ranking."""
  for pair in config.pairs:
    if pair['target'] == 'pose_3d':
      return summary[f'{pair_name(pair)}/mpjpe']['mean_over_actions']
  return None


def _write_eval(writer, step, summary):
  scalars = {}
  for key, value in summary.items():
    if isinstance(value, dict):
      scalars[f'eval/{key}'] = value['mean_over_actions']
  writer.write_scalars(step, scalars)
  return scalars


def format_results(summary):
  """The per-action MPJPE / P-MPJPE table of every pair ending in 3D, as Markdown."""
  columns = {}
  for key, value in summary.items():
    if isinstance(value, dict) and (key.endswith('/mpjpe') or key.endswith('/p_mpjpe')):
      name, metric = key.rsplit('/', 1)
      label = f'{name} {"MPJPE" if metric == "mpjpe" else "P-MPJPE"}'
      columns[label] = value['per_action']
  return metrics.format_action_table(columns, skeleton.ACTIONS) if columns else ''


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains the configured pairs, evaluates on the test split, checkpoints; returns the final eval summary."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  if config.pair_schedule != 'sum':
    raise ValueError(f"pair_schedule must be 'sum' for pose pairs, got {config.pair_schedule!r}")
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  mesh = make_data_mesh()
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  batch_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  if config.batch_size % jax.device_count():
    raise ValueError(f'batch_size {config.batch_size} is not divisible by the '
                     f'{jax.device_count()} devices.')

  train_data, test_data, stats = load_pose_data(config, mesh)
  num_train = train_data['pose_3d'].shape[0]
  steps_per_epoch = num_train // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f'batch_size {config.batch_size} exceeds the {num_train} training poses.')
  # Each jitted call runs `steps_per_call` steps; an epoch is a whole number of calls.
  calls_per_epoch = -(-steps_per_epoch // config.steps_per_call)
  steps_per_call = steps_per_epoch // calls_per_epoch
  steps_per_epoch = steps_per_call * calls_per_epoch
  num_steps = steps_per_epoch * config.num_epochs
  logging.info('%d training poses, %d steps/epoch of %d (%d jitted calls of %d steps), %d epochs.',
               num_train, steps_per_epoch, config.batch_size, calls_per_epoch, steps_per_call,
               config.num_epochs)

  model = create_model(config)
  tx = create_optimizer(config, steps_per_epoch)
  rng = jax.random.PRNGKey(config.seed)
  state = jax.device_put(create_train_state(config, model, tx, rng), replicated)
  beta_fn = schedules.beta_schedule(
      config.beta_schedule.kind, 1.0, num_steps,
      warmup_steps=int(config.beta_schedule.warmup_epochs * steps_per_epoch),
      num_cycles=config.beta_schedule.num_cycles, ratio=config.beta_schedule.ratio)

  manager = checkpoint_manager(workdir, config)
  latest = manager.latest_step()
  if latest is not None:
    logging.info('Resuming from the checkpoint at step %d in %s', latest, manager.directory)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
  start_step = int(state.step)

  train_chunk = make_train_chunk(model, tx, config, beta_fn, batch_sharding)
  evaluate = make_eval_fn(model, config, stats, replicated)
  epoch_perm = jax.jit(lambda key, epoch: jax.random.permutation(
      jax.random.fold_in(key, epoch), num_train), out_shardings=replicated)
  perm_key = jax.random.fold_in(rng, 1)

  hooks = [periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                           every_secs=config.log_every_secs)]
  if config.profile and jax.process_index() == 0:
    # Traces the second jitted call of this run (the first one compiles).
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=steps_per_call,
                                          first_profile=start_step + steps_per_call))
  preemption = _Preemption()
  summary = None
  step = start_step
  if start_step < num_steps:
    logging.info('Compiling the train step (first call only).')
  while step < num_steps:
    epoch, call = divmod(step, steps_per_epoch)
    call //= steps_per_call
    perm = epoch_perm(perm_key, epoch)
    for call in range(call, calls_per_epoch):
      with hooks[0].timed('train', wait_jax_async_dispatch=False):
        state, chunk_metrics, first_bad = train_chunk(state, train_data, perm,
                                                      call * steps_per_call, steps_per_call)
        first_bad = int(first_bad)
      step += steps_per_call
      if first_bad >= 0:
        manager.wait_until_finished()
        raise FloatingPointError(
            f'Non-finite loss at step {first_bad}; stopped. The last good checkpoint is '
            f'step {manager.latest_step()} in {manager.directory}.')
      for hook in hooks:
        hook(step)
      train_scalars = {f'train/{k}': v for k, v in chunk_metrics.compute().items()}
      writer.write_scalars(step, train_scalars)
      if preemption.requested:
        break
    end_of_epoch = step % steps_per_epoch == 0
    epoch_done = step // steps_per_epoch
    do_eval = end_of_epoch and (epoch_done % config.eval_every_epochs == 0 or step == num_steps)
    save_metrics = None
    if do_eval:
      with hooks[0].timed('eval'):
        summary = summarize_eval(*evaluate(state, test_data))
      scalars = _write_eval(writer, step, summary)
      logging.info('Epoch %d (step %d): %s', epoch_done, step,
                   ', '.join(f'{k} {v:.1f}' for k, v in scalars.items()))
      best = _best_metric(config, summary)
      save_metrics = {'mpjpe': best} if best is not None else None
    if preemption.requested or (end_of_epoch and (
        epoch_done % config.checkpoint_every_epochs == 0 or step == num_steps)):
      manager.save(step, args=ocp.args.StandardSave(state), metrics=save_metrics)
    if preemption.requested:
      manager.wait_until_finished()
      logging.warning('Stopped at step %d after SIGTERM; rerun the same command to resume.', step)
      return summary
  manager.wait_until_finished()
  if summary is None:
    summary = summarize_eval(*evaluate(state, test_data))
  table = format_results(summary)
  if table and jax.process_index() == 0:
    print(table, flush=True)
    with open(os.path.join(workdir, 'results.md'), 'w') as f:
      f.write(table + '\n')
  writer.flush()
  return summary
