"""Command line entry point: parses flags and calls `train.train_and_evaluate`.

  python -m hpe_jax.main --config=configs/lifting.py --workdir=/tmp/lifting
  python -m hpe_jax.main --config=configs/lifting.py:quick --config.model.latent_dim=32 ...

Exit status: 0 trained (or already complete) and evaluated; 1 an error (one line
on stderr); 2 a bad flag or config; 75 (`checkpointing.EXIT_PREEMPTED`) stopped by
SIGTERM after saving a checkpoint: rerun the same command to resume.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from hpe_jax import checkpointing
from hpe_jax import cli
from hpe_jax import config_lib
from hpe_jax import logs
from hpe_jax import parallel

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and summaries.')
config_flags.DEFINE_config_file('config', None, 'Training configuration file (and preset).',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])
flags.register_validator('workdir', lambda path: not path or not os.path.exists(path) or
                         os.path.isdir(path), message='is a file, not a folder for the run.')


def _config_spec(argv):
  """The --config value in argv ('--config=spec' or '--config spec'), or None."""
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _config_error(spec):
  """A one-line message for a --config file ('path' or 'path:preset') that is missing or
  fails to load, or None."""
  if spec is None:
    return None
  try:
    config_lib.load(spec)
  except config_lib.ConfigError as e:  # no such file, an unknown preset
    return str(e)
  except Exception as e:  # pylint: disable=broad-except  # the file is Python code: any error
    return f'--config={spec} fails to load ({type(e).__name__}: {cli.one_line(e)}).'
  return None


def _override_error(argv):
  """A one-line message for the first `--config.<field>=` override the config lacks, or None."""
  spec = _config_spec(argv)
  if spec is None:
    return None
  try:
    known = config_lib.field_names(config_lib.load(spec))
  except Exception:  # pylint: disable=broad-except  # the flag parser reports the file itself
    return None
  for arg in argv:
    if arg.startswith('--config.'):
      name = arg[len('--config.'):].split('=', 1)[0]
      if name not in known and not any(k.startswith(name + '.') for k in known):
        return f'Unknown config field {name!r}{config_lib.near_matches(name, known)}.'
  return None


def parse_flags(argv):
  """absl's parsing, with every flag or config error (a non-finite float flag too) as one
  line and exit status 2."""
  try:
    remaining = flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    message = (_config_error(_config_spec(argv)) or _override_error(argv)
               or str(e).strip().splitlines()[-1])
    print(f'Error: {message}', file=sys.stderr)
    sys.exit(2)
  spec = flags.FLAGS['config'].config_filename  # a missing file is found at its first read
  message = (_config_error(spec) if spec and not os.path.isfile(spec.partition(':')[0])
             else cli.non_finite_flag())
  if message:
    print(f'Error: {message}', file=sys.stderr)
    sys.exit(2)
  return remaining


def main(argv):
  cli.no_positional_arguments(argv)
  logs.quiet_library_logs()
  parallel.maybe_initialize_distributed()
  parallel.enable_compilation_cache()
  logging.info('JAX process: %d / %d', jax.process_index(), jax.process_count())
  logging.info('JAX local devices: %r', jax.local_devices())
  from hpe_jax import train  # pylint: disable=g-import-not-at-top  # after the flags: TF is slow
  with cli.errors_as_lines(usage=(config_lib.ConfigError,), data=train.DATA_ERRORS):
    try:
      train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)
    except checkpointing.Preempted as e:
      logging.warning('%s', e)
      sys.exit(checkpointing.EXIT_PREEMPTED)


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=parse_flags)
