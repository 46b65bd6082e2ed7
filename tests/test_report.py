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

from conftest import tiny_config
from hpe_jax import evaluator
from hpe_jax import input_pipeline
from hpe_jax import metrics
from hpe_jax import normalization
from hpe_jax import sampling
from hpe_jax.evaluation import figures
from hpe_jax.evaluation import hypotheses
from hpe_jax.evaluation import images
from hpe_jax.evaluation import report
from hpe_jax.evaluation import summary
from hpe_jax.inference import restore
from tfds_h36m import cameras
from tfds_h36m import skeleton
from tfds_h36m.mocap import motions


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
  md_path, csv_path = report.write_action_tables(str(tmp_path), summary, counts,
                                                  skeleton.ACTIONS, 'header')
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


def test_mocap_tables_have_a_row_per_kind_of_motion(tmp_path):
  names = skeleton.action_names('mocap/cmu')
  assert names == motions.ACTIONS and len(names) == 10
  actions = np.array([0, 0, 3, 9], np.int32)
  mpjpe = np.array([10., 20., 30., 40.], np.float32)
  per_pose = {'2d->3d/mpjpe': mpjpe, '2d->3d/p_mpjpe': mpjpe / 2, 'action': actions,
              'valid': np.ones(4, bool)}
  summary = evaluator.summarize(per_pose, len(names))
  assert summary['2d->3d/mpjpe']['per_action'].shape == (10,)
  markdown = evaluator.format_results(summary, names)
  rows = [line.split('|')[1].strip() for line in markdown.splitlines() if line.startswith('| ')]
  assert rows == ['Action', *names, '**Average**']
  assert '| walk | 15.0 | 7.5 |' in markdown and '| run | - | - |' in markdown
  assert '| other | 40.0 | 20.0 |' in markdown and '| **Average** | 28.3 | 14.2 |' in markdown
  # Training's summaries keep 15 actions: the same table.
  assert evaluator.format_results(evaluator.summarize(per_pose), names) == markdown
  counts = np.bincount(actions, minlength=len(names))
  _, csv_path = report.write_action_tables(str(tmp_path), summary, counts, names)
  assert [(r['action'], r['poses']) for r in _read_csv(csv_path)] == [
      (name, str(counts[a])) for a, name in enumerate(names)] + [('Average', '4')]
  hyp = {k: mpjpe for k in hypotheses.PER_POSE_KEYS}
  hyp.update(action=actions, spread_xyz=np.ones((4, 17, 3)))
  hyp = hypotheses.summarize(hyp, np.zeros((len(names), 16, len(hypotheses.QUANTILES))))
  _, hyp_csv, _, _ = report.write_hypotheses(str(tmp_path), 'x', hyp, 'header', names)
  assert [r['action'] for r in _read_csv(hyp_csv)] == [*names, 'Average']
  assert report.camera_names('mocap/cmu', np.array([0, 3])) == tuple(
      f'virtual_{k}' for k in range(4))
  assert report.camera_names('h36m/cpn', np.array([0, 3])) == skeleton.CAMERA_IDS


