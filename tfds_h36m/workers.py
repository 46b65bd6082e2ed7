"""Worker processes of the builders, the one place for them.

The builders' per-sequence work (rendering, reading BVH files, filming) is NumPy and PIL;
fork-started workers never touch TensorFlow, which the parent has imported.
"""

import contextlib
import multiprocessing


@contextlib.contextmanager
def pool(workers):
  """A fork-started multiprocessing Pool of `workers` processes, or None for one worker (the
  caller then maps in this process)."""
  if workers <= 1:
    yield None
    return
  with multiprocessing.get_context('fork').Pool(workers) as processes:
    yield processes
