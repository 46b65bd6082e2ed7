"""A trained workdir restored for inference: its config, model, parameters and normalisation.

Reads `config.json`, `normalization.json` and the `params` / `batch_stats` of
one checkpoint; imports neither TensorFlow nor the training modules (only a
workdir without normalization.json falls back to its dataset's metadata, which
needs TFDS).
"""

import dataclasses
import os
from typing import Any

from absl import logging
import jax
import ml_collections

from hpe_jax import checkpointing
from hpe_jax import config_lib
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import workdir as workdir_lib
from hpe_jax.models import factory

CheckpointError = checkpointing.CheckpointError


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
  """The config the workdir's checkpoints were last trained with (`workdir.read_config`)."""
  try:
    return workdir_lib.read_config(workdir)
  except (FileNotFoundError, NotADirectoryError, config_lib.ConfigError) as e:
    raise CheckpointError(str(e)) from None


def restore(workdir, checkpoint='best', *, pair=None):
  """The model of `workdir` with the parameters of checkpoint 'best', 'last' or a step number.

  With `pair` (a `modalities.Pair`), only that pair's encoder and decoder are built and
  read (a lifter needs no image encoder); `config` is then the workdir's config with that
  pair alone.
  """
  workdir = os.path.abspath(workdir)
  config = load_config(workdir)
  if pair is not None:
    if (pair.source, pair.target) not in {(p.source, p.target)
                                          for p in modalities.pairs(config)}:
      raise CheckpointError(f'The model of {workdir} has no {pair.source} -> {pair.target} '
                            'pair.')
    config.pairs = [p for p in config.pairs
                    if (p['source'], p['target']) == (pair.source, pair.target)]
    config.prior.kind = 'standard'  # a conditional prior's 3D encoder is for training only
  model = factory.create_model(config)
  abstract = jax.eval_shape(lambda: factory.init_variables(config, model, jax.random.PRNGKey(0)))
  step, path, variables = checkpointing.restore_variables(workdir, checkpoint, abstract,
                                                          whole_model=pair is None)
  return Restored(workdir=workdir, config=config, model=model, variables=variables, step=step,
                  checkpoint_path=path)


def load_stats(workdir, config):
  """The per-coordinate mean/std the model was trained with (16 non-root joints).

  Read from `workdir/normalization.json` when training saved it; otherwise
  from the metadata of the dataset named in the config (which must then be
  readable from config.data_dir).
  """
  try:
    stats = normalization.load(workdir)
  except ValueError as e:
    raise CheckpointError(str(e)) from None
  if stats is not None:
    return stats
  logging.info('No %s in %s: reading the normalisation stats of %s from its dataset '
               'metadata (data_dir %s).', normalization.NORMALIZATION_FILE, workdir,
               config.dataset, config.data_dir)
  from hpe_jax import input_pipeline  # pylint: disable=g-import-not-at-top  # TFDS: fallback only
  try:
    builder = input_pipeline.get_builder(config.dataset, config.data_dir, build_synthetic=False)
  except FileNotFoundError as e:
    raise CheckpointError(
        f'No {normalization.NORMALIZATION_FILE} in {workdir}, and the training dataset is not '
        f'readable to take the stats from: {e}') from e
  stats = input_pipeline.normalization_stats(builder)
  return {k: stats[k] for k in normalization.STATS_KEYS}