def test_hypothesis_summary_by_hand():
  per_pose = {k: np.array([1., 2., 4.]) * (i + 1) for i, k in enumerate(hypotheses.PER_POSE_KEYS)}
  per_pose.update(posterior_mean=np.array([10., 20., 40.]), best_of_k=np.array([5., 15., 30.]),
                  mean_of_k=np.array([12., 22., 44.]), action=np.array([1, 1, 3]),
                  spread_xyz=np.stack([np.full((17, 3), v) for v in (3., 4., 0.)]))
  # Action 1 (2 poses): every joint's indicator true from q = 0.5 for one pose, never for
  # the other: freq = 0.5 from q = 0.5, |freq - q| = q below, |0.5 - q| from 0.5. Action 3
  # (1 pose): true from q = 0.05, |freq - q| = 1 - q but at q = 0.
  q = hypotheses.QUANTILES
  counts = np.zeros((15, 16, 21))
  counts[1] = q >= 0.5 - 1e-9
  counts[3] = q >= 0.05 - 1e-9
  out = hypotheses.summarize(per_pose, counts)
  assert out['tables']['best_of_k']['per_action'][1] == pytest.approx(10)
  assert out['tables']['posterior_mean']['mean_over_actions'] == pytest.approx((15 + 40) / 2)
  assert out['tables']['symmetry_gt']['per_action'][3] == pytest.approx(4 * 11)
  assert np.isnan(out['tables']['sample_mean']['per_action'][0])
  action_1 = (np.sum(q[q < 0.5]) + np.sum(np.abs(0.5 - q[q >= 0.5]))) / 21
  action_3 = (0 + np.sum(1 - q[1:])) / 21
  calibration = out['tables']['calibration_error']
  assert calibration['per_action'][1] == pytest.approx(action_1)
  assert calibration['per_action'][3] == pytest.approx(action_3)
  assert np.isnan(calibration['per_action'][0])
  assert calibration['mean_over_actions'] == pytest.approx((action_1 + action_3) / 2)
  # Over all 3 poses: freq = 1/3 from 0.05, 2/3 from 0.5, for every joint.
  freq = (counts[1] + counts[3]) / 3
  np.testing.assert_allclose(out['calibration_frequencies'], freq)
  assert np.isnan(out['calibration_error_joint'][0])
  np.testing.assert_allclose(out['calibration_error_joint'][1:], np.abs(freq[0] - q).mean())
  assert out['calibration_error_all_poses'] == pytest.approx(np.abs(freq[0] - q).mean())
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
  errors = figures.error_distribution(rng.uniform(20, 80, 40), np.arange(40) % 15,
                                     skeleton.ACTIONS)
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

  all_rows = data.hypothesis_rows(0, 0)
  np.testing.assert_array_equal(all_rows, np.arange(240))
  np.testing.assert_array_equal(data.hypothesis_rows(500, 0), all_rows)
  rows = data.hypothesis_rows(100, 0)  # a fixed, seeded subset in the records' order
  np.testing.assert_array_equal(rows, data.hypothesis_rows(100, 0))
  assert len(np.unique(rows)) == 100 and np.all(np.diff(rows) > 0)
  assert not np.array_equal(rows, data.hypothesis_rows(100, 1))

  def run(temperature, k, rows=all_rows):
    return hypotheses.evaluate_hypotheses(
        model, variables, 'pose_2d', stats, data.hypothesis_batches(64, rows), num_samples=k,
        temperature=temperature, seed=0, num_actions=len(skeleton.ACTIONS))

  cold, cold_counts = run(0.0, 3)
  for key in ('best_of_k', 'mean_of_k', 'sample_mean', 'sample_median'):
    np.testing.assert_allclose(cold[key], cold['posterior_mean'], atol=1e-3)
  np.testing.assert_allclose(cold['reprojection_samples'], cold['reprojection_posterior_mean'],
                             atol=1e-2)
  assert np.abs(cold['spread_xyz']).max() < 1e-3
  # Identical samples: no ground truth within any radius; calibration error 0.5.
  assert not cold_counts.any()
  assert hypotheses.summarize(cold, cold_counts)['calibration_error_all_poses'] == 0.5
  # The input 2D is the ground truth's projection; the ground truth is symmetric.
  assert np.abs(cold['reprojection_gt']).max() < 0.01
  assert np.abs(cold['symmetry_gt']).max() < 0.01
  warm, warm_counts = run(1.0, 200)
  assert len(warm['best_of_k']) == len(plain['action']) == 240
  np.testing.assert_array_equal(warm['action'], plain['action'])
  np.testing.assert_allclose(warm['posterior_mean'], plain['2d->3d/mpjpe'], atol=1e-3)
  for single in ('posterior_mean', 'sample_mean', 'sample_median'):
    assert warm['best_of_k'].mean() < warm[single].mean()
  assert np.all(warm['best_of_k'] <= warm['mean_of_k'])
  assert np.all(warm['spread_xyz'][:, skeleton.ROOT] == 0)
  assert np.all(warm['spread_xyz'][:, 1:].mean(axis=0) > 0)
  assert np.all(warm['reprojection_samples'] > 0) and np.all(warm['symmetry_samples'] > 0)
  assert warm_counts.sum(axis=(1, 2)).max() > 0
  np.testing.assert_array_equal(warm_counts[np.bincount(plain['action'], minlength=15) == 0], 0)
  subset, _ = run(1.0, 8, rows)
  np.testing.assert_allclose(subset['posterior_mean'], plain['2d->3d/mpjpe'][rows], atol=1e-3)
  np.testing.assert_array_equal(subset['action'], plain['action'][rows])


