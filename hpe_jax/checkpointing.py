"""Checkpoints: the Orbax manager, restoring (the full train state, or the parameters alone),
damaged checkpoints, and preemption.

A workdir's checkpoints are `workdir/checkpoints/<step>/`. Training restores the
newest one that is intact: one that cannot be read is reported in one line and
moved to `workdir/damaged_checkpoints/` (never deleted), and the next older one
is tried. "Does not fit" is reserved for a checkpoint whose parameter tree
really differs from the config's model, and names the first difference.
Inference restores `params` and `batch_stats` alone (no optimiser, no training
code, no TensorFlow).
"""

import contextlib
import operator
import os
import re
import signal
import time

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from hpe_jax import files
from hpe_jax import workdir as workdir_lib

CHECKPOINT_DIR = 'checkpoints'
DAMAGED_DIR = 'damaged_checkpoints'
# Exit status of a training run stopped by SIGTERM (or a multi-host preemption notice) after
# saving a checkpoint: EX_TEMPFAIL, "try again", so a scheduler requeues rather than finishes.
EXIT_PREEMPTED = 75
VARIABLE_KEYS = ('params', 'batch_stats')
# A checkpoint's items: the train state (named as Orbax names a single item, so checkpoints
# of earlier versions read the same), and the input stream's state of image training.
STATE_ITEM = 'default'
DATA_ITEM = 'data'

_TRAIN_ANEW = 'Train into a new --workdir (or use the config it was trained with).'


CheckpointError = workdir_lib.CheckpointError


class Preempted(Exception):
  """Training saved a checkpoint and stopped after SIGTERM; rerun the same command to resume."""

  def __init__(self, step, directory):
    super().__init__(f'Stopped at step {step} after SIGTERM; the checkpoint is in {directory}. '
                     'Rerun the same command to resume.')
    self.step = step


def checkpoint_dir(workdir):
  """workdir/checkpoints (never a link: Orbax would write through it)."""
  return files.inside(workdir, CHECKPOINT_DIR)


def training_manager(workdir, keep):
  """Orbax manager keeping the latest `keep` checkpoints and the best by test MPJPE."""
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=keep),
      ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m['mpjpe'], reverse=True, n=1,
                                    keep_checkpoints_without_metrics=False),
  ])
  # best_fn makes Orbax store each checkpoint's metrics and answer `best_step()`.
  options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True,
                                         best_fn=lambda m: m['mpjpe'], best_mode='min')
  import grain  # pylint: disable=g-import-not-at-top  # training only: inference stays light
  handlers = {STATE_ITEM: ocp.StandardCheckpointHandler(),
              DATA_ITEM: grain.checkpoint.CheckpointHandler()}
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def save_args(state, data=None):
  """A checkpoint's items: the train state, and the input stream's state when given (an
  object with get_state/set_state, saved per process by grain's handler)."""
  import grain  # pylint: disable=g-import-not-at-top
  items = {STATE_ITEM: ocp.args.StandardSave(state)}
  if data is not None:
    items[DATA_ITEM] = grain.checkpoint.CheckpointSave(data)
  return ocp.args.Composite(**items)


def restore_data(manager, step, data):
  """Restores the input stream's state of checkpoint `step` into `data`; False when the
  checkpoint holds none (pose training, or written by an earlier version)."""
  import grain  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(os.path.join(str(manager.directory), str(step), DATA_ITEM)):
    return False
  manager.restore(step, args=ocp.args.Composite(
      **{DATA_ITEM: grain.checkpoint.CheckpointRestore(data)}))
  return True


