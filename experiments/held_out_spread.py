"""What spread would make a model's hypotheses meet issue 14's targets: samples drawn from
the covariance of the model's own errors on held-out people.

Around each single answer of a trained workdir (the pose decoded from the latent mean, on
the hypothesis report's fixed subset of test poses), K samples are drawn from a Gaussian
with the covariance (48 x 48, non-root joints) of the same model's errors on the *other*
test subject (Human3.6M's protocol tests on S9 and S11): a sampler calibrated on held-out
people, as a validation subject would allow, never on the poses it is scored on. 'one
covariance' uses one for every pose, 'per action' one per action (the action known). Each
is scored at temperatures T by the evaluation's own metrics
(`hpe_jax.evaluation.hypotheses`): best-of-K MPJPE against the single answer's, and the
calibration error of the per-joint quantiles over all poses (as the README's hypothesis
table); MPJPEs are means over actions, as there.

  python -m experiments.held_out_spread --workdirs=workdirs/latent_grid/deterministic,\
workdirs/latent_grid/cvae_z100,workdirs/latent_grid/vae_z100_b0.001_constant --data_dir=data
"""

import json
import os

from absl import app
from absl import flags
import jax
import numpy as np

from experiments import runs
from experiments import spread_scores
from hpe_jax import sampling
from hpe_jax.evaluation import report
from hpe_jax.inference import restore

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Trained workdirs with a 2D->3D pair.')
_DATA_DIR = flags.DEFINE_string('data_dir', 'data', "Where the workdirs' dataset is built.")
_NUM_HYPOTHESES = flags.DEFINE_integer('num_hypotheses', 200, 'Samples per test pose.')
_MAX_POSES = flags.DEFINE_integer('max_hypothesis_poses', 2000,
                                  'Test poses (the evaluation\'s fixed subset, seed 0); 0: all.')
_TEMPERATURES = flags.DEFINE_list('temperatures', ['0.5', '0.7', '1.0'], 'Scales of the spread.')
_OUT = flags.DEFINE_string('out', 'docs/experiments/held_out_spread.md', 'The report written.')
flags.mark_flag_as_required('workdirs')


def single_answers(workdir, data_dir):
  """(single answers, ground truth) (N, 17, 3) mm, actions and subjects (N,) of every test
  pose (records' order), and the rows (R,) of the hypothesis report's subset."""
  restored = restore.restore(workdir, 'last')
  restored.config.data_dir = data_dir
  stats = restore.load_stats(workdir, restored.config)
  data = report.EvalData(restored.config, stats, 'test')
  rows = data.hypothesis_rows(0, seed=0)
  fn = jax.jit(lambda variables, x: sampling.sample_poses_mm(
      restored.model, variables, x, jax.random.PRNGKey(0), 0.0, source='pose_2d',
      num_samples=1, stats=stats)[0])
  parts = []
  for batch in data.hypothesis_batches(data.batch_size, rows):
    valid = np.asarray(batch['valid'], bool)
    x = batch.get('pose_2d_window', batch['pose_2d'])
    parts.append([np.asarray(a)[valid] for a in (fn(restored.variables, x),
                                                 batch['pose_3d_mm'], batch['action'])])
  subjects = data.pose_arrays()['subject_number'][rows]
  return ([np.concatenate(p) for p in zip(*parts)] + [subjects],
          data.hypothesis_rows(_MAX_POSES.value, seed=0))


def _cholesky(errors):
  """Lower Cholesky factor of the covariance of errors (M, 16, 3) (48 x 48)."""
  flat = errors.reshape(len(errors), -1)
  return np.linalg.cholesky(np.cov(flat.T) + 1e-6 * np.eye(flat.shape[1]))


def held_out_factors(errors, actions, subjects, per_action):
  """(N, 48, 48): for each pose the Cholesky factor of the errors of the other subjects
  (of its action when `per_action`)."""
  groups = [(s, a if per_action else None) for s, a in zip(subjects, actions)]
  factors = {}
  for s, a in set(groups):
    others = (subjects != s) & ((actions == a) if per_action else True)
    factors[s, a] = _cholesky(errors[others])
  return np.stack([factors[g] for g in groups])


def score(single, target, actions, factors, temperature, k, seed=0):
  """`spread_scores.score_samples` of samples single + temperature * L_a eps (L_a the
  Cholesky factor of the pose's group a)."""
  rng = np.random.default_rng(seed)

  def draw(part):
    eps = rng.standard_normal((len(single[part]), k, 48))
    offsets = np.einsum('nij,nkj->nki', factors[part], eps).reshape(-1, k, 16, 3)
    samples = np.array(np.repeat(single[part][:, None], k, axis=1))
    samples[:, :, 1:] += temperature * offsets
    return samples

  return spread_scores.score_samples(single, target, actions, draw)


def main(argv):
  del argv
  k, rows = _NUM_HYPOTHESES.value, []
  for workdir in _WORKDIRS.value:
    (single, target, actions, subjects), subset = single_answers(workdir, _DATA_DIR.value)
    errors = (target - single)[:, 1:]
    for name, per_action in (('one covariance', False), ('per action', True)):
      factors = held_out_factors(errors, actions, subjects, per_action)[subset]
      for temperature in map(float, _TEMPERATURES.value):
        ratio, calibration, single_mm, best_mm = score(
            single[subset], target[subset], actions[subset], factors, temperature, k)
        record = {'workdir': workdir, 'covariance': name, 'temperature': temperature,
                  'single_mm': round(single_mm, 2), f'best_of_{k}_mm': round(best_mm, 2),
                  'ratio': round(ratio, 3), 'calibration_error': round(calibration, 3)}
        print(json.dumps(record), flush=True)
        rows.append([os.path.basename(workdir.rstrip('/')), name, f'{temperature:g}',
                     f'{single_mm:.1f}', f'{best_mm:.1f}', f'{ratio:.2f}', f'{calibration:.3f}'])
  table = runs.markdown_table(['workdir', 'covariance of the other subject\'s errors', 'T',
                               'single answer',
                               f'best of {k}', 'best / single', 'calibration error'], rows)
  note = ('MPJPE in mm, mean over actions, on the fixed subset of test poses of the README\'s '
          'hypothesis table. Samples: the single answer plus T times a Gaussian with the '
          'covariance of the same model\'s errors on the other test subject (one for all '
          'poses, or one per action). The targets of issue 14 are best / single <= 0.75 and a '
          'calibration error <= 0.05 at once.')
  runs.write_report(
      _OUT.value, 'Hypotheses with the spread of the errors on held-out people',
      f'python -m experiments.held_out_spread --workdirs={",".join(_WORKDIRS.value)} '
      f'--data_dir={_DATA_DIR.value} --num_hypotheses={k} '
      f'--max_hypothesis_poses={_MAX_POSES.value}',
      ['# trained by python -m experiments.latent_grid (docs/experiments/latent_grid.md)'],
      table, note)


if __name__ == '__main__':
  app.run(main)
