"""The optimiser of a config: optax optimiser, learning-rate schedule, clipping, frozen stages."""

import functools

import jax
import optax

from hpe_jax import modalities
from hpe_jax.models import factory
from hpe_jax.models import pretrained


def _param_labels(params, stages):
  """'trainable' / 'frozen' for every parameter: frozen stages of the image encoder only."""
  return {k: (pretrained.freeze_labels(v, stages) if k == f'encoders_{modalities.IMAGE}'
              else jax.tree.map(lambda _: 'trainable', v)) for k, v in params.items()}


def learning_rate_schedule(config, steps_per_epoch):
  """The configured schedule ('constant', 'exponential' or 'cosine'), after a linear warm-up."""
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
  return schedule


def create_optimizer(config, steps_per_epoch):
  """The configured optax optimiser ('adam', 'adamw' or 'sgd'), schedule, clipping and
  frozen image-encoder stages."""
  opt = config.optimizer
  schedule = learning_rate_schedule(config, steps_per_epoch)
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
  stages = factory.trainable_stages(config)
  if modalities.IMAGE in {p.source for p in modalities.pairs(config)} and stages != 'all':
    optimizer = optax.multi_transform(
        {'trainable': optimizer, 'frozen': optax.set_to_zero()},
        functools.partial(_param_labels, stages=stages))
  return optimizer
