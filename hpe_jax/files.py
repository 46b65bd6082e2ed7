"""Writing files whole or not at all: the one place for temporary names and renames."""

import contextlib
import os
import uuid


@contextlib.contextmanager
def staged(paths):
  """Yields {path: temporary path beside it (same extension)}; renames every one to its path
  when the block succeeds, removes them all otherwise."""
  tmps = {}
  try:
    for path in paths:
      directory = os.path.dirname(os.path.abspath(path))
      os.makedirs(directory, exist_ok=True)
      base, ext = os.path.splitext(os.path.basename(path))
      tmps[path] = os.path.join(directory, f'.{base}.{uuid.uuid4().hex}.tmp{ext}')
    yield tmps
    for path, tmp in tmps.items():
      os.replace(tmp, path)
  finally:
    for tmp in tmps.values():
      if os.path.exists(tmp):
        os.remove(tmp)


def write_atomic(path, data):
  """Writes `data` (str or bytes) to `path` through a temporary file: never a partial file."""
  with staged([path]) as tmps:
    with open(tmps[path], 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)
