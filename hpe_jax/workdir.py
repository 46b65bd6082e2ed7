"""A training workdir: its lock, and the record of the config each run used.

- `config.json`: the config of the workdir's first run, never rewritten (the
  record of what was trained); `runs/<time>-<pid>.json`: each run's command
  line and the fields it changed against config.json, written once the run has
  restored its checkpoint (a run that stops before never trained).
- `train.lock`: held while a training runs (process 0 of a job); a second
  training into the same workdir stops, naming the running process. A lock
  left by a dead process is taken over, with a note.
"""

import json
import os
import socket
import sys
import time
import uuid

from absl import logging

from hpe_jax import config_lib
from hpe_jax import files


class CheckpointError(ValueError):
  """A workdir, config or checkpoint that is missing or does not fit the model."""

CONFIG_FILE = 'config.json'
RUNS_DIR = 'runs'
LOCK_FILE = 'train.lock'
EVAL_LOCK_FILE = 'eval.lock'


class WorkdirBusy(RuntimeError):
  """Another training holds the workdir's lock."""


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class Lock:
  """`with Lock(workdir):` holds `workdir/train.lock` for a training; `Lock(workdir,
  'eval.lock', 'evaluation')` serialises writers of the workdir's eval folders.

  The lock appears whole or not at all: its content is written to a temporary file that is
  then hard-linked to the lock's name, which fails if the lock exists. So a lock that
  cannot be read (left empty by a disk that filled up before this rule, or replaced by
  something else) is never a live holder, and is taken over like a dead one.
  """

  def __init__(self, workdir, name=LOCK_FILE, what='training'):
    self.path = files.inside(workdir, name)
    self.what = what
    self._held = False

  def _read(self):
    try:
      with open(self.path) as f:
        holder = json.load(f)
      return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
      return None

  def _try_create(self, owner):
    """True if this process created the lock with `owner` in it."""
    tmp = f'{self.path}.{uuid.uuid4().hex}.tmp'
    try:
      with files.open_new(tmp, 'w') as f:
        json.dump(owner, f)
      os.link(tmp, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      if os.path.lexists(tmp):
        os.remove(tmp)

  def _stale(self, holder, host):
    if holder is None:
      logging.warning('Taking over the lock %s, which holds no readable owner.', self.path)
      return True
    pid = holder.get('pid')
    if holder.get('host') == host and isinstance(pid, int) and not _alive(pid):
      logging.warning('Taking over the lock %s left by process %d, which is no longer '
                      'running.', self.path, pid)
      return True
    return False

  def acquire(self):
    owner = {'pid': os.getpid(), 'host': socket.gethostname(), 'started': time.ctime(),
             'command': ' '.join(sys.argv)}
    for _ in range(2):
      if self._try_create(owner):
        self._held = True
        return self
      holder = self._read()
      if self._stale(holder, owner['host']):
        os.remove(self.path)
        continue
      raise WorkdirBusy(
          f'Another {self.what} is running in {os.path.dirname(self.path)}: process '
          f'{holder.get("pid", "?")} on {holder.get("host", "?")}, started '
          f'{holder.get("started", "?")}. Wait for it or use another workdir (delete '
          f'{self.path} if that process is gone).')
    raise WorkdirBusy(f'Could not take the lock {self.path}.')

  def release(self):
    if self._held:
      self._held = False
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def eval_lock(workdir):
  """The lock every writer of the workdir's eval folders holds (evaluate, cross-dataset)."""
  return Lock(workdir, EVAL_LOCK_FILE, 'evaluation')


def first_config(workdir):
  """The config.json of the workdir's first run, or None before it; CheckpointError (a
  damaged file of the workdir's: data, exit status 1) when it cannot be read."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    return None
  try:
    return config_lib.read_json(path)
  except config_lib.ConfigError as e:
    raise CheckpointError(f'{str(e).rstrip(".")} (the config of the workdir\'s first run: '
                          'put it back, or train in a new --workdir).') from None


def record_config(workdir, config):
  """Writes config.json on the first run; records every run's changes under runs/."""
  path = os.path.join(workdir, CONFIG_FILE)
  changed = {}
  first = first_config(workdir)
  if first is not None:
    changed = config_lib.diff(first, config)
    if changed:
      logging.warning('This run changes %s against %s (recorded in %s/).',
                      ', '.join(changed), path, RUNS_DIR)
  else:
    files.write_atomic(files.inside(workdir, CONFIG_FILE),
                       config.to_json_best_effort(indent=2))
  record = {'started': time.strftime('%Y-%m-%dT%H:%M:%S'), 'host': socket.gethostname(),
            'pid': os.getpid(), 'command': sys.argv, 'changed_from_config_json': changed}
  name = f'{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}.json'
  files.write_atomic(files.inside(workdir, RUNS_DIR, name), json.dumps(record, indent=2))


def read_config(workdir):
  """The config the workdir's checkpoints were last trained with: config.json (its first
  run, over the schema's defaults) with the changes of its newest run record."""
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'Workdir {workdir} does not exist.')
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No {CONFIG_FILE} in {workdir}: not a training workdir '
                            '(python -m hpe_jax.main writes it at the start of training).')
  config = config_lib.read_json(path)
  runs = os.path.join(workdir, RUNS_DIR)
  names = sorted(os.listdir(runs)) if os.path.isdir(runs) else []
  if names:
    with open(os.path.join(runs, names[-1])) as f:
      changed = json.load(f).get('changed_from_config_json', {})
    for name, (_, value) in changed.items():
      *parents, leaf = name.split('.')
      node = config
      for part in parents:
        node = node[part]
      node[leaf] = value
  return config
