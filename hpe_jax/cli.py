"""What the user-facing commands share: exit statuses and one-line flag errors."""

import sys

from absl import flags

EXIT_DATA, EXIT_USAGE = 1, 2  # data that cannot be used; arguments that do not fit


def parse_flags(argv):
  """absl's parsing, with every flag error as one line and exit status EXIT_USAGE."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'Error: {str(e).strip().splitlines()[-1]}', file=sys.stderr)
    sys.exit(EXIT_USAGE)
