"""Command line evaluation of a trained workdir: tables, figures, hypotheses in WORKDIR/eval.

  python -m hpe_jax.evaluate --workdir=workdirs/lifting
  python -m hpe_jax.evaluate --workdir=workdirs/lifting --checkpoint=last --num_hypotheses=50
  python -m hpe_jax.evaluate --workdir=workdirs/lifting --num_hypotheses=200 \\
      --max_hypothesis_poses=5000
  python -m hpe_jax.evaluate --workdir=workdirs/baseline --num_hypotheses=200 --sampler=rays
  python -m hpe_jax.evaluate --workdir=workdirs/lifting --checkpoint=5600 --umap_neighbors=
  python -m hpe_jax.evaluate --workdir=workdirs/lifting --dataset=mpi_inf_3dhp/test --data_dir=data

Logs its progress and the means over actions; the tables, hypothesis numbers and pictures
are printed by `python -m hpe_jax.evaluation.summary --workdir=...` (one place prints each
table). See `hpe_jax.evaluation.report` for the files written, and
`hpe_jax.evaluation.cross_dataset` for --dataset (an in-the-wild test set: PCK, AUC, P1, P2
in WORKDIR/eval/<builder>_<split>/).

Memory: the hypotheses are sampled in chunks of poses that fit the memory budget
(`hpe_jax.memory`: 2 GB, --memory_budget_gb); K samples of one pose over it stop the run
with one line before the evaluation's work, exit status 2.
"""

import sys

from absl import app
from absl import flags
from absl import logging
import jax

from hpe_jax import cli
from hpe_jax import config_lib
from hpe_jax import files
from hpe_jax import input_pipeline
from hpe_jax import memory
from hpe_jax import ray_spread
from hpe_jax import workdir as workdir_lib
from hpe_jax.evaluation import cross_dataset
from hpe_jax.evaluation import report
from hpe_jax.inference import restore
from tfds_h36m import builders
from tfds_h36m import records

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training workdir (config.json, checkpoints/).')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "'best' (lowest saved test MPJPE), 'last' or a step number.")
cli.check_checkpoint_flag()
_SPLIT = flags.DEFINE_string('split', 'test', 'Dataset split to evaluate (TFDS split syntax); '
                             "another than 'test' writes into eval_<split>.")
_NUM_HYPOTHESES = flags.DEFINE_integer(
    'num_hypotheses', 0, 'Samples per pose for the multi-hypothesis report (0: none): latent '
    'samples (from the source encoder: the posterior, or the learned prior of a '
    'conditional-prior model), or with --sampler=rays offsets along the camera rays.',
    lower_bound=0)
_TEMPERATURE = flags.DEFINE_float(
    'temperature', 1.0, 'Scales the spread of the samples: the posterior std, or the rays '
    "sampler's offsets (0: all equal the single answer).",
    lower_bound=0.0)
_SAMPLER = flags.DEFINE_enum(
    'sampler', 'latent', report.SAMPLERS,
    "Where the hypotheses come from: 'latent', the model's own samples; 'rays', the single "
    'answer moved onto the camera rays of the input 2D pose plus the lifter\'s own errors, in '
    'the rays\' frames, that python -m hpe_jax.fit_spread wrote (2D->3D pairs only; '
    'hpe_jax/ray_spread.py).')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'Seed of the samples, their subset of poses, the figure poses and UMAP.')
_MAX_HYPOTHESIS_POSES = flags.DEFINE_integer(
    'max_hypothesis_poses', report.DEFAULT_MAX_HYPOTHESIS_POSES,
    'Poses of the multi-hypothesis report: a fixed random subset of the split (drawn with '
    '--seed), the same for every pair; 0: all. The tables, figures and UMAP use all poses.',
    lower_bound=0)
_FLIP_TEST = flags.DEFINE_bool(
    'flip_test', None, "Average each single answer with the mirrored input's mirrored answer "
    "(test-time flip); unset: the workdir's config.flip_test.")
