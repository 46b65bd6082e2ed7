"""The evaluate command: tables against hand-computed values, figures, hypotheses, summary.json."""

import csv
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from tensorboard.backend.event_processing import event_accumulator

from hpe_jax import evaluator
from hpe_jax import metrics
from hpe_jax import normalization
from hpe_jax import sampling
from hpe_jax.evaluation import figures
from hpe_jax.evaluation import hypotheses
from hpe_jax.evaluation import report
from hpe_jax.evaluation import summary
from hpe_jax.inference import restore
from tfds_h36m import skeleton


def _read_csv(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _assert_picture(path, size=None):
  """A PNG of the given (width, height) that is not blank."""
  assert os.path.getsize(path) > 0
  image = np.asarray(Image.open(path).convert('RGB'), np.float32)
  if size is not None:
    assert (image.shape[1], image.shape[0]) == size
  non_white = np.mean(np.any(image < 240, axis=-1))
  assert non_white > 0.01 and image.std() > 10, (path, non_white, image.std())


def _random_poses(n, seed=0):
  poses = np.random.default_rng(seed).normal(0, 300, (n, 17, 3)).astype(np.float32)
  poses[:, 0] = 0
  return poses


def test_action_tables_and_csv_equal_hand_computed_values(tmp_path):
  # Six poses with every non-root joint 100 mm from the root, predicted scaled about the
  # root by 1 + d / 100: each of those joints is off by d mm, so MPJPE = 16 / 17 * d (root
  # included), P-MPJPE = 0 (a similarity transform) and the per-joint error is d (root 0).
  gt = _random_poses(6)
  gt *= 100 / np.maximum(np.linalg.norm(gt, axis=-1, keepdims=True), 1e-9)
  offsets = np.array([10., 20., 30., 60., 90., 16.], np.float32)
  actions = np.array([0, 0, 2, 2, 2, 14], np.int32)
  pred = gt * (1 + offsets[:, None, None] / 100)
  per_pose = {'2d->3d/mpjpe': metrics.mpjpe(pred, gt), '2d->3d/p_mpjpe': metrics.p_mpjpe(pred, gt),
              '2d->3d/per_joint': metrics.per_joint_error(pred, gt)}
  per_pose.update(action=actions, valid=np.ones(6, bool))
  summary = evaluator.summarize(per_pose)
  counts = np.bincount(actions, minlength=15)
  md_path, csv_path = report.write_action_tables(str(tmp_path), summary, counts, 'header')
  joint_path = report.write_per_joint(str(tmp_path), summary)

  rows = {r['action']: r for r in _read_csv(csv_path)}
  assert list(rows) == list(skeleton.ACTIONS) + ['Average']
  expected = {'Directions': (2, 15 * 16 / 17), 'Eating': (3, 60 * 16 / 17),
              'WalkTogether': (1, 16 * 16 / 17), 'Average': (6, (15 + 60 + 16) / 3 * 16 / 17)}
  for action, row in rows.items():
    if action in expected:
      poses, mpjpe = expected[action]
      assert int(row['poses']) == poses
      assert float(row['2d->3d MPJPE (mm)']) == pytest.approx(mpjpe, abs=1e-3)
      assert float(row['2d->3d P-MPJPE (mm)']) == pytest.approx(0, abs=1e-2)
    else:
      assert row['poses'] == '0' and row['2d->3d MPJPE (mm)'] == ''
  markdown = open(md_path).read()
  assert markdown.startswith('header')
  assert '| Directions | 14.1 | 0.0 |' in markdown and '| Discussion | - | - |' in markdown
  assert '| **Average** | 28.5 | 0.0 |' in markdown
  joints = {r['joint']: float(r['2d->3d error (mm)']) for r in _read_csv(joint_path)}
  assert joints['Pelvis'] == 0
  assert joints['RWrist'] == pytest.approx(offsets.mean(), abs=1e-3)


def test_hypothesis_summary_by_hand():
  per_pose = {'posterior_mean': np.array([10., 20., 40.]), 'best_of_k': np.array([5., 15., 30.]),
              'mean_of_k': np.array([12., 22., 44.]),
              'spread_xyz': np.stack([np.full((17, 3), v) for v in (3., 4., 0.)])}
  out = hypotheses.summarize(per_pose, np.array([1, 1, 3]))
  assert out['tables']['best_of_k']['per_action'][1] == pytest.approx(10)
  assert out['tables']['posterior_mean']['mean_over_actions'] == pytest.approx((15 + 40) / 2)
  np.testing.assert_allclose(out['spread_xyz'], np.full((17, 3), 7 / 3))
  # Total spread of a pose: sqrt(3 * s^2); averaged over poses.
  np.testing.assert_allclose(out['spread'], np.full(17, (3 + 4) * np.sqrt(3) / 3), rtol=1e-6)


def test_figures_have_their_size_and_content(tmp_path):
  rng = np.random.default_rng(1)
  gt = _random_poses(25)
  pred = gt + rng.normal(0, 40, gt.shape).astype(np.float32)
  grid = figures.prediction_grid(pred, gt, [f'pose {i}' for i in range(25)])
  _assert_picture(figures.save_png(grid, str(tmp_path / 'grid.png')), (5 * 340, 5 * 340 + 60))
  assert figures.to_array(grid).shape == (5 * 340 + 60, 5 * 340, 3)
  errors = figures.error_distribution(rng.uniform(20, 80, 40), np.arange(40) % 15)
  _assert_picture(figures.save_png(errors, str(tmp_path / 'errors.png')), (900, 120 + 34 * 15))
  spread = figures.joint_spread(rng.uniform(0, 30, (17, 3)), title='spread')
  _assert_picture(figures.save_png(spread, str(tmp_path / 'spread.png')), (1100, 480))
  panels = figures.pose_panels(gt[:2], ['a', 'b'], hypotheses_mm=pred[:2, None])
  _assert_picture(figures.save_png(panels, str(tmp_path / 'panels.png')), (840, 510))
  figures.save_animation(gt[:3], str(tmp_path / 'poses.gif'))
  gif = Image.open(tmp_path / 'poses.gif')
  assert gif.n_frames == 3 and gif.size == (480, 480)


def test_normalization_from_workdir_without_dataset(tiny_lifting_run, tmp_path):
  workdir = tiny_lifting_run['workdir']
  config = restore.load_config(workdir)
  saved_by_training = restore.load_stats(workdir, config)
  copy = tmp_path / 'copy'
  shutil.copytree(workdir, copy)
  os.remove(copy / normalization.NORMALIZATION_FILE)
  from_dataset = restore.load_stats(str(copy), config)
  for key in normalization.STATS_KEYS:
    np.testing.assert_array_equal(saved_by_training[key], from_dataset[key])
  config.data_dir = str(tmp_path / 'no_data')
  with pytest.raises(restore.CheckpointError, match='No normalization.json'):
    restore.load_stats(str(copy), config)
  normalization.save(str(copy), from_dataset)
  from_file = restore.load_stats(str(copy), config)
  for key in normalization.STATS_KEYS:
    np.testing.assert_array_equal(from_file[key], from_dataset[key])


def test_hypotheses_on_the_trained_model(tiny_lifting_run):
  restored = restore.restore(tiny_lifting_run['workdir'], 'last')
  stats = restore.load_stats(restored.workdir, restored.config)
  data = report.EvalData(restored.config, stats, 'test')
  model, variables = restored.model, restored.variables
  first = next(data.batches(32))
  mean_pose, samples = sampling.make_sampler(model, 'pose_2d', stats, 4)(
      variables, first['pose_2d'], jax.random.PRNGKey(0), jnp.float32(0.0))
  assert samples.shape == (32, 4, 17, 3)
  np.testing.assert_allclose(samples, np.broadcast_to(mean_pose[:, None], samples.shape),
                             atol=1e-4)
  plain = data.evaluate(evaluator.Evaluator(model, restored.config, stats, predictions=True),
                        variables)
  np.testing.assert_allclose(mean_pose, plain['2d->3d/pred_mm'][:32], atol=1e-3)

  def run(temperature, k):
    return hypotheses.evaluate_hypotheses(model, variables, 'pose_2d', stats, data.batches(64),
                                          num_samples=k, temperature=temperature, seed=0)

  cold = run(0.0, 3)
  np.testing.assert_allclose(cold['best_of_k'], cold['posterior_mean'], atol=1e-3)
  np.testing.assert_allclose(cold['mean_of_k'], cold['posterior_mean'], atol=1e-3)
  assert np.abs(cold['spread_xyz']).max() < 1e-3
  warm = run(1.0, 200)
  assert len(warm['best_of_k']) == len(plain['action']) == 240
  np.testing.assert_allclose(warm['posterior_mean'], plain['2d->3d/mpjpe'], atol=1e-3)
  assert warm['best_of_k'].mean() < warm['posterior_mean'].mean()
  assert np.all(warm['best_of_k'] <= warm['mean_of_k'])
  assert np.all(warm['spread_xyz'][:, skeleton.ROOT] == 0)
  assert np.all(warm['spread_xyz'][:, 1:].mean(axis=0) > 0)


def test_evaluate_writes_tables_figures_and_summaries(tiny_lifting_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  out = report.run_evaluation(workdir, checkpoint='last', num_hypotheses=8,
                              umap_neighbors=(5, 15, 500), latent_max_points=60)
  eval_dir = os.path.join(workdir, 'eval')
  # The last checkpoint's numbers are the ones training reported at its end.
  trained = tiny_lifting_run['summary']
  for key in ('2d->3d/mpjpe', '2d->3d/p_mpjpe'):
    np.testing.assert_allclose(out['summary'][key]['per_action'], trained[key]['per_action'],
                               atol=0.01)
  rows = {r['action']: r for r in _read_csv(os.path.join(eval_dir, 'results.csv'))}
  assert float(rows['Average']['2d->3d MPJPE (mm)']) == pytest.approx(
      trained['2d->3d/mpjpe']['mean_over_actions'], abs=0.01)
  assert int(rows['Average']['poses']) == 240
  assert len(_read_csv(os.path.join(eval_dir, 'per_joint.csv'))) == 17
  hyp = {r['action']: r for r in _read_csv(os.path.join(eval_dir, '2d_to_3d_hypotheses.csv'))}
  assert float(hyp['Average']['best_of_k_mpjpe_mm']) < float(
      hyp['Average']['posterior_mean_mpjpe_mm'])
  assert float(hyp['Average']['posterior_mean_mpjpe_mm']) == pytest.approx(
      trained['2d->3d/mpjpe']['mean_over_actions'], abs=0.01)
  assert 'best of K (oracle)' in open(os.path.join(eval_dir, '2d_to_3d_hypotheses.md')).read()
  assert len(_read_csv(os.path.join(eval_dir, '2d_to_3d_spread.csv'))) == 17

  sizes = {'2d_to_3d_predictions': (1700, 1760), '2d_to_3d_errors': (900, 630),
           '2d_to_3d_spread': (1100, 480),
           # n_neighbors 500 is clipped to the 59 = points - 1: three panels.
           'latent_pose_2d_action': (3 * 380, 520), 'latent_pose_2d_camera': (3 * 380, 520)}
  for name, size in sizes.items():
    _assert_picture(os.path.join(eval_dir, f'{name}.png'), size)
  assert sorted(f for f in os.listdir(eval_dir) if f.endswith('.png')) == sorted(
      f'{n}.png' for n in sizes)

  events = event_accumulator.EventAccumulator(eval_dir)
  events.Reload()
  tags = set(events.Tags()['tensors']) | set(events.Tags()['images'])
  assert set(sizes) <= tags and 'test/2d->3d/mpjpe' in tags

  data = json.loads(open(os.path.join(eval_dir, 'summary.json')).read())
  assert data['step'] == 60 and data['num_poses'] == 240
  assert data['tables']['2d->3d/mpjpe']['mean_over_actions'] == pytest.approx(
      trained['2d->3d/mpjpe']['mean_over_actions'], abs=0.01)
  assert data['hypotheses']['2d->3d']['best_of_k'] == pytest.approx(
      float(hyp['Average']['best_of_k_mpjpe_mm']), abs=1e-3)
  # The run summary (the end of ./run.sh) reads summary.json back.
  text = summary.summary_text(workdir)
  assert '| **Average** |' in text
  best = float(hyp['Average']['best_of_k_mpjpe_mm'])
  assert '2d->3d: posterior mean ' in text and f'best of 8 {best:.1f} mm (oracle)' in text
  assert os.path.join(eval_dir, '2d_to_3d_predictions.png') in text
  with pytest.raises(FileNotFoundError, match='python -m hpe_jax.evaluate'):
    summary.summary_text(str(tmp_path / 'never_evaluated'))
