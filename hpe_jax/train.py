"""Training and evaluation of cross-modal VAEs: RGB image, 2D pose and 3D pose in one latent space.

Two data paths share the model, the steps, the metrics and the checkpoints:
- pose-only configs (2D->3D lifting): the whole pose dataset lives on the
  devices, sharded along the mesh's `data` axis; an epoch is a few jitted
  calls, each a `lax.scan` over many train steps, so a step costs no host
  round trip;
- configs with the image modality: batches of crops and poses stream from the
  TFDS records through `tf.data` (parallel decoding and augmentation, one batch
  ahead on the devices); each group of pairs has its own jitted step, compiled
  once.
Programs are written for the global batch and partitioned by `jit` with
`NamedSharding`: the same code runs on one CPU, several GPUs or a multi-host
TPU slice, and gradients and BatchNorm statistics are reduced over the global
batch.
"""

import collections
import functools
import json
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
from hpe_jax.models import image_decoder
from hpe_jax.models import pose_mlp
from hpe_jax.models import pretrained
from hpe_jax.models import resnet
from hpe_jax.models import vae
from tfds_h36m import skeleton

# Model inputs/outputs of the pose modalities: the 16 non-root joints, normalised.
MODALITY_SHAPES = {'pose_2d': (16, 2), 'pose_3d': (16, 3)}
IMAGE = 'image'  # RGB crops, (image_size, image_size, 3), uint8 in the data
SHORT_NAMES = {IMAGE: 'rgb', 'pose_2d': '2d', 'pose_3d': '3d'}
PAIR_SCHEDULES = ('sum', 'round_robin', 'per_epoch')
# The training split's normalisation stats, saved in the workdir so a trained model
# lifts keypoints without its dataset.
NORMALIZATION_FILE = 'normalization.json'
STATS_KEYS = ('pose_2d_mean', 'pose_2d_std', 'pose_3d_mean', 'pose_3d_std')


class TrainState(flax.struct.PyTreeNode):
  """Everything a resumed run needs: parameters, BatchNorm statistics, optimiser and RNG."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array


def pair_name(pair):
  """'rgb->3d' for image -> pose_3d, '2d->3d' for pose_2d -> pose_3d."""
  return f'{SHORT_NAMES[pair["source"]]}->{SHORT_NAMES[pair["target"]]}'


def _metric_key(pair, name):
  return f'{pair["source"]}_to_{pair["target"]}_{name}'


def modality_shape(config, modality):
  """Per-example shape of a modality as the model sees it."""
  if modality == IMAGE:
    return (config.image_size, config.image_size, 3)
  if modality not in MODALITY_SHAPES:
    raise ValueError(f'Unknown modality {modality!r}; known: {sorted(SHORT_NAMES)}')
  return MODALITY_SHAPES[modality]


def modalities(config):
  """Every modality that some configured pair encodes or decodes, sorted."""
  return sorted({p[k] for p in config.pairs for k in ('source', 'target')})


def uses_images(config):
  return IMAGE in modalities(config)


def compute_dtype(config):
  """bf16 compute on GPU/TPU and f32 on CPU for model.dtype 'auto'; parameters stay f32."""
  name = config.model.get('dtype', 'float32')
  if name == 'auto':
    name = 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'
  if name not in ('float32', 'bfloat16'):
    raise ValueError(f"model.dtype must be 'auto', 'float32' or 'bfloat16', got {name!r}")
  return jnp.dtype(name)


def model_input(batch, modality):
  """The model's input of a modality: normalised poses as they are, images normalised
  like the encoder's ImageNet pretraining (the data carries uint8 to save transfers)."""
  if modality == IMAGE:
    return resnet.normalize_image(batch[IMAGE])
  return batch[modality]