def reading_manager(directory):
  """A manager that only reads; it ranks checkpoints by their saved 'mpjpe' (lower is better)."""
  options = ocp.CheckpointManagerOptions(
      best_fn=lambda m: m['mpjpe'], best_mode='min', create=False, save_interval_steps=0)
  return ocp.CheckpointManager(directory, options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def _leaf_names(tree, parts=VARIABLE_KEYS):
  """{'params.encoders_pose_2d.Dense_0.kernel': shape} of the model variables in `tree`."""
  names = {}
  for part in parts:
    sub = tree[part] if isinstance(tree, dict) else getattr(tree, part)
    for key_path, leaf in jax.tree_util.tree_leaves_with_path(sub):
      if hasattr(leaf, 'shape'):
        name = '.'.join([part] + [str(getattr(k, 'key', getattr(k, 'name', k))) for k in key_path])
        names[name] = tuple(leaf.shape)
  return names


def check_fits(metadata, abstract, path, *, whole_model=True):
  """Raises CheckpointError naming the first parameter that is missing, reshaped, or (with
  `whole_model`) stored but not in the model."""
  stored, expected = _leaf_names(metadata), _leaf_names(abstract)
  for name, shape in expected.items():
    if name not in stored:
      raise CheckpointError(f'Checkpoint {path} does not fit the model of this config: it has '
                            f'no {name}. {_TRAIN_ANEW}')
    if stored[name] != shape:
      raise CheckpointError(
          f'Checkpoint {path} does not fit the model of this config: {name} has shape '
          f'{stored[name]} in the checkpoint, the model expects {shape}. {_TRAIN_ANEW}')
  extra = sorted(set(stored) - set(expected))
  if extra and whole_model:
    raise CheckpointError(f'Checkpoint {path} does not fit the model of this config: it has '
                          f'{extra[0]}, which the model lacks. {_TRAIN_ANEW}')


def _metadata_tree(path):
  """The stored train state of checkpoint `path` as nested dicts of array metadata, read
  from its state item alone: a manager's `item_metadata` reads every item and warns of
  each one it has no handler for (the image stream's state, when only parameters are
  read)."""
  handler = ocp.StandardCheckpointHandler()
  try:
    metadata = handler.metadata(epath.Path(path) / STATE_ITEM)
  finally:
    handler.close()
  tree = getattr(metadata, 'tree', metadata)
  if tree is None or not all(k in tree for k in VARIABLE_KEYS):
    raise ValueError('its metadata names no params/batch_stats')
  return tree


def move_aside(workdir, step, reason):
  """Moves a damaged checkpoint to workdir/damaged_checkpoints/ (process 0), logging one line."""
  source = os.path.join(checkpoint_dir(workdir), str(step))
  target = files.inside(workdir, DAMAGED_DIR, f'{step}-{int(time.time())}')
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(source, target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f'hpe_jax moved checkpoint {step}')
  logging.warning('Checkpoint %s cannot be restored (%s): moved to %s; trying the one before.',
                  source, _one_line(reason), target)


def last_good(manager):
  """'step N in DIR' of the newest committed checkpoint, or 'none yet in DIR'."""
  directory = str(manager.directory)
  steps = [int(n) for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(
      directory) else []
  return f'step {max(steps)} in {directory}' if steps else f'none yet in {directory}'


@contextlib.contextmanager
def writing(manager):
  """Turns a failed checkpoint write (a full disk, a lost mount: Orbax raises whatever its
  storage raised) into one CheckpointError line naming the last good checkpoint."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(
        f'Could not write a checkpoint ({_storage_reason(e)}). The last good checkpoint is '
        f'{last_good(manager)}: free space and run the same command to resume.') from None


def _storage_reason(error):
  """The operating system's words for a storage error ('No space left on device'), else the
  error's first line."""
  code = getattr(error, 'errno', None)
  match = re.search(r"os_error_code='(\d+)'", str(error))
  if match or code:
    return os.strerror(int(match.group(1)) if match else code)
  return _one_line(error)[:200]


def close(manager):
  """Closes the manager, waiting for its last save (a failed save as CheckpointError)."""
  with writing(manager):
    manager.close()


def _one_line(error):
  """'ValueError: first line of the message' (at most 300 characters)."""
  text = f'{type(error).__name__}: {error}'.strip()
  return text.splitlines()[0][:300]


def restore_latest(manager, abstract_state, workdir, keep):
  """The newest intact checkpoint restored into `abstract_state`'s structure, or None.

  Damaged checkpoints are moved aside (`move_aside`) and the next older one is
  tried; a checkpoint of another model raises CheckpointError. Returns
  (state, manager): the manager is reopened when something was moved.
  """
  while manager.all_steps():
    step = manager.latest_step()
    path = os.path.join(str(manager.directory), str(step))
    try:
      tree = _metadata_tree(path)
    except Exception as e:  # pylint: disable=broad-except  # unreadable metadata is damage
      reason = e
    else:
      try:
        check_fits(tree, {k: getattr(abstract_state, k) for k in VARIABLE_KEYS}, path)
      except CheckpointError:
        manager.close()
        raise
      try:
        state = manager.restore(step, args=ocp.args.Composite(
            **{STATE_ITEM: ocp.args.StandardRestore(abstract_state)}))[STATE_ITEM]
        logging.info('Resuming from the checkpoint at step %d in %s', step, manager.directory)
        return state, manager
      except Exception as e:  # pylint: disable=broad-except  # any read failure is damage
        reason = e
    manager.close()
    move_aside(workdir, step, reason)
    manager = training_manager(workdir, keep)
  return None, manager


def step_number(checkpoint):
  """The step number a checkpoint argument names (an int, or a string of digits), or None
  ('best', 'last', anything else)."""
  if isinstance(checkpoint, str):
    return int(checkpoint) if checkpoint.isascii() and checkpoint.isdigit() else None
  try:
    return operator.index(checkpoint)  # an int or a NumPy integer
  except TypeError:
    return None


def choose_step(manager, checkpoint, directory):
  """The step of checkpoint 'best' (lowest saved MPJPE), 'last' or a step number."""
  steps = manager.all_steps()
  if not steps:
    raise CheckpointError(f'No checkpoint in {directory}.')
  if checkpoint == 'last':
    return manager.latest_step()
  if checkpoint == 'best':
    best = manager.best_step()
    if best is None:
      latest = manager.latest_step()
      logging.warning('No checkpoint in %s was saved with an mpjpe metric: using the latest, '
                      'step %d, as the best.', directory, latest)
      return latest
    return best
  step = step_number(checkpoint)
  if step is None:
    raise CheckpointError(f"checkpoint must be 'best', 'last' or a step number, "
                          f'got {checkpoint!r}.')
  if step not in steps:
    raise CheckpointError(f'No checkpoint of step {step} in {directory}; '
                          f'available steps: {sorted(steps)}.')
  return step


def restore_variables(workdir, checkpoint, abstract_variables, *, whole_model=True):
  """(step, path, {'params', 'batch_stats'}) of a workdir's checkpoint, on the first local device.

  Only the model variables are read (the optimiser state stays on disk); with
  whole_model=False, only those of `abstract_variables` (a part of the model).
  """
  directory = checkpoint_dir(workdir)
  if not os.path.isdir(directory):
    raise CheckpointError(f'No checkpoint directory {directory}.')
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          abstract_variables)
  with reading_manager(directory) as manager:
    step = choose_step(manager, checkpoint, directory)
    path = os.path.join(directory, str(step))
    try:
      tree = _metadata_tree(path)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'Checkpoint {path} cannot be read ({_one_line(e)}).') from None
    check_fits(tree, abstract, path, whole_model=whole_model)
    restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=device), abstract)
    try:
      restored = ocp.PyTreeCheckpointer().restore(
          os.path.join(path, 'default'),
          args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args,
                                      partial_restore=True))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'Checkpoint {path} cannot be restored ({_one_line(e)}).') from None
  logging.info('Restored step %d from %s.', step, path)
  return int(step), path, {k: restored[k] for k in VARIABLE_KEYS}


class Preemption:
  """Whether training must save and stop: a SIGTERM to this process (one process), or
  Orbax's preemption sync point (multi-host: every host stops at the same step)."""

  def __init__(self):
    self._signalled = False
    self._calls = 0
    self._multihost = jax.process_count() > 1
    if not self._multihost:  # JAX's preemption service owns SIGTERM in a multi-host job.
      try:
        signal.signal(signal.SIGTERM, self._handle)
      except ValueError:  # Not the main thread (e.g. a notebook worker): no handler.
        pass

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning('SIGTERM received: saving a checkpoint after the current steps.')
    self._signalled = True

  def reached(self, manager):
    """True when the run must save after the current call and stop (the same answer on
    every host). Call it after every train call."""
    if self._multihost:
      # The sync point is the fastest host's next counter, so the counter must advance by
      # one per call (a step number advances by steps_per_call and could skip it).
      self._calls += 1
      return manager.reached_preemption(self._calls)
    return self._signalled
