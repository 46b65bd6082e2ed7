"""Restores a training workdir: its config, model, a chosen checkpoint and the normalisation stats.

A workdir written by `train.train_and_evaluate` holds `config.json` and Orbax
checkpoints in `checkpoints/`. Checkpoints are chosen by 'best' (lowest test
MPJPE among those saved with metrics), 'last' or an integer step.
"""

import dataclasses
import json
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from hpe_jax import input_pipeline
from hpe_jax import train

CONFIG_FILE = 'config.json'
CHECKPOINT_DIR = 'checkpoints'
NORMALIZATION_FILE = train.NORMALIZATION_FILE
STATS_KEYS = train.STATS_KEYS


class CheckpointError(ValueError):
  """A workdir, config or checkpoint that is missing or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class Restored:
  """A restored model: `model.apply(restored.variables, ...)` runs it."""
  workdir: str
  config: ml_collections.ConfigDict
  model: Any
  variables: dict  # {'params', 'batch_stats'}
  step: int
  checkpoint_path: str


def load_config(workdir):
  """The training config saved in `workdir/config.json`, as a ConfigDict."""
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(workdir):
    raise CheckpointError(f'Workdir {workdir} does not exist.')
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise CheckpointError(f'No {CONFIG_FILE} in {workdir}: not a training workdir '
                          '(python -m hpe_jax.main writes it at the start of training).')
  with open(path) as f:
    try:
      return ml_collections.ConfigDict(json.load(f))
    except json.JSONDecodeError as e:
      raise CheckpointError(f'{path} is not valid JSON: {e}') from e


def _manager(checkpoint_dir):
  """A manager that only reads; it ranks checkpoints by their saved 'mpjpe' (lower is better)."""
  options = ocp.CheckpointManagerOptions(
      best_fn=lambda m: m['mpjpe'], best_mode='min', create=False, save_interval_steps=0)
  return ocp.CheckpointManager(checkpoint_dir, options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def _choose_step(manager, checkpoint, checkpoint_dir):
  steps = manager.all_steps()
  if not steps:
    raise CheckpointError(f'No checkpoint in {checkpoint_dir}.')
  if checkpoint == 'last':
    return manager.latest_step()
  if checkpoint == 'best':
    best = manager.best_step()
    if best is None:
      latest = manager.latest_step()
      logging.warning('No checkpoint in %s was saved with an mpjpe metric: using the latest, '
                      'step %d, as the best.', checkpoint_dir, latest)
      return latest
    return best
  try:
    step = int(checkpoint)
  except (TypeError, ValueError):
    raise CheckpointError(f"checkpoint must be 'best', 'last' or a step number, "
                          f'got {checkpoint!r}.') from None
  if step not in steps:
    raise CheckpointError(f'No checkpoint of step {step} in {checkpoint_dir}; '
                          f'available steps: {sorted(steps)}.')
  return step


def restore(workdir, checkpoint='best'):
  """The model of `workdir` with the parameters of checkpoint 'best', 'last' or a step number."""
  workdir = os.path.abspath(workdir)
  config = load_config(workdir)
  checkpoint_dir = os.path.join(workdir, CHECKPOINT_DIR)
  if not os.path.isdir(checkpoint_dir):
    raise CheckpointError(f'No checkpoint directory {checkpoint_dir}.')
  model = train.create_model(config)
  tx = train.create_optimizer(config, steps_per_epoch=1)
  # Shapes only; pretrained weights would be replaced by the checkpoint, so none are read.
  shapes_config = ml_collections.ConfigDict(config.to_dict())
  if 'pretrained' in shapes_config:
    shapes_config.pretrained.path = None
  abstract = jax.eval_shape(
      lambda: train.create_train_state(shapes_config, model, tx, jax.random.PRNGKey(0)))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          abstract)
  with _manager(checkpoint_dir) as manager:
    step = _choose_step(manager, checkpoint, checkpoint_dir)
    path = os.path.join(checkpoint_dir, str(step))
    _check_compatible(manager.item_metadata(step), abstract, path)
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(f'Checkpoint {path} could not be restored into the model of '
                            f'{workdir}/{CONFIG_FILE}: {e}') from e
  logging.info('Restored step %d from %s.', step, path)
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  return Restored(workdir=workdir, config=config, model=model, variables=variables,
                  step=int(step), checkpoint_path=path)


def _check_compatible(metadata, abstract, path):
  """Raises a CheckpointError naming the first parameter missing or of another shape."""
  stored = {leaf.name: tuple(leaf.shape) for leaf in jax.tree.leaves(metadata)
            if hasattr(leaf, 'shape')}
  for part in ('params', 'batch_stats'):
    for key_path, leaf in jax.tree_util.tree_leaves_with_path(getattr(abstract, part)):
      name = '.'.join([part] + [str(getattr(k, 'key', k)) for k in key_path])
      if name not in stored:
        raise CheckpointError(f'Checkpoint {path} does not fit the model of its config.json: '
                              f'it has no {name}.')
      if stored[name] != tuple(leaf.shape):
        raise CheckpointError(
            f'Checkpoint {path} does not fit the model of its config.json (was the config '
            f'changed after training?): {name} has shape {stored[name]} in the checkpoint, '
            f'the model expects {tuple(leaf.shape)}.')


def load_normalization(workdir, config):
  """The per-coordinate mean/std the model was trained with (16 non-root joints).

  Read from `workdir/normalization.json` when training saved it; otherwise
  from the metadata of the dataset named in the config (which must then be
  readable from config.data_dir). Keys as `input_pipeline.normalization_stats`.
  """
  path = os.path.join(os.path.abspath(workdir), NORMALIZATION_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      raw = json.load(f)
    missing = [k for k in STATS_KEYS if k not in raw]
    if missing:
      raise CheckpointError(f'{path} lacks {missing}.')
    return {k: np.asarray(raw[k], np.float32) for k in STATS_KEYS}
  logging.info('No %s in %s: reading the normalisation stats of %s from its dataset '
               'metadata (data_dir %s).', NORMALIZATION_FILE, workdir, config.dataset,
               config.data_dir)
  try:
    builder = input_pipeline.get_builder(config.dataset, config.data_dir, build_synthetic=False)
  except FileNotFoundError as e:
    raise CheckpointError(
        f'No {NORMALIZATION_FILE} in {workdir}, and the training dataset is not readable to '
        f'take the stats from: {e}') from e
  stats = input_pipeline.normalization_stats(builder)
  return {k: stats[k] for k in STATS_KEYS}
