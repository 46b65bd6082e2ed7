"""Command line entry point: parses flags and calls `train.train_and_evaluate`.

  python -m hpe_jax.main --config=configs/lifting.py --workdir=/tmp/lifting
  python -m hpe_jax.main --config=configs/lifting.py:quick --config.model.latent_dim=32 ...
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from hpe_jax import logs
from hpe_jax import train

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and summaries.')
config_flags.DEFINE_config_file('config', None, 'Training configuration file (and preset).',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logs.quiet_library_logs()
  train.maybe_initialize_distributed()
  logging.info('JAX process: %d / %d', jax.process_index(), jax.process_count())
  logging.info('JAX local devices: %r', jax.local_devices())
  train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main)
