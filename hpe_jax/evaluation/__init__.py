"""Evaluation of trained workdirs: restoring, tables, figures and multi-hypothesis sampling.

Modules: `checkpoint` (restore a workdir), `report` (run an evaluation and
write its files), `hypotheses` (posterior sampling), `figures` (pictures).
"""

import logging as logging_lib

from absl import logging


class _QuietLibraries(logging_lib.Filter):
  """Drops the INFO chatter of Orbax and TFDS so progress and results stay readable."""

  def filter(self, record):
    noisy = ('/orbax/', '/tensorflow_datasets/')
    return record.levelno >= logging_lib.WARNING or not any(n in record.pathname for n in noisy)


def quiet_library_logs():
  """Installs the filter on absl's handler (command lines call it once)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
