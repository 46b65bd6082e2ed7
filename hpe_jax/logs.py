"""Console logging shared by the command lines (train, evaluate, predict): progress and results,
not library chatter."""

import logging as logging_lib
import re
import sys
import traceback

from absl import logging

# The longest message of a console line: absl's prefix (about 60 characters) and this stay
# within 300 characters.
MESSAGE_CHARS = 220
# Library messages that say nothing a user can act on, by (path part, message start).
_DROPPED = (
    ('/orbax/', 'Requested `tracked_metric`; did not provide metrics'),  # epochs without eval
    ('/jax/_src/xla_bridge', 'Unable to initialize backend'),  # no TPU/GPU: CPU is expected
    ('/tensorflow_datasets/', 'Variant folder'),  # a dataset being built has no info file yet
)


class _QuietLibraries(logging_lib.Filter):
  """Drops the INFO chatter of Orbax and TFDS, the library notes listed in _DROPPED, and the
  tracebacks Orbax logs from its save threads, or asyncio logs for the other writes of a
  failed save (`_orbax_task_report`): Orbax raises the same error to the caller, which
  reports it in one line (`checkpointing.writing`)."""

  def filter(self, record):
    message = str(record.msg)
    if any(path in record.pathname and message.startswith(start) for path, start in _DROPPED):
      return False
    if ('/orbax/' in record.pathname and record.levelno >= logging_lib.ERROR) or (
        _orbax_task_report(record)):
      return False
    noisy = ('/orbax/', '/tensorflow_datasets/')
    return record.levelno >= logging_lib.WARNING or not any(n in record.pathname for n in noisy)


def _orbax_task_report(record):
  """Whether a record is asyncio's '<Task, Future or _GatheringFuture> exception was never
  retrieved' for Orbax's work: when a save fails (a full disk), each of its concurrent writes
  fails, one error reaches the caller and the others are reported so, with tracebacks, as
  they are collected."""
  error = record.exc_info[1] if record.exc_info else None
  return (re.match(r'\w+ exception was never retrieved', str(record.msg)) is not None and
          error is not None and any('/orbax/' in frame.filename for frame in
                                    traceback.extract_tb(error.__traceback__)))


def _late_save_error(error):
  """True for the 'Event loop is closed' errors that TensorStore's write threads report after
  a failed Orbax save has closed its event loop (the failure itself is reported once, by
  `checkpointing.writing`)."""
  return isinstance(error, RuntimeError) and 'Event loop is closed' in str(error)


def _drop_late_save_errors(kind, error, trace):
  """sys.excepthook without the late save errors; every other error is printed as usual."""
  if not _late_save_error(error):
    sys.__excepthook__(kind, error, trace)


def _drop_late_unraisable(unraisable):
  """sys.unraisablehook (what TensorStore's threads report through) without them."""
  if not _late_save_error(unraisable.exc_value):
    sys.__unraisablehook__(unraisable)


def quiet_library_logs():
  """Installs the filter on absl's handler and the late-error hooks (each command line calls
  it once)."""
  logging.get_absl_handler().addFilter(_QuietLibraries())
  sys.excepthook = _drop_late_save_errors
  sys.unraisablehook = _drop_late_unraisable


def info_wrapped(head, parts, width=MESSAGE_CHARS):
  """Logs `head` and the `parts` joined by ', ' in as few INFO lines of at most `width`
  characters as hold them (a part too long for one has a line to itself); the lines after
  the first are indented by the width of `head`."""
  rows = [[]]
  for part in parts:
    if rows[-1] and len(head) + len(', '.join(rows[-1] + [part])) > width:
      rows.append([])
    rows[-1].append(part)
  for i, row in enumerate(rows):
    logging.info('%s%s%s', head if i == 0 else ' ' * len(head), ', '.join(row),
                 ',' if i < len(rows) - 1 else '')


# The lines of info_wrapped name its caller's file and line, as a logging call would.
logging.ABSLLogger.register_frame_to_skip(__file__, 'info_wrapped')