def test_image_hypothesis_batches_follow_the_side_file(tiny_data_dir):
  # Image models stream crops; the reprojection's root_3d and pose_2d come from the pose
  # side file: a subset's streamed rows must be the side file's rows.
  config = tiny_config(tiny_data_dir, name='crossmodal')
  builder = input_pipeline.get_builder(config.dataset, tiny_data_dir)
  data = report.EvalData(config, input_pipeline.normalization_stats(builder), 'test')
  assert data.streams_images
  rows = data.hypothesis_rows(50, 3)
  batches = list(data.hypothesis_batches(32, rows))
  assert len(batches) == 2
  got = {k: np.concatenate([np.asarray(b[k]) for b in batches])
         for k in ('pose_3d_mm', 'camera_index', 'action', 'valid', 'root_3d', 'pose_2d_px')}
  assert got['valid'].sum() == 50 and not got['valid'][50:].any()
  arrays = data.pose_arrays()
  np.testing.assert_array_equal(got['pose_3d_mm'][:50], arrays['pose_3d'][rows])
  np.testing.assert_array_equal(got['camera_index'][:50], arrays['camera_index'][rows])
  np.testing.assert_array_equal(got['root_3d'][:50], arrays['root_3d'][rows])
  # The ground truth, put at its root and projected, lands on the input 2D.
  valid = {k: v[:50] for k, v in got.items()}
  camera = {k: v[valid['camera_index']].astype(np.float32)
            for k, v in cameras.intrinsics_by_index().items()}
  error = hypotheses.reprojection_error_px(valid['pose_3d_mm'], valid['root_3d'], camera,
                                           valid['pose_2d_px'])
  assert np.abs(np.asarray(error)).max() < 0.01


