"""Trainings and evaluations for the experiment tables, each in its own process.

A run trains with `python -m hpe_jax.main` (a rerun resumes, or only evaluates a
finished run) and is evaluated with `python -m hpe_jax.evaluate`, the commands a user
types; the numbers come from the evaluation's summary.json. Each run's log is
`WORKDIR.log`, its training wall time (of the run that trained it) `WORKDIR/wall_time.json`.
"""

import json
import os
import subprocess
import sys
import time

from absl import logging
import numpy as np

from hpe_jax.evaluation import report
from hpe_jax.inference import restore
from tfds_h36m import skeleton

END_JOINTS = tuple(skeleton.JOINT_NAMES.index(n) for n in
                   ('LWrist', 'RWrist', 'LAnkle', 'RAnkle'))


class Run:
  """One training: a name, a config path with preset and options, and config overrides."""

  def __init__(self, name, config, **overrides):
    self.name, self.config, self.overrides = name, config, overrides

  def command(self, workdir, data_dir):
    flags = [f'--config.{k}={v}' for k, v in sorted(self.overrides.items())]
    if data_dir:
      flags.append(f'--config.data_dir={data_dir}')
    return ['-m', 'hpe_jax.main', f'--config={self.config}', *flags, f'--workdir={workdir}']

  def shell_command(self, workdir, data_dir):
    return ' '.join(['python', *self.command(workdir, data_dir)])


def run_command(args, log_path):
  """Runs `python ARGS`, its output appended to log_path; exits on failure."""
  with open(log_path, 'a') as log:
    result = subprocess.run([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                            check=False)
  if result.returncode:
    raise SystemExit(f'{" ".join(args)} failed (exit {result.returncode}); see {log_path}.')


def train(run, workdir, data_dir):
  """Trains `run` into `workdir` (resuming it if it has checkpoints); its wall time in s."""
  timing = os.path.join(workdir, 'wall_time.json')
  if os.path.exists(timing):
    with open(timing) as f:
      return json.load(f)['seconds']
  logging.info('Training %s: %s', run.name, run.shell_command(workdir, data_dir))
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  run_command(run.command(workdir, data_dir), workdir + '.log')
  seconds = time.time() - start
  with open(timing, 'w') as f:
    json.dump({'seconds': seconds}, f)
  return seconds


def evaluate(workdir, *, num_hypotheses=0, max_poses=0, sampler='latent', dataset=None,
             data_dir=None, pose_2d_noise=None):
  """The summary.json of `hpe_jax.evaluate` on the last checkpoint (no UMAP figures), on the
  workdir's dataset or another (`dataset`, in `data_dir`), with `pose_2d_noise` where given;
  one already written with these settings is reused."""
  name = report.eval_dir_name(restore.load_config(workdir), dataset, pose_2d_noise)
  path = os.path.join(workdir, name, 'summary.json')
  if os.path.exists(path):
    with open(path) as f:
      summary = json.load(f)
    if (summary['checkpoint'], summary['num_hypotheses']) == ('last', num_hypotheses) and (
        not num_hypotheses or (summary.get('num_hypothesis_poses') == max_poses and
                               summary.get('sampler', 'latent') == sampler)):
      return summary
  args = ['-m', 'hpe_jax.evaluate', f'--workdir={workdir}', '--checkpoint=last',
          f'--num_hypotheses={num_hypotheses}', '--umap_neighbors=', f'--sampler={sampler}']
  if max_poses:
    args.append(f'--max_hypothesis_poses={max_poses}')
  if dataset:
    args += [f'--dataset={dataset}'] + ([f'--data_dir={data_dir}'] if data_dir else [])
  if pose_2d_noise:
    args.append(f'--pose_2d_noise={pose_2d_noise}')
  run_command(args, workdir + '.log')
  with open(path) as f:
    return json.load(f)


def fit_spread(workdir):
  """Runs `hpe_jax.fit_spread` on a workdir unless its ray_spread.npz exists."""
  if not os.path.exists(os.path.join(workdir, 'ray_spread.npz')):
    run_command(['-m', 'hpe_jax.fit_spread', f'--workdir={workdir}'], workdir + '.log')


def depth_spread(hypotheses):
  """(end, other): the samples' std along the camera axis (mm) of a summary.json's
  hypotheses of one pair, averaged over the wrists and ankles, and over the other
  non-root joints."""
  depth = np.asarray(hypotheses['spread_xyz_joint_mm'])[:, 2]
  return (float(depth[list(END_JOINTS)].mean()),
          float(np.delete(depth, [skeleton.ROOT, *END_JOINTS]).mean()))


def mean_over_actions(summary, key):
  """The mean over actions of table `key` ('2d->3d/mpjpe') of a summary.json."""
  return summary['tables'][key]['mean_over_actions']


def take_ids(arrays):
  """(N,) one id per motion capture take of a split's pose arrays (`subject_number` and
  `subaction` of each row)."""
  return arrays['subject_number'].astype(np.int64) * 100_000 + arrays['subaction']


def pose_errors(summary):
  """(MPJPE, P-MPJPE, N-MPJPE) mm of a summary.json's 2D -> 3D pair, each the mean over
  actions."""
  return tuple(mean_over_actions(summary, f'2d->3d/{key}')
               for key in ('mpjpe', 'p_mpjpe', 'n_mpjpe'))


def markdown_table(header, rows):
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def write_report(path, title, command, run_commands, table, note):
  """Writes a Markdown report (its title, the command that made it, the runs' commands,
  the table and a note on it) and prints the table."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  runs_block = '\n'.join(run_commands)
  with open(path + '.tmp', 'w') as f:
    f.write(f'# {title}\n\nMade with:\n\n```bash\n{command}\n```\n\nRuns:\n\n```bash\n'
            f'{runs_block}\n```\n\n{table}\n\n{note}\n')
  os.replace(path + '.tmp', path)
  logging.info('Wrote %s', path)
  print(table)
