"""Writing files whole or not at all, and only inside the folder they belong to.

The one place for temporary names, renames and the symlink rule: below a workdir, hpe_jax
never writes through a symbolic link. Folders are checked (`inside`); files are written
under a temporary name and renamed over their path, which replaces a link there instead
of following it; a folder of results (`staged_dir`) is written aside and renamed into place.
"""

import contextlib
import os
import shutil
import uuid


class UnsafePath(ValueError):
  """A path below a workdir that would send a write elsewhere (a symbolic link)."""


def inside(root, *parts):
  """`root/parts...`, after checking that no existing folder below `root` on the way is a
  symbolic link (a link there would send every write below it outside `root`). The last
  part may be a link to a file: `write_atomic` and `staged` replace it, never follow it."""
  path = os.path.abspath(root)
  names = [n for part in parts for n in part.split(os.sep) if n]
  for i, name in enumerate(names):
    path = os.path.join(path, name)
    last = i == len(names) - 1
    if os.path.islink(path) and (not last or os.path.isdir(path)):
      raise UnsafePath(f'{path} is a symbolic link; hpe_jax writes below {root} only into real '
                       'folders: remove the link (or copy what it points to) and run again.')
  return path


@contextlib.contextmanager
def staged(paths):
  """Yields {path: temporary path beside it (same extension)}; renames every one to its path
  when the block succeeds, removes them all otherwise. An OSError on a temporary file names
  its path."""
  tmps = {}
  try:
    for path in paths:
      directory = os.path.dirname(os.path.abspath(path))
      os.makedirs(directory, exist_ok=True)
      base, ext = os.path.splitext(os.path.basename(path))
      tmps[path] = os.path.join(directory, f'.{base}.{uuid.uuid4().hex}.tmp{ext}')
    try:
      yield tmps
      for path, tmp in tmps.items():
        os.replace(tmp, path)
    except OSError as e:  # name the file asked for, not its temporary name
      path = next((p for p, tmp in tmps.items() if e.filename == tmp), None)
      if path is None:
        raise
      raise OSError(e.errno, e.strerror, path) from e
  finally:
    for tmp in tmps.values():
      if os.path.exists(tmp):
        os.remove(tmp)


def write_atomic(path, data):
  """Writes `data` (str or bytes) to `path` through a temporary file: never a partial file."""
  with staged([path]) as tmps:
    with open(tmps[path], 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)


def open_new(path, mode='wb'):
  """Opens a file that must not exist yet (created, never a link followed)."""
  flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0)
  return os.fdopen(os.open(path, flags, 0o644), mode)


def _remove(path):
  if os.path.islink(path) or not os.path.isdir(path):
    os.remove(path)
  else:
    shutil.rmtree(path, ignore_errors=True)


def remove_stale(root, name):
  """Removes the folders `staged_dir(root, name)` left behind when a process was killed
  (call it while holding the lock that serialises writers of `root/name`)."""
  for entry in os.listdir(root):
    if entry.startswith(f'.{name}.') and entry.endswith(('.tmp', '.old')):
      _remove(os.path.join(root, entry))


@contextlib.contextmanager
def staged_dir(root, name):
  """`name`: a folder name (no separator). Yields a new, empty folder beside `root/name` to write into. When the block succeeds it
  replaces `root/name` whole (the old folder's subfolders that the new one lacks, other
  commands' results, move into it); otherwise it is removed and `root/name` stays as it was.
  A link at `root/name` is replaced, never followed. Hold the lock that serialises writers of
  `root/name`: what earlier, killed writers left aside is removed first."""
  final = os.path.join(os.path.abspath(root), name)  # one name: no folder on the way
  remove_stale(root, name)
  key = uuid.uuid4().hex
  tmp, old = (os.path.join(os.path.dirname(final), f'.{name}.{key}.{s}') for s in ('tmp', 'old'))
  os.makedirs(tmp)
  try:
    yield tmp
    moved = os.path.lexists(final)
    if moved:
      os.rename(final, old)
    os.rename(tmp, final)
    if moved and os.path.isdir(old) and not os.path.islink(old):
      for entry in os.listdir(old):
        source = os.path.join(old, entry)
        if (os.path.isdir(source) and not os.path.islink(source)
            and not os.path.lexists(os.path.join(final, entry))):
          os.rename(source, os.path.join(final, entry))
    if moved:
      _remove(old)
  finally:
    if os.path.lexists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
