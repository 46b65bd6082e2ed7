"""What the user-facing commands share: exit statuses and one-line flag errors."""

import sys

from absl import app
from absl import flags

from hpe_jax import logs
from hpe_jax import parallel

EXIT_DATA, EXIT_USAGE = 1, 2  # data that cannot be used; arguments that do not fit


def parse_flags(argv):
  """absl's parsing, with every flag error as one line and exit status EXIT_USAGE."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'Error: {str(e).strip().splitlines()[-1]}', file=sys.stderr)
    sys.exit(EXIT_USAGE)


def start(argv):
  """The start of a command's main: no positional arguments, library logs quietened, the
  persistent compilation cache on."""
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logs.quiet_library_logs()
  parallel.enable_compilation_cache()
