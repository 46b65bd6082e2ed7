"""Console logging shared by the command lines (train, evaluate, predict): progress and results,
not library chatter."""

import logging as logging_lib

from absl import logging

# Library messages that say nothing a user can act on, by (path part, message start).
_DROPPED = (
    ('/orbax/', 'Requested `tracked_metric`; did not provide metrics'),  # epochs without eval
    ('/jax/_src/xla_bridge', 'Unable to initialize backend'),  # no TPU/GPU: CPU is expected
    ('/tensorflow_datasets/', 'Variant folder'),  # a dataset being built has no info file yet
)


class _QuietLibraries(logging_lib.Filter):
  """Drops the INFO chatter of Orbax and TFDS, and the library notes listed in _DROPPED."""

  def filter(self, record):
    message = str(record.msg)
    if any(path in record.pathname and message.startswith(start) for path, start in _DROPPED):
      return False
    noisy = ('/orbax/', '/tensorflow_datasets/')
    return record.levelno >= logging_lib.WARNING or not any(n in record.pathname for n in noisy)


def quiet_library_logs():
  """Installs the filter on absl's handler (each command line calls it once)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
