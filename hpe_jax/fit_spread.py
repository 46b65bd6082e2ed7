"""Fits the spread of a workdir's 2D-consistent hypotheses (`hpe_jax.ray_spread`) on people
its lifter has not seen, by cross-fitting over the training subjects.

  python -m hpe_jax.fit_spread --workdir=workdirs/baseline
  python -m hpe_jax.fit_spread --workdir=workdirs/baseline --folds=2
  python -m hpe_jax.evaluate --workdir=workdirs/baseline --num_hypotheses=200 --sampler=rays

Trains the workdir's config once per fold of its training subjects (default: one per
subject), each time without that fold, and writes WORKDIR/ray_spread.npz: see
`hpe_jax.cross_fitting`. It costs one training of the workdir's config per fold.

Exit status: 0 written; 1 an error (one line on stderr); 2 a workdir this cannot use.
"""

from absl import app
from absl import flags
import jax

from hpe_jax import cli
from hpe_jax import config_lib
from hpe_jax import cross_fitting
from hpe_jax.inference import restore

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained workdir with a 2D -> 3D pair.')
_FOLDS = flags.DEFINE_integer(
    'folds', 0, 'Folds of the training subjects, each trained without (0: one per subject).',
    lower_bound=0)
_MAX_ROWS = flags.DEFINE_integer(
    'max_rows', 20_000, 'Errors kept in the table (a random subset; 20,000 x 48 float32 is '
    '3.8 MB).', lower_bound=2)
flags.mark_flag_as_required('workdir')


def main(argv):
  cli.start(argv)
  with cli.errors_as_lines(usage=(config_lib.ConfigError, restore.WorkdirError),
                           data=(restore.CheckpointError, ValueError)):
    print(cross_fitting.fit(_WORKDIR.value, _FOLDS.value, _MAX_ROWS.value))


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.parse_flags)
