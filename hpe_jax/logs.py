"""Console logging shared by the command lines (train, evaluate, predict)."""

import logging as logging_lib

from absl import logging


class _QuietLibraries(logging_lib.Filter):
  """Drops the INFO chatter of Orbax and TFDS so progress and results stay readable."""

  def filter(self, record):
    noisy = ('/orbax/', '/tensorflow_datasets/')
    return record.levelno >= logging_lib.WARNING or not any(n in record.pathname for n in noisy)


def quiet_library_logs():
  """Installs the filter on absl's handler (each command line calls it once)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