_UMAP_NEIGHBORS = flags.DEFINE_list(
    'umap_neighbors', [str(n) for n in report.DEFAULT_UMAP_NEIGHBORS],
    'UMAP n_neighbors of the latent-space figures (clipped to the points - 1); empty: none.')
flags.register_validator(
    'umap_neighbors', lambda values: all(v.strip().isdigit() and int(v) >= 2 for v in values),
    message='must be whole numbers of at least 2, comma-separated (empty: no UMAP).')
_LATENT_MAX_POINTS = flags.DEFINE_integer(
    'latent_max_points', 5000, 'Poses (a fixed random subset) in the latent-space UMAP.',
    lower_bound=3)
_DATASET = flags.DEFINE_string(
    'dataset', '', 'Another dataset to evaluate on: an in-the-wild test set for the 2D->3D '
    f'pair ({", ".join(cross_dataset.TEST_SETS)}, built as docs/in_the_wild.md says), or one '
    'of the training schema (h36m/..., mocap/...: every pair, --split of it, results in '
    'eval_<dataset>/); empty: the workdir\'s own dataset.')
_POSE_2D_NOISE = flags.DEFINE_float(
    'pose_2d_noise', None, 'Detector-like Gaussian noise on the 2D input, a fraction of each '
    'pose\'s size (`hpe_jax.pose_noise`; results in eval*_noise<level>/); default: the '
    'workdir config\'s eval_pose_2d_noise (0).', lower_bound=0.0, upper_bound=0.2)
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, "Where --dataset is built; default: the workdir's config.data_dir, "
    "else TFDS's default.")
_MAX_POSES = flags.DEFINE_integer(
    'max_poses', 0, 'With --dataset: a fixed random subset of this many poses (drawn with '
    '--seed), said in the output; 0: all.', lower_bound=0)
flags.mark_flag_as_required('workdir')


def _cross_dataset():
  """--dataset: a wrong name is one line and exit status 2."""
  try:
    cross_dataset.test_set(_DATASET.value)
  except cross_dataset.UnknownDataset as e:
    print(f'Error: {e}', file=sys.stderr)
    sys.exit(2)
  if _NUM_HYPOTHESES.value or _FLIP_TEST.value is not None or _SPLIT.value != 'test':
    logging.warning('--num_hypotheses, --flip_test and --split do not apply to --dataset (its '
                    "name holds the split; the test-time flip is the workdir config's).")
  cross_dataset.run(_WORKDIR.value, _DATASET.value, data_dir=_DATA_DIR.value,
                    checkpoint=_CHECKPOINT.value, max_poses=_MAX_POSES.value, seed=_SEED.value)


def main(argv):
  cli.start(argv)
  # usage: e.g. a --split the dataset lacks; --num_hypotheses whose samples of one pose do not
  # fit; a --workdir that is not a workdir; data: a workdir, dataset or file that cannot be
  # used.
  with cli.errors_as_lines(
      usage=(config_lib.ConfigError, memory.BudgetError, restore.WorkdirError),
      data=(restore.CheckpointError, cross_dataset.DatasetError, workdir_lib.WorkdirBusy,
            files.UnsafePath, ray_spread.SpreadFileError, input_pipeline.DatasetError,
            builders.ForeignCode, records.DamagedRecords)):
    if _DATASET.value and _DATASET.value.split('/')[0] not in builders.BUILDER_NAMES:
      _cross_dataset()
    else:
      report.run_evaluation(
          _WORKDIR.value, checkpoint=_CHECKPOINT.value, split=_SPLIT.value,
          num_hypotheses=_NUM_HYPOTHESES.value, temperature=_TEMPERATURE.value,
          seed=_SEED.value, max_hypothesis_poses=_MAX_HYPOTHESIS_POSES.value,
          umap_neighbors=[int(n) for n in _UMAP_NEIGHBORS.value],
          latent_max_points=_LATENT_MAX_POINTS.value, flip_test=_FLIP_TEST.value,
          sampler=_SAMPLER.value, dataset=_DATASET.value or None, data_dir=_DATA_DIR.value,
          pose_2d_noise=_POSE_2D_NOISE.value)


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.parse_flags)