def _check_hypothesis_files(eval_dir, trained_mpjpe):
  """The 2d->3d hypothesis files of a run over all 240 poses; returns the CSV's rows."""
  hyp = {r['action']: r for r in _read_csv(os.path.join(eval_dir, '2d_to_3d_hypotheses.csv'))}
  assert float(hyp['Average']['best_of_k_mpjpe_mm']) < float(
      hyp['Average']['posterior_mean_mpjpe_mm'])
  assert float(hyp['Average']['posterior_mean_mpjpe_mm']) == pytest.approx(
      trained_mpjpe, abs=0.01)
  new_columns = ('sample_mean_mpjpe_mm', 'sample_median_mpjpe_mm', 'calibration_error',
                 'reprojection_samples_px', 'reprojection_posterior_mean_px',
                 'reprojection_gt_px', 'symmetry_samples_mm', 'symmetry_posterior_mean_mm',
                 'symmetry_gt_mm')
  for row in (hyp['Average'], hyp['Directions']):
    assert all(np.isfinite(float(row[c])) for c in new_columns)
  assert 0 <= float(hyp['Average']['calibration_error']) <= 1
  assert float(hyp['Average']['reprojection_gt_px']) < 0.01 < float(
      hyp['Average']['reprojection_samples_px'])
  markdown = open(os.path.join(eval_dir, '2d_to_3d_hypotheses.md')).read()
  for label in ('best of K (oracle)', 'median of the samples', 'calibration error',
                'reprojection: samples (px)', 'bone symmetry: samples (mm)', '| ECE |'):
    assert label in markdown
  assert ', 240 poses.' in markdown.splitlines()[0]
  assert len(_read_csv(os.path.join(eval_dir, '2d_to_3d_spread.csv'))) == 17
  calibration = _read_csv(os.path.join(eval_dir, '2d_to_3d_calibration.csv'))
  assert [r['joint'] for r in calibration] == list(skeleton.JOINT_NAMES)
  assert calibration[0]['calibration_error'] == '' and len(calibration[0]) == 2 + 21
  assert all(0 <= float(r['calibration_error']) <= 1 for r in calibration[1:])
  return hyp


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
  hyp = _check_hypothesis_files(eval_dir, trained['2d->3d/mpjpe']['mean_over_actions'])

  sizes = {'2d_to_3d_predictions': (1700, 1760), '2d_to_3d_errors': (900, 630),
           '2d_to_3d_spread': (1100, 520),  # with its caption
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
  assert {'test/2d->3d/hypotheses_calibration_error', 'test/2d->3d/hypotheses_sample_median',
          'test/2d->3d/hypotheses_reprojection_samples',
          'test/2d->3d/hypotheses_symmetry_samples'} <= tags

  data = json.loads(open(os.path.join(eval_dir, 'summary.json')).read())
  assert data['step'] == 60 and data['num_poses'] == 240
  assert data['tables']['2d->3d/mpjpe']['mean_over_actions'] == pytest.approx(
      trained['2d->3d/mpjpe']['mean_over_actions'], abs=0.01)
  assert data['hypotheses']['2d->3d']['best_of_k'] == pytest.approx(
      float(hyp['Average']['best_of_k_mpjpe_mm']), abs=1e-3)
  assert data['num_hypothesis_poses'] == 240
  for key, column in (('calibration_error', 'calibration_error'),
                      ('reprojection_samples', 'reprojection_samples_px'),
                      ('symmetry_gt', 'symmetry_gt_mm'),
                      ('sample_median', 'sample_median_mpjpe_mm')):
    assert data['hypotheses']['2d->3d'][key] == pytest.approx(float(hyp['Average'][column]),
                                                              abs=1e-3)
  assert 0 <= data['hypotheses']['2d->3d']['calibration_error_all_poses'] <= 1
  # The run summary (the end of ./run.sh) reads summary.json back.
  text = summary.summary_text(workdir)
  assert '| **Average** |' in text
  best = float(hyp['Average']['best_of_k_mpjpe_mm'])
  assert '2d->3d: posterior mean ' in text and f'best of 8 {best:.1f} mm (oracle)' in text
  assert '(8 samples from the posterior, 240 poses)' in text
  calibration = data['hypotheses']['2d->3d']['calibration_error']
  assert 'mean / median of the 8 samples' in text
  assert f'calibration error {calibration:.3f}' in text
  assert 'reprojection ' in text and 'bone symmetry ' in text
  assert f'calibration error {calibration:.2f} (0: calibrated, 0.5: worst); the ' in text
  assert os.path.join(eval_dir, '2d_to_3d_predictions.png') in text
  assert out['eval_dir'] == eval_dir
  with pytest.raises(FileNotFoundError, match='python -m hpe_jax.evaluate'):
    summary.summary_text(str(tmp_path / 'never_evaluated'))


def test_hypotheses_of_a_subset_of_poses(tiny_lifting_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  out = report.run_evaluation(workdir, checkpoint='last', num_hypotheses=4,
                              max_hypothesis_poses=100, umap_neighbors=())
  eval_dir = os.path.join(workdir, 'eval')
  assert out['hypotheses']['2d->3d']['counts'].sum() == 100
  rows = {r['action']: r for r in _read_csv(os.path.join(eval_dir, '2d_to_3d_hypotheses.csv'))}
  assert int(rows['Average']['poses']) == 100
  header = open(os.path.join(eval_dir, '2d_to_3d_hypotheses.md')).readline()
  assert '100 of its 240 poses (a fixed random subset, seed 0' in header
  data = json.loads(open(os.path.join(eval_dir, 'summary.json')).read())
  assert data['num_poses'] == 240 and data['num_hypothesis_poses'] == 100
  assert '(4 samples from the posterior, 100 of the 240 poses)' in summary.summary_text(workdir)


def test_generated_images_are_stretched_and_flat_ones_said(tmp_path):
  faint = np.broadcast_to(np.linspace(100, 110, 16)[None, :, None], (16, 16, 3))
  flat = np.full((16, 16, 3), 120.0)
  out, is_flat = images.stretched(np.stack([faint, flat]).astype(np.uint8))
  assert out[0].min() == 0 and out[0].max() == 255 and list(is_flat) == [False, True]
  np.testing.assert_array_equal(out[1], 120)
  rows = np.stack([np.stack([faint, faint]), np.stack([flat, flat])]).astype(np.uint8)
  images.save_image_grid(str(tmp_path / 'images.png'), rows, ['input', 'rgb->rgb'])
  assert Image.open(tmp_path / 'images.png').size[0] > 100


def test_spread_caption_says_when_the_samples_are_near_copies():
  assert 'near-copies and do not cover the error' in hypotheses.spread_caption(8, 110, 0.49)
  assert 'matches the errors' in hypotheses.spread_caption(90, 100, 0.05)
  assert 'wider than the errors' in hypotheses.spread_caption(300, 100, 0.3)