def create_model(config):
  """A CrossModalVAE with an encoder per source and a decoder per target modality."""
  m = config.model
  dtype = compute_dtype(config)
  common = dict(hidden=m.hidden, num_blocks=m.num_blocks, dropout=m.dropout,
                use_batch_norm=m.batch_norm, activation=m.activation, dtype=dtype)
  for pair in config.pairs:
    for key in ('source', 'target'):
      modality_shape(config, pair[key])
  encoders, decoders = {}, {}
  for source in sorted({p['source'] for p in config.pairs}):
    if source == IMAGE:
      stages = _trainable_stages(config)
      frozen = () if stages == 'all' else tuple(
          s for s in pretrained.STAGES if s not in stages and s != 'heads')
      encoders[source] = resnet.ImageEncoder(latent_dim=m.latent_dim, dtype=dtype,
                                             frozen_stages=frozen)
    else:
      encoders[source] = pose_mlp.PoseEncoder(latent_dim=m.latent_dim, **common)
  for target in sorted({p['target'] for p in config.pairs}):
    if target == IMAGE:
      decoders[target] = image_decoder.ImageDecoder(
          image_size=config.image_size, base_channels=m.image_decoder_channels,
          activation=m.activation, dtype=dtype)
    else:
      num_joints, joint_dim = MODALITY_SHAPES[target]
      decoders[target] = pose_mlp.PoseDecoder(num_joints=num_joints, joint_dim=joint_dim,
                                              **common)
  return vae.CrossModalVAE(encoders=encoders, decoders=decoders,
                           logvar_clip=m.logvar_clip, deterministic_latent=config.deterministic)


def _trainable_stages(config):
  """The image encoder's stages that train ('all', or a comma-separated list of names)."""
  stages = config.get('pretrained', {}).get('trainable_stages', 'all')
  return stages if stages == 'all' else tuple(s.strip() for s in stages.split(','))


def _param_labels(params, stages):
  """'trainable' / 'frozen' for every parameter: frozen stages of the image encoder only."""
  return {k: (pretrained.freeze_labels(v, stages) if k == f'encoders_{IMAGE}'
              else jax.tree.map(lambda _: 'trainable', v)) for k, v in params.items()}


def create_optimizer(config, steps_per_epoch):
  """The configured optax optimiser ('adam', 'adamw' or 'sgd'), schedule, clipping and
  frozen image-encoder stages."""
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
    optimizer = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), optimizer)
  stages = _trainable_stages(config)
  if IMAGE in {p['source'] for p in config.pairs} and stages != 'all':
    optimizer = optax.multi_transform(
        {'trainable': optimizer, 'frozen': optax.set_to_zero()},
        functools.partial(_param_labels, stages=stages))
  return optimizer


def create_train_state(config, model, tx, rng):
  """Initial parameters of every encoder and decoder (ImageNet weights for the image
  encoder when `config.pretrained.path` names a file), and the optimiser state."""
  init_rng, state_rng = jax.random.split(rng)
  inputs = {m: jnp.zeros((2,) + modality_shape(config, m)) for m in modalities(config)}
  variables = model.init({'params': init_rng, 'dropout': init_rng, 'latent': init_rng}, inputs,
                         method=model.init_all)
  params, batch_stats = variables['params'], variables.get('batch_stats', {})
  key = f'encoders_{IMAGE}'
  if key in params:
    path = config.get('pretrained', {}).get('path')
    if path:
      loaded = pretrained.apply_pretrained(
          {'params': params[key], 'batch_stats': batch_stats[key]},
          pretrained.load_resnet18(path))
      params = {**params, key: loaded['params']}
      batch_stats = {**batch_stats, key: loaded['batch_stats']}
      logging.info('Image encoder: ImageNet weights from %s; trainable stages: %s.', path,
                   _trainable_stages(config))
    else:
      logging.info('Image encoder: random initialisation (set config.pretrained.path to a '
                   'torchvision resnet18 .pth or .safetensors file for ImageNet weights).')
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=tx.init(params), rng=state_rng)


def make_metrics_collection(pairs):
  """A clu Collection of the train losses of `pairs`, averaged (built inside the jitted steps)."""
  names = [_metric_key(pair, n) for pair in pairs for n in ('loss', 'recon_loss', 'kl')]
  names += ['loss', 'beta_scale']
  return clu_metrics.Collection.create(
      **{n: clu_metrics.Average.from_output(n) for n in names})


def _pair_losses(model, variables, batch, pair, rngs, train, config):
  """Reconstruction (MSE for poses, L1 for images) and KL losses of one pair on a batch."""
  out, updates = model.apply(variables, model_input(batch, pair['source']),
                             source=pair['source'], target=pair['target'], train=train,
                             rngs=rngs, mutable=['batch_stats'])
  target = model_input(batch, pair['target'])
  if pair['target'] == IMAGE:
    recon = losses.l1_loss(out['recon'], target)
  else:
    recon = losses.mse_loss(out['recon'], target)
  kl = losses.gaussian_kl_loss(out['mean'], out['logvar'],
                               int(np.prod(modality_shape(config, pair['target']))))
  return recon, kl, updates['batch_stats']


