"""What the user-facing commands share: exit statuses, one-line errors, clean stops.

A command's expected failures (bad flags, bad files, a full disk) end in one `Error:` line
on stderr and an exit status: EXIT_USAGE for arguments that do not fit, EXIT_DATA for data
or files that cannot be used. SIGTERM and Ctrl-C stop the command through its `finally`
blocks, so temporary files are removed and nothing is left half-written.
"""

import contextlib
import math
import signal
import sys

from absl import flags

from hpe_jax import logs
from hpe_jax import parallel

EXIT_DATA, EXIT_USAGE = 1, 2  # data that cannot be used; arguments that do not fit
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # Ctrl-C, SIGTERM: 128 + the signal's number


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised in the main thread so that `finally` blocks clean up."""


def _terminate(signum, frame):
  del signum, frame
  raise Terminated()


def stop_cleanly_on_sigterm():
  """SIGTERM raises Terminated: temporary files are removed on the way out (commands that
  save checkpoints on SIGTERM install their own handler instead)."""
  signal.signal(signal.SIGTERM, _terminate)


def one_line(error):
  """An exception's message as one line (an OSError as 'what: file')."""
  if isinstance(error, OSError) and error.strerror:
    text = f'{error.strerror}: {error.filename}' if error.filename else error.strerror
  else:
    text = str(error) or type(error).__name__
  return ' '.join(text.split())


@contextlib.contextmanager
def errors_as_lines(usage=(), data=()):
  """Ends a command on its expected errors with one `Error:` line: `usage` errors exit with
  EXIT_USAGE; `data` errors and OSError (a full disk, a missing or unreadable file) with
  EXIT_DATA; SIGTERM and Ctrl-C, after the cleanup, with 143 and 130."""
  try:
    yield
  except usage as e:  # pylint: disable=catching-non-exception
    print(f'Error: {one_line(e)}', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  except (OSError, *data) as e:
    print(f'Error: {one_line(e)}', file=sys.stderr)
    sys.exit(EXIT_DATA)
  except KeyboardInterrupt as e:
    terminated = isinstance(e, Terminated)
    print(f'Error: stopped by {"SIGTERM" if terminated else "Ctrl-C"}; files being written '
          'were removed.', file=sys.stderr)
    sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def parse_flags(argv):
  """absl's parsing, with every flag error as one line and exit status EXIT_USAGE; a float
  flag must be a finite number."""
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as e:
    print(f'Error: {str(e).strip().splitlines()[-1]}', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  message = non_finite_flag()
  if message:
    print(f'Error: {message}', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  return remaining


def non_finite_flag(flag_values=flags.FLAGS):
  """'--fps must be a finite number, got inf.' for the first float flag (DEFINE_float,
  DEFINE_multi_float) that is NaN or infinite, or None. absl's bounds let both through:
  NaN compares false with any bound and inf passes a lower one."""
  for name in sorted(flag_values):
    flag = flag_values[name]
    if flag.name != name or not isinstance(flag.parser, flags.FloatParser):
      continue  # a short name, or not a float
    values = flag.value if isinstance(flag.value, list) else [flag.value]
    bad = [v for v in values if v is not None and not math.isfinite(v)]
    if bad:
      return f'--{name} must be a finite number, got {bad[0]}.'
  return None


def checkpoint_is_valid(value):
  """Whether a --checkpoint value names a checkpoint: 'best', 'last' or a step number."""
  return value in ('best', 'last') or (value.isascii() and value.isdigit())


def check_checkpoint_flag(flag_values=flags.FLAGS):
  """Makes a wrong --checkpoint a flag error (one line, EXIT_USAGE) before any work."""
  flags.register_validator('checkpoint', checkpoint_is_valid,
                           message="must be 'best', 'last' or a step number.",
                           flag_values=flag_values)


def no_positional_arguments(argv):
  """Ends the command in one line (EXIT_USAGE) on positional arguments: every option is a
  --flag."""
  if len(argv) > 1:
    print(f'Error: Unexpected arguments {argv[1:]}; every option is a --flag.', file=sys.stderr)
    sys.exit(EXIT_USAGE)


def start(argv):
  """The start of a command's main: no positional arguments, library logs quietened, the
  persistent compilation cache on."""
  no_positional_arguments(argv)
  logs.quiet_library_logs()
  stop_cleanly_on_sigterm()
  parallel.enable_compilation_cache()
