"""2D-consistent hypotheses: snapping to the camera rays, ray frames, the residual table,
and the rays sampler fitted by cross-fitting and evaluated on a trained tiny model."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from hpe_jax import camera_geometry
from hpe_jax import config_lib
from hpe_jax import cross_fitting
from hpe_jax import input_pipeline
from hpe_jax import ray_spread
from hpe_jax.evaluation import report
from hpe_jax.evaluation import summary as eval_summary

# A standing skeleton (17 joints, root-relative mm, camera frame: x right, y down, z depth).
POSE = np.array([
    [0, 0, 0], [-130, 0, 20], [-130, 450, 60], [-130, 880, 0], [130, 0, -20], [130, 450, -90],
    [130, 880, 0], [0, -230, 10], [0, -480, 0], [0, -590, 20], [0, -700, 0], [180, -470, 0],
    [260, -190, -150], [200, 60, -300], [-180, -470, 0], [-180, -190, 80], [-180, 60, 120]],
    np.float32)
ROOT = np.array([150.0, -80.0, 4200.0], np.float32)
FOCAL, CENTER = np.array([1100.0, 1080.0], np.float32), np.array([510.0, 490.0], np.float32)


def _intrinsics(n=1):
  return (jnp.tile(FOCAL, (n, 1)), jnp.tile(CENTER, (n, 1)), jnp.zeros((n, 3)),
          jnp.zeros((n, 2)))


def _pinhole_px(points):
  """Pinhole projection (px) of camera-frame points (..., 3) mm, by hand."""
  return FOCAL * points[..., :2] / points[..., 2:] + CENTER


def test_snap_keeps_a_consistent_pose_and_moves_joints_onto_their_rays():
  pose_2d = jnp.asarray(_pinhole_px(POSE + ROOT)[None])
  snapped, _ = ray_spread.snap(jnp.asarray(POSE[None]), pose_2d, _intrinsics())
  np.testing.assert_allclose(snapped[0], POSE, atol=0.05)
  # Joints moved along their rays (through the camera centre) keep the 2D pose: unchanged.
  along = POSE.copy()
  along[1:] = (POSE[1:] + ROOT) * np.linspace(0.9, 1.1, 16)[:, None] - ROOT
  snapped, _ = ray_spread.snap(jnp.asarray(along[None]), pose_2d, _intrinsics())
  np.testing.assert_allclose(snapped[0], along, atol=0.05)
  # Joints moved across their rays come back onto them: the snapped pose at its fitted
  # root projects onto the 2D pose, and the root stays at the origin.
  across = POSE + np.random.default_rng(0).normal(0, 30, POSE.shape).astype(np.float32)
  across[0] = 0
  snapped, _ = ray_spread.snap(jnp.asarray(across[None]), pose_2d, _intrinsics())
  snapped = np.asarray(snapped[0])
  assert np.abs(snapped - across).max() > 5 and np.all(snapped[0] == 0)
  root = camera_geometry.fit_root(jnp.asarray(across[None]), pose_2d, jnp.asarray(FOCAL[None]),
                                  jnp.asarray(CENTER[None]))
  np.testing.assert_allclose(_pinhole_px(snapped[1:] + np.asarray(root)), pose_2d[0, 1:],
                             atol=0.05)
  # The nearest point of the ray: the move is perpendicular to it.
  ray = (snapped[1:] + np.asarray(root)) / np.linalg.norm(snapped[1:] + np.asarray(root),
                                                          axis=-1, keepdims=True)
  np.testing.assert_allclose(np.sum((across[1:] - snapped[1:]) * ray, axis=-1), 0, atol=0.05)


def test_ray_frames_are_orthonormal_with_the_ray_last():
  rays = np.random.default_rng(1).normal(0, 0.2, (5, 16, 3)) + [0.0, 0.0, 1.0]
  rays = jnp.asarray(rays / np.linalg.norm(rays, axis=-1, keepdims=True), jnp.float32)
  frames = ray_spread.ray_frames(rays)
  np.testing.assert_allclose(frames @ jnp.swapaxes(frames, -1, -2),
                             np.broadcast_to(np.eye(3), frames.shape), atol=1e-5)
  np.testing.assert_allclose(frames[..., 2, :], rays, atol=1e-6)
  assert np.all(np.abs(frames[..., 0, 1]) < 1e-6)  # the first axis is horizontal


def test_frame_errors_and_samples_round_trip():
  pose_2d = jnp.asarray(_pinhole_px(POSE + ROOT)[None])
  pose, frames = ray_spread.snap(jnp.asarray(POSE[None]), pose_2d, _intrinsics())
  target = np.array(pose)
  ray = np.asarray(frames[0, 12, 2])  # joint 13 (left wrist) moved 40 mm along its ray
  target[0, 13] += 40 * ray
  errors = ray_spread.frame_errors(pose, frames, jnp.asarray(target))
  expected = np.zeros(48)
  expected[12 * 3 + 2] = 40
  np.testing.assert_allclose(errors[0], expected, atol=1e-3)
  table = jnp.concatenate([errors, jnp.zeros_like(errors)])
  samples = ray_spread.sample(pose, frames, table, jax.random.PRNGKey(0), 0.5, 64)
  assert samples.shape == (1, 64, 17, 3)
  moved = np.abs(np.asarray(samples[0]) - np.asarray(pose[0])).max(axis=(1, 2)) > 1
  assert 0 < moved.sum() < 64  # both rows of the table were drawn
  np.testing.assert_allclose(samples[0, moved][:, 13], np.broadcast_to(
      pose[0, 13] + 20 * ray, (moved.sum(), 3)), atol=1e-3)
  assert np.all(np.asarray(samples[..., 0, :]) == 0)


def test_residual_table_takes_the_632_shares(tmp_path):
  held_out, in_sample = np.ones((100, 48)), np.zeros((100, 48))
  table = ray_spread.residual_table(held_out, in_sample, 50)
  assert table.shape == (50, 48) and table.dtype == np.float32
  assert table[:, 0].sum() == 32  # ceil(0.632 x 50) errors on unseen people
  assert ray_spread.residual_table(held_out, in_sample[:5], 50).shape == (13, 48)
  path = ray_spread.save(str(tmp_path), table, {'folds': [[1], [5]]})
  np.testing.assert_array_equal(ray_spread.load(str(tmp_path)), table)
  with np.load(path) as f:
    assert json.loads(str(f['record'])) == {'folds': [[1], [5]]}
  with pytest.raises(FileNotFoundError, match='python -m hpe_jax.fit_spread --workdir='):
    ray_spread.load(str(tmp_path / 'elsewhere'))


def test_excluded_subjects_leave_training(tiny_data_dir):
  config = tiny_config(tiny_data_dir, train_exclude_subjects=(1,))
  builder = input_pipeline.get_builder(config.dataset, tiny_data_dir)
  arrays = input_pipeline._load_train_arrays(config, builder, ('pose_3d',))
  everyone = input_pipeline.load_pose_arrays(builder, 'train', fields=('subject_number',))
  assert set(arrays['subject_number']) == {5}
  assert len(arrays['pose_3d']) == np.sum(everyone['subject_number'] == 5)
  with pytest.raises(ValueError, match='leaves no training poses'):
    input_pipeline._load_train_arrays(tiny_config(tiny_data_dir, train_exclude_subjects=(1, 5)),
                                      builder, ('pose_3d',))
  image_config = tiny_config(tiny_data_dir, name='image', train_exclude_subjects=(1,))
  with pytest.raises(config_lib.ConfigError, match='train_exclude_subjects is for pose'):
    config_lib.check(image_config)


def test_rays_sampler_fitted_by_cross_fitting(tiny_lifting_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  with pytest.raises(FileNotFoundError, match='hpe_jax.fit_spread'):
    report.run_evaluation(workdir, checkpoint='last', num_hypotheses=4, umap_neighbors=(),
                          sampler='rays')
  path = cross_fitting.fit(workdir, max_rows=500)
  with np.load(path) as f:
    record, table = json.loads(str(f['record'])), f['table']
  assert record['folds'] == [[1], [5]]  # the tiny set's training subjects, one fold each
  assert os.path.isdir(os.path.join(workdir, cross_fitting.FOLDS_DIR, 'fold_1', 'checkpoints'))
  assert table.shape[1] == 48 and 0 < len(table) <= 500
  # Unseen people are lifted worse than the training poses.
  assert record['held_out_rms_along_rays_mm'] > record['in_sample_rms_along_rays_mm']
  out = report.run_evaluation(workdir, checkpoint='last', num_hypotheses=32,
                              max_hypothesis_poses=100, umap_neighbors=(), sampler='rays')
  hyp = out['hypotheses']['2d->3d']['tables']
  assert hyp['best_of_k']['mean_over_actions'] < hyp['posterior_mean']['mean_over_actions']
  spread = out['hypotheses']['2d->3d']['spread_xyz']
  # The root stays put; every other joint's samples differ by more than 1 mm (std per axis).
  assert spread[0].max() == 0 and spread[1:].min() > 1.0
  eval_dir = os.path.join(workdir, 'eval')
  summary = json.load(open(os.path.join(eval_dir, 'summary.json')))
  assert summary['sampler'] == 'rays'
  header = open(os.path.join(eval_dir, '2d_to_3d_hypotheses.md')).readline()
  assert 'samples per pose along the camera rays (ray_spread.npz)' in header
  assert '(32 samples along the camera rays, 100 of the 240 poses)' in (
      eval_summary.summary_text(workdir))