def train_step(state, batch, *, model, tx, config, pairs, beta_fn, collection):
  """One optimiser step on a global batch; the losses of `pairs` are summed."""
  step_rng = jax.random.fold_in(state.rng, state.step)
  dropout_rng, latent_rng = jax.random.split(step_rng)
  beta_scale = beta_fn(state.step)

  def loss_fn(params):
    batch_stats = state.batch_stats
    total, logs = 0.0, {}
    for pair in pairs:
      i = config.pairs.index(pair)  # Each pair's RNG stream is the same under every schedule.
      rngs = {'dropout': jax.random.fold_in(dropout_rng, i),
              'latent': jax.random.fold_in(latent_rng, i)}
      recon, kl, batch_stats = _pair_losses(
          model, {'params': params, 'batch_stats': batch_stats}, batch, pair, rngs, True, config)
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
  collection = make_metrics_collection(config.pairs)
  step_fn = functools.partial(train_step, model=model, tx=tx, config=config, pairs=config.pairs,
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


def eval_outputs(model, variables, batch, pairs, stats):
  """Per-pose errors of every pair on a batch (posterior means, no sampling).

  Pairs ending in 3D: MPJPE over 17 joints with the root included, P-MPJPE
  and per-joint errors, in mm; in 2D: mean joint error in px; in images: mean
  absolute error of the normalised image (the L1 loss's units).
  """
  out = {}
  for pair in pairs:
    pred = model.apply(variables, model_input(batch, pair['source']), source=pair['source'],
                       target=pair['target'], train=False)['recon']
    name = pair_name(pair)
    if pair['target'] == 'pose_3d':
      errors = metrics.pose_errors(metrics.pose_3d_mm(pred, stats), batch['pose_3d_mm'])
      out.update({f'{name}/{k}': v for k, v in errors.items()})
    elif pair['target'] == 'pose_2d':
      mean_2d, std_2d = stats['pose_2d_mean'], stats['pose_2d_std']
      out[f'{name}/error_px'] = jnp.mean(jnp.linalg.norm(
          metrics.denormalize(pred, mean_2d, std_2d)
          - metrics.denormalize(batch['pose_2d'], mean_2d, std_2d), axis=-1), axis=-1)
    else:
      out[f'{name}/l1'] = jnp.mean(jnp.abs(pred - model_input(batch, IMAGE)), axis=(1, 2, 3))
  return out


def make_eval_fn(model, config, stats, replicated):
  """jit of the evaluation of every pair on a whole (padded) device-resident split, in batches."""
  eval_batch = config.eval_batch_size

  @functools.partial(jax.jit, out_shardings=replicated)
  def evaluate(state, data):
    variables = variables_of(state)
    n = data['valid'].shape[0]
    batched = jax.tree.map(lambda v: v.reshape((n // eval_batch, eval_batch) + v.shape[1:]),
                           data)
    per_pose = jax.lax.map(
        lambda batch: eval_outputs(model, variables, batch, config.pairs, stats), batched)
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


def eval_split(config):
  """The split evaluated during training: 'test' unless config.eval_split says otherwise
  (e.g. 'train', to see how well a short run fits its data)."""
  return config.get('eval_split', 'test')


def load_pose_data(config, mesh):
  """Normalised training and evaluation (`eval_split`) poses as global arrays sharded over
  the `data` axis."""
  builder = input_pipeline.get_builder(config.dataset, config.data_dir)
  _log_dataset(config)
  stats = input_pipeline.normalization_stats(builder)
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  local_devices = jax.local_device_count()
  out = {}
  for split in ('train', 'eval'):
    arrays = input_pipeline.load_pose_arrays(builder, 'train' if split == 'train'
                                             else eval_split(config))
    n = len(arrays['pose_3d'])
    data = {m: metrics.normalize(arrays[m], stats, m) for m in ('pose_2d', 'pose_3d')}
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
  return out['train'], out['eval'], stats


def maybe_initialize_distributed():
  """Joins a multi-host job when the environment describes one (TPU VMs, SLURM, or explicit
  JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID)."""
  explicit = os.environ.get('JAX_COORDINATOR_ADDRESS')
  tpu_pod = os.environ.get('TPU_WORKER_HOSTNAMES', '').count(',') > 0
  slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  if explicit:
    jax.distributed.initialize(
        coordinator_address=explicit,
        num_processes=int(os.environ['JAX_NUM_PROCESSES']),
        process_id=int(os.environ['JAX_PROCESS_ID']))
  elif tpu_pod or slurm:
    jax.distributed.initialize()


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
  # best_fn makes Orbax store each checkpoint's metrics and answer `best_step()`.
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True,
                                         best_fn=lambda m: m['mpjpe'], best_mode='min')
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


def pair_groups(config):
  """Groups of pairs that share one jitted train step: all pairs ('sum') or one each."""
  if config.pair_schedule not in PAIR_SCHEDULES:
    raise ValueError(f'pair_schedule must be one of {PAIR_SCHEDULES}, got '
                     f'{config.pair_schedule!r}')
  if config.pair_schedule == 'sum':
    return [list(config.pairs)]
  return [[pair] for pair in config.pairs]


def scheduled_group(config, step, steps_per_epoch):
  """Index (into `pair_groups(config)`) of the group trained at global `step`.

  'sum': always the one group; 'round_robin': the pairs in turn, one per step;
  'per_epoch': the pairs in turn, one per epoch.
  """
  num_groups = len(pair_groups(config))
  if config.pair_schedule == 'round_robin':
    return step % num_groups
  if config.pair_schedule == 'per_epoch':
    return (step // steps_per_epoch) % num_groups
  return 0


class CompileCounter:
  """Counts XLA compilations between `start()` and `stop()` (jax.monitoring), to catch
  recompiles after warm-up."""

  def __init__(self):
    self.count = 0
    self.active = False

  def _listener(self, event, duration_secs, **kwargs):
    del duration_secs, kwargs
    if event == '/jax/core/compile/backend_compile_duration':
      self.count += 1

  def start(self):
    if not self.active:
      jax.monitoring.register_event_duration_secs_listener(self._listener)
      self.active = True

  def stop(self):
    if self.active:
      jax.monitoring.unregister_event_duration_listener(self._listener)
      self.active = False


def _device_batches(dataset, sharding):
  """Global device arrays from a `tf.data` dataset of this process's batches, kept one batch
  ahead so the host-to-device copy overlaps the running step."""
  ahead = collections.deque()
  for local in dataset.as_numpy_iterator():
    ahead.append({k: _global_array(v, sharding) for k, v in local.items()})
    if len(ahead) == 2:
      yield ahead.popleft()
  yield from ahead


def _image_split_batches(config, builder, split, stats, *, batch_size, train, epoch=0,
                         start_batch=0):
  augment = config.get('augment')
  return input_pipeline.image_batches(
      builder, split, batch_size=batch_size // jax.process_count(),
      image_size=config.image_size, stats=stats, train=train, seed=config.seed, epoch=epoch,
      start_batch=start_batch, augment_config=augment if train and augment else None)


def make_batch_eval_fn(model, config, stats, replicated):
  """jit of the evaluation of every pair on one streamed batch (outputs on every host)."""

  @functools.partial(jax.jit, out_shardings=replicated)
  def evaluate_batch(state, batch):
    variables = variables_of(state)
    return (eval_outputs(model, variables, batch, config.pairs, stats), batch['action'],
            batch['valid'])

  return evaluate_batch


def evaluate_streamed(evaluate_batch, state, config, builder, stats, batch_sharding):
  """Evaluates every pair on the `eval_split` streamed in padded batches; returns
  `summarize_eval`'s tables and the first batch (for pictures)."""
  per_pose, actions, valid, first = collections.defaultdict(list), [], [], None
  # Every process reads the same number of (padded) batches, so the jitted steps stay in step.
  dataset = _image_split_batches(config, builder, eval_split(config), stats,
                                 batch_size=config.eval_batch_size, train=False)
  for batch in _device_batches(dataset, batch_sharding):
    first = batch if first is None else first
    out, batch_actions, batch_valid = evaluate_batch(state, batch)  # stays on the device
    for key, value in out.items():
      per_pose[key].append(value)
    actions.append(batch_actions)
    valid.append(batch_valid)
  per_pose, actions, valid = jax.device_get((dict(per_pose), actions, valid))
  per_pose = {k: np.concatenate(v) for k, v in per_pose.items()}
  return summarize_eval(per_pose, np.concatenate(actions), np.concatenate(valid)), first


def variables_of(state):
  """The model variables of a TrainState, as `model.apply` takes them."""
  return {'params': state.params, 'batch_stats': state.batch_stats}


def make_image_generator(model, replicated, num_images=8):
  """jit of (variables, batch) -> a picture of the shared latent space: input crops, then images decoded from the
  posterior mean of every encoder (rgb->rgb reconstructions, 2d->rgb and 3d->rgb
  cross-generations). Returns (rows (R, num_images, H, W, 3) uint8, row labels)."""
  sources = [s for s in (IMAGE, 'pose_2d', 'pose_3d') if s in model.encoders]
  labels = ['input'] + [f'{SHORT_NAMES[s]}->rgb' for s in sources]

  @functools.partial(jax.jit, out_shardings=replicated)
  def generate(variables, batch):
    rows = [batch[IMAGE][:num_images]]
    for source in sources:
      mean, _ = model.apply(variables, model_input(batch, source)[:num_images], source, False,
                            method=model.encode)
      image = model.apply(variables, mean, IMAGE, False, method=model.decode)
      rows.append(resnet.denormalize_image(image))
    return jnp.stack(rows)

  return generate, labels


def image_grid(rows):
  """(R, N, H, W, 3) uint8 -> one (R*H, N*W, 3) picture, rows top to bottom."""
  r, n, h, w, c = rows.shape
  return rows.transpose(0, 2, 1, 3, 4).reshape(r * h, n * w, c)


def save_image_grid(path, rows, labels):
  """The picture of `make_image_generator` as a PNG with its row labels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  num_rows, num_images = rows.shape[:2]
  fig, axes = plt.subplots(num_rows, num_images, figsize=(1.4 * num_images, 1.5 * num_rows),
                           squeeze=False)
  for i in range(num_rows):
    for j in range(num_images):
      axes[i, j].imshow(rows[i, j])
      axes[i, j].set_xticks([])
      axes[i, j].set_yticks([])
    axes[i, 0].set_ylabel(labels[i], fontsize=9)
  fig.suptitle('Test crops, their reconstructions and images generated from 2D/3D poses',
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _check_finite(losses_window, first_step, manager):
  """Raises naming the first step whose loss is not finite (the last good checkpoint stays)."""
  if not losses_window:
    return
  values = np.asarray(jnp.stack(losses_window))
  bad = np.flatnonzero(~np.isfinite(values))
  if bad.size:
    manager.wait_until_finished()
    raise FloatingPointError(
        f'Non-finite loss at step {first_step + int(bad[0])}; stopped. The last good '
        f'checkpoint is step {manager.latest_step()} in {manager.directory}.')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains the configured pairs, evaluates on the test split, checkpoints; returns the
  final eval summary (with 'compiles_after_first_epoch', which should be 0)."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  groups = pair_groups(config)
  streamed = uses_images(config)
  if not streamed and len(groups) > 1:
    raise ValueError("Pose-only configs train every pair in one step: set pair_schedule "
                     f"'sum' (got {config.pair_schedule!r}).")
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  mesh = make_data_mesh()
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  batch_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  if config.batch_size % jax.device_count() or config.eval_batch_size % jax.device_count():
    raise ValueError(f'batch_size {config.batch_size} and eval_batch_size '
                     f'{config.eval_batch_size} must divide by the {jax.device_count()} devices.')

  if streamed:
    builder = input_pipeline.get_builder(config.dataset, config.data_dir)
    _log_dataset(config)
    stats = input_pipeline.normalization_stats(builder)
    steps_per_epoch = input_pipeline.batches_per_epoch(  # the same on every process
        builder, 'train', config.batch_size // jax.process_count(), train=True)
    steps_per_call = 1
    if steps_per_epoch == 0:
      raise ValueError(f'batch_size {config.batch_size} exceeds the training split.')
    logging.info('%d steps/epoch of %d (%s) at %d px, %d epochs; pairs %s, schedule %r.',
                 steps_per_epoch, config.batch_size, config.dataset, config.image_size,
                 config.num_epochs, ', '.join(pair_name(p) for p in config.pairs),
                 config.pair_schedule)
  else:
    train_data, eval_data, stats = load_pose_data(config, mesh)
    num_train = train_data['pose_3d'].shape[0]
    steps_per_epoch = num_train // config.batch_size
    if steps_per_epoch == 0:
      raise ValueError(f'batch_size {config.batch_size} exceeds the {num_train} training poses.')
    # Each jitted call runs `steps_per_call` steps; an epoch is a whole number of calls.
    calls_per_epoch = -(-steps_per_epoch // config.steps_per_call)
    steps_per_call = steps_per_epoch // calls_per_epoch
    steps_per_epoch = steps_per_call * calls_per_epoch
    logging.info('%d training poses, %d steps/epoch of %d (%d jitted calls of %d steps), '
                 '%d epochs.', num_train, steps_per_epoch, config.batch_size, calls_per_epoch,
                 steps_per_call, config.num_epochs)
  num_steps = steps_per_epoch * config.num_epochs
  if jax.process_index() == 0:
    save_normalization(workdir, stats)

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
    try:
      state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      manager.close()
      raise ValueError(
          f'The checkpoint at step {latest} in {manager.directory} does not fit the model '
          'of this config (another model config, or a checkpoint written before '
          'hpe_jax changed its parameters): train into a new --workdir.') from e
  start_step = int(state.step)
  if start_step >= num_steps:
    logging.info('Training is complete (step %d of %d): evaluating the last checkpoint.',
                 start_step, num_steps)

  if streamed:
    evaluate_batch = make_batch_eval_fn(model, config, stats, replicated)
    generate_images = (make_image_generator(model, replicated)
                       if IMAGE in model.decoders else None)

    def evaluate(state):
      summary, first = evaluate_streamed(evaluate_batch, state, config, builder, stats,
                                         batch_sharding)
      pictures = generate_images[0](variables_of(state), first) if generate_images else None
      return summary, pictures
  else:
    evaluate_resident = make_eval_fn(model, config, stats, replicated)

    def evaluate(state):
      return summarize_eval(*evaluate_resident(state, eval_data)), None

  report = periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer,
                                           every_secs=config.log_every_secs)
  hooks = [report]
  if config.profile and jax.process_index() == 0:
    # Traces the steps after the first jitted call of this run (the first one compiles).
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=steps_per_call,
                                          first_profile=start_step + steps_per_call))
  preemption = _Preemption()
  compiles = CompileCounter()
  summary = None
  step = start_step
  if start_step < num_steps and not streamed:
    logging.info('Compiling the train step (first call only).')

  compiled_eval = False

  def warm_evaluate(state):
    """Timed `evaluate`, with its first call (which compiles) kept out of the compile count."""
    nonlocal compiled_eval
    counting = compiles.active
    if not compiled_eval:
      compiles.stop()
    with report.timed('eval'):
      result = evaluate(state)
    if not compiled_eval and counting:
      compiles.start()
    compiled_eval = True
    return result

  pictures = None  # of the latest evaluation

  def end_of_epoch(step):
    """Evaluates and checkpoints as configured; True when training must stop."""
    nonlocal summary, pictures
    epoch_done, in_epoch = divmod(step, steps_per_epoch)
    do_eval = in_epoch == 0 and (epoch_done % config.eval_every_epochs == 0
                                 or step == num_steps)
    save_metrics = None
    if do_eval:
      summary, pictures = warm_evaluate(state)
      scalars = _write_eval(writer, step, summary)
      if pictures is not None:
        writer.write_images(step, {'eval/images': image_grid(np.asarray(pictures))[None]})
      logging.info('Epoch %d (step %d): %s', epoch_done, step,
                   ', '.join(f'{k} {v:.3g}' for k, v in scalars.items()))
      best = _best_metric(config, summary)
      save_metrics = {'mpjpe': best} if best is not None else None
    if preemption.requested or (in_epoch == 0 and (
        epoch_done % config.checkpoint_every_epochs == 0 or step == num_steps)):
      manager.save(step, args=ocp.args.StandardSave(state), metrics=save_metrics)
    if in_epoch == 0 and epoch_done == 1 + start_step // steps_per_epoch:
      compiles.start()  # The train steps compile in the first epoch of a run; count the rest.
    if preemption.requested:
      manager.wait_until_finished()
      logging.warning('Stopped at step %d after SIGTERM; rerun the same command to resume.', step)
    return preemption.requested

  try:
    if streamed:
      steps = [jax.jit(functools.partial(
          train_step, model=model, tx=tx, config=config, pairs=group, beta_fn=beta_fn,
          collection=make_metrics_collection(group)), donate_argnums=0)
               for group in groups]
      log_every = max(int(config.get('log_every_steps', 50)), 1)
      compiled = set()
      while step < num_steps:
        epoch, start_batch = divmod(step, steps_per_epoch)
        dataset = _image_split_batches(config, builder, 'train', stats,
                                       batch_size=config.batch_size, train=True, epoch=epoch,
                                       start_batch=start_batch)
        batches = _device_batches(dataset, batch_sharding)
        window, window_start, window_metrics = [], step, {}
        epoch_start, input_secs = time.time(), 0.0
        while True:
          tick = time.time()
          with report.timed('input', wait_jax_async_dispatch=False):
            batch = next(batches, None)
          input_secs += time.time() - tick
          if batch is None:
            break
          g = scheduled_group(config, step, steps_per_epoch)
          if g not in compiled:
            logging.info('Compiling the train step of %s (first time only).',
                         ' + '.join(pair_name(p) for p in groups[g]))
          state, step_metrics = steps[g](state, batch)
          if g not in compiled:
            jax.block_until_ready(state.step)
            compiled.add(g)
          step += 1
          window.append(step_metrics.loss.total)
          window_metrics[g] = (step_metrics if g not in window_metrics
                               else window_metrics[g].merge(step_metrics))
          for hook in hooks:
            hook(step)
          if step % log_every == 0 or step % steps_per_epoch == 0 or preemption.requested:
            _check_finite(window, window_start, manager)
            scalars = {}
            for group_metrics in window_metrics.values():
              scalars.update({f'train/{k}': v for k, v in group_metrics.compute().items()
                              if k not in ('loss', 'beta_scale')})
            writer.write_scalars(step, scalars)
            window, window_start, window_metrics = [], step, {}
          if preemption.requested:
            break
        if step % steps_per_epoch == 0:
          seconds = time.time() - epoch_start
          logging.info('Epoch %d: %.0f images/s over the epoch; %.0f%% of its time waiting '
                       'for the input pipeline.', step // steps_per_epoch,
                       (steps_per_epoch - start_batch) * config.batch_size / max(seconds, 1e-9),
                       100 * input_secs / max(seconds, 1e-9))
        if end_of_epoch(step):
          return summary
    else:
      train_chunk = make_train_chunk(model, tx, config, beta_fn, batch_sharding)
      epoch_perm = jax.jit(lambda key, epoch: jax.random.permutation(
          jax.random.fold_in(key, epoch), num_train), out_shardings=replicated)
      perm_key = jax.random.fold_in(rng, 1)
      while step < num_steps:
        epoch, call = divmod(step, steps_per_epoch)
        call //= steps_per_call
        perm = epoch_perm(perm_key, epoch)
        for call in range(call, calls_per_epoch):
          with report.timed('train', wait_jax_async_dispatch=False):
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
          writer.write_scalars(step, {f'train/{k}': v
                                      for k, v in chunk_metrics.compute().items()})
          if preemption.requested:
            break
        if end_of_epoch(step):
          return summary
    manager.wait_until_finished()
    if summary is None:  # Nothing was trained in this run: evaluate the restored state.
      summary, pictures = warm_evaluate(state)
  finally:
    compiles.stop()
  if compiles.count:
    logging.warning('%d XLA compilations after the first epoch: something recompiles.',
                    compiles.count)
  summary['compiles_after_first_epoch'] = compiles.count
  table = format_results(summary)
  if jax.process_index() == 0:
    if table:
      print(table, flush=True)
      with open(os.path.join(workdir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    if pictures is not None:  # The last evaluation is of the final state.
      path = os.path.join(workdir, 'eval_images.png')
      save_image_grid(path, np.asarray(pictures), generate_images[1])
      logging.info('Wrote test crops, reconstructions and pose-generated images to %s', path)
  writer.flush()
  return summary


def save_normalization(workdir, stats):
  """Writes the per-coordinate mean/std (px, mm; 16 non-root joints) to
  `workdir/normalization.json`, atomically."""
  path = os.path.join(workdir, NORMALIZATION_FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump({k: np.asarray(stats[k]).tolist() for k in STATS_KEYS}, f)
  os.replace(path + '.tmp', path)


def _log_dataset(config):
  if config.dataset.startswith('h36m_synthetic'):
    logging.info('Training on the synthetic stand-in %s: its numbers are not Human3.6M '
                 'numbers. Set --config.dataset=h36m/images (or h36m/poses) for your own '
                 'build.', config.dataset)
