"""A trained workdir restored for inference: its config, model, parameters and normalisation.

Reads `config.json`, `normalization.json` and the `params` / `batch_stats` of
one checkpoint; imports neither TensorFlow nor the training modules (only a
workdir without normalization.json falls back to its dataset's metadata, which
needs TFDS).
"""

import dataclasses
import gc
import logging as logging_lib
import os
import re
import sys
import traceback
from typing import Any

from absl import logging
import jax
import ml_collections

from hpe_jax import config_lib
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import workdir as workdir_lib
from hpe_jax.models import factory

CheckpointError = workdir_lib.CheckpointError
_REPORTS_DROPPED = False


class WorkdirError(CheckpointError):
  """A workdir argument that is not a trained workdir with the pair asked for (a usage
  error: exit status 2 in the command lines)."""


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
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f'Workdir {os.path.abspath(workdir)} is a file, not a training workdir '
                       '(a directory with config.json and checkpoints/).')
  try:
    return workdir_lib.read_config(workdir)
  except (FileNotFoundError, NotADirectoryError) as e:
    raise WorkdirError(str(e)) from None
  except config_lib.ConfigError as e:
    raise CheckpointError(str(e)) from None
  except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
    raise CheckpointError(f'The config of {os.path.abspath(workdir)} cannot be read '
                          f'({_one_line(e)}).') from None


def _one_line(error):
  """'Type: the first line of the message' without TensorStore's spec dumps (300 chars)."""
  text = re.sub(r'\s*See full TensorStore details.*', '', str(error), flags=re.S).strip()
  text = text.splitlines()[0] if text else ''
  return f'{type(error).__name__}: {text}'[:300]


def _is_abandoned_read(error, obj=None):
  """Whether a report is about a read Orbax abandoned: its coroutine, or TensorStore's late
  callback into the closed event loop."""
  return (isinstance(error, RuntimeError) and str(error) == 'Event loop is closed') or (
      'orbax' in getattr(getattr(obj, 'cr_code', None), 'co_filename', ''))


class _AbandonedReadFilter(logging_lib.Filter):

  def filter(self, record):
    error = record.exc_info[1] if record.exc_info else None
    return not ('exception was never retrieved' in str(record.msg) and
                error is not None and 'orbax' in ''.join(
                    f.filename for f in traceback.extract_tb(error.__traceback__)))


def _drop_abandoned_read_reports():
  """When Orbax fails mid-restore, the reads it abandoned finish on TensorStore's threads
  or are collected (often at exit) and print tracebacks, hundreds of lines, some while the
  error is still being raised. From the first restore on, the reports of those reads alone
  are dropped (sys.excepthook, sys.unraisablehook and asyncio's log); every other report
  goes through as before."""
  global _REPORTS_DROPPED
  if not _REPORTS_DROPPED:
    _REPORTS_DROPPED = True
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

    def quiet_excepthook(kind, error, tb):
      if not _is_abandoned_read(error):
        excepthook(kind, error, tb)

    def quiet_unraisablehook(unraisable):
      if not _is_abandoned_read(unraisable.exc_value, unraisable.object):
        unraisablehook(unraisable)

    sys.excepthook, sys.unraisablehook = quiet_excepthook, quiet_unraisablehook
    logging_lib.getLogger('asyncio').addFilter(_AbandonedReadFilter())


def _root_cause(error):
  """The innermost exception of `error`'s chain (what TensorStore or the file system said)."""
  while error.__cause__ is not None or error.__context__ is not None:
    error = error.__cause__ or error.__context__
  return error


def _restore_variables(workdir, checkpoint, abstract, whole_model):
  """checkpointing.restore_variables with every failure one CheckpointError line."""
  from hpe_jax import checkpointing  # pylint: disable=g-import-not-at-top  # Orbax: workdirs only
  _drop_abandoned_read_reports()
  try:
    return checkpointing.restore_variables(workdir, checkpoint, abstract,
                                           whole_model=whole_model)
  except CheckpointError as e:
    gc.collect()  # the abandoned reads, now rather than at exit
    if e.__context__ is None:  # a missing or mismatched checkpoint: already one clear line
      raise
    head = str(e).split(' (', 1)[0]  # 'Checkpoint PATH cannot be read'
    raise CheckpointError(f'{head} ({_one_line(_root_cause(e))}).') from None
  except Exception as e:  # pylint: disable=broad-except  # Orbax raises anything
    gc.collect()  # the abandoned reads, now rather than at exit
    raise CheckpointError(f'The checkpoint {checkpoint!r} of {workdir} cannot be read '
                          f'({_one_line(_root_cause(e))}).') from None


def model_of(workdir, pair=None):
  """(config, model, abstract variables) of the config.json in `workdir`; with `pair`, the
  config keeps that pair alone (`restore`)."""
  config = load_config(workdir)
  if pair is not None:
    if (pair.source, pair.target) not in {(p.source, p.target)
                                          for p in modalities.pairs(config)}:
      raise WorkdirError(f'The model of {workdir} has no {pair.source} -> {pair.target} '
                         'pair.')
    config.pairs = [p for p in config.pairs
                    if (p['source'], p['target']) == (pair.source, pair.target)]
    config.prior.kind = 'standard'  # a conditional prior's 3D encoder is for training only
  model = factory.create_model(config)
  abstract = jax.eval_shape(lambda: factory.init_variables(config, model, jax.random.PRNGKey(0)))
  return config, model, abstract


def restore(workdir, checkpoint='best', *, pair=None):
  """The model of `workdir` with the parameters of checkpoint 'best', 'last' or a step number.

  With `pair` (a `modalities.Pair`), only that pair's encoder and decoder are built and
  read (a lifter needs no image encoder); `config` is then the workdir's config with that
  pair alone.
  """
  workdir = os.path.abspath(workdir)
  config, model, abstract = model_of(workdir, pair)
  step, path, variables = _restore_variables(workdir, checkpoint, abstract, pair is None)
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
  except (FileNotFoundError, ValueError) as e:  # not built, unknown, or names code (ForeignCode)
    raise CheckpointError(
        f'No {normalization.NORMALIZATION_FILE} in {workdir}, and the training dataset is not '
        f'readable to take the stats from: {e}') from e
  stats = input_pipeline.normalization_stats(builder, config.input_space,
                                             config.input_layout)
  return {k: stats[k] for k in normalization.STATS_KEYS}
