"""Left-right mirroring: hand-made skeletons, the projection's equivariance, the test-time flip."""

import json
import shutil

import jax
import numpy as np
import pytest

from conftest import tiny_config
import hpe_jax
from hpe_jax import evaluator as evaluator_lib
from hpe_jax import input_pipeline
from hpe_jax import metrics
from hpe_jax import mirror
from hpe_jax import modalities
from hpe_jax import train
from hpe_jax.models import factory
from tfds_h36m import skeleton


def _skeleton_mm():
  """A hand-made 17-joint pose: joint j at (10 j + 1, -5 j, 3 j) mm, root at the origin."""
  j = np.arange(17, dtype=np.float32)[:, None]
  pose = np.concatenate([10 * j + 1, -5 * j, 3 * j], axis=1)
  pose[0] = 0.0
  return pose


def _identity_stats(rng=None):
  rng = rng or np.random.default_rng(0)
  return {'pose_2d_mean': rng.normal(500, 50, (16, 2)).astype(np.float32),
          'pose_2d_std': rng.uniform(50, 100, (16, 2)).astype(np.float32),
          'pose_3d_mean': rng.normal(0, 100, (16, 3)).astype(np.float32),
          'pose_3d_std': rng.uniform(100, 300, (16, 3)).astype(np.float32)}


def test_mirror_3d_swaps_sides_and_negates_x():
  pose = _skeleton_mm()
  mirrored = np.asarray(mirror.mirror_pose_3d(pose))
  for left, right in zip(skeleton.LEFT_JOINTS, skeleton.RIGHT_JOINTS):
    np.testing.assert_allclose(mirrored[left], pose[right] * [-1, 1, 1])
    np.testing.assert_allclose(mirrored[right], pose[left] * [-1, 1, 1])
  np.testing.assert_allclose(mirrored[8], [-81.0, -40.0, 24.0])  # a centre joint: x negated
  np.testing.assert_allclose(np.asarray(mirror.mirror_pose_3d(mirrored)), pose)
  # The 16 joints without the root mirror the same way.
  np.testing.assert_allclose(np.asarray(mirror.mirror_pose_3d(pose[1:])), mirrored[1:])


def test_mirror_2d_is_the_image_of_the_mirrored_3d_pose():
  """Projecting (pinhole) a mirrored camera-frame pose gives the mirrored 2D pose."""
  focal, centre = np.array([1145.0, 1144.0]), np.array([512.5, 515.5])
  absolute = _skeleton_mm() + [150.0, -80.0, 4500.0]

  def project(points):
    return focal * points[:, :2] / points[:, 2:] + centre

  mirrored_absolute = absolute * [-1, 1, 1]  # the whole scene, root included, in x = 0
  expected = project(mirrored_absolute[mirror.PERMUTATION_17])
  got = np.asarray(mirror.mirror_pose_2d(project(absolute).astype(np.float32),
                                         np.float32(centre[0])))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_normalized_mirror_round_trip():
  cx = np.array([512.5, 508.8, 519.8, 0.0], np.float32)
  stats = _identity_stats()
  pose = np.random.default_rng(1).normal(size=(3, 16, 2)).astype(np.float32)
  twice = mirror.mirror_normalized(
      'pose_2d', mirror.mirror_normalized('pose_2d', pose, stats, cx[:3]), stats, cx[:3])
  np.testing.assert_allclose(np.asarray(twice), pose, atol=1e-4)


def test_flip_pose_batch_mirrors_only_masked_rows():
  stats = _identity_stats()
  rng = np.random.default_rng(2)
  batch = {'pose_2d': rng.normal(size=(2, 16, 2)).astype(np.float32),
           'pose_3d': rng.normal(size=(2, 16, 3)).astype(np.float32),
           'principal_x': np.array([508.8, 514.9], np.float32)}
  out = mirror.flip_pose_batch(batch, stats, np.array([True, False]))
  np.testing.assert_array_equal(np.asarray(out['pose_3d'][1]), batch['pose_3d'][1])
  expected = mirror.mirror_normalized('pose_3d', batch['pose_3d'][:1], stats)
  np.testing.assert_allclose(np.asarray(out['pose_3d'][:1]), np.asarray(expected), atol=1e-5)
  assert not np.allclose(np.asarray(out['pose_2d'][0]), batch['pose_2d'][0])


@pytest.mark.parametrize('name', ['lifting', 'image'])
def test_flip_test_answers_are_mirror_equivariant(name):
  """With the test-time flip, the answer to a mirrored input is the mirrored answer, for any
  weights: 0.5 (f(x) + M f(M x)) commutes with the mirror M."""
  config = tiny_config(None, name=name, flip_test=True)
  model = factory.create_model(config)
  variables = factory.init_variables(config, model, jax.random.PRNGKey(0))
  stats = _identity_stats()
  evaluator = evaluator_lib.Evaluator(model, config, stats)
  pair = modalities.pairs_to_3d(config)[0]
  rng = np.random.default_rng(3)
  size = config.image_size
  batch = {'pose_2d': rng.normal(size=(4, 16, 2)).astype(np.float32),
           'image': rng.integers(0, 256, (4, size, size, 3)).astype(np.uint8),
           'principal_x': np.array([512.5, 508.8, 519.8, 0.0], np.float32)}
  mirrored = dict(batch, image=batch['image'][:, :, ::-1],
                  pose_2d=mirror.mirror_normalized('pose_2d', batch['pose_2d'], stats,
                                                   batch['principal_x']))
  pred, _ = evaluator.predict_3d_mm(variables, batch, pair)
  pred_of_mirror, _ = evaluator.predict_3d_mm(variables, mirrored, pair)
  np.testing.assert_allclose(np.asarray(pred_of_mirror), np.asarray(mirror.mirror_pose_3d(pred)),
                             atol=1e-2)
  plain = evaluator_lib.Evaluator(model, tiny_config(None, name=name), stats)
  assert not np.allclose(np.asarray(plain.predict_3d_mm(variables, batch, pair)[0]),
                         np.asarray(pred), atol=1e-2)


def test_pose_flips_and_conditional_prior_train(tiny_data_dir, tmp_path):
  """A tiny CVAE run with pose flips and the test-time flip; its lifter samples hypotheses
  that differ by more than 1 mm per joint, the best of which beats the single answer."""
  config = tiny_config(tiny_data_dir, name='cvae', num_epochs=2, flip_test=True)
  config.augment.flip_prob = 0.5
  workdir = str(tmp_path / 'run')
  summary = train.train_and_evaluate(config, workdir)
  assert np.isfinite(summary['2d->3d/mpjpe']['mean_over_actions'])
  assert summary['compiles_after_first_epoch'] == 0
  lifter = hpe_jax.load_lifter(workdir)
  assert 'encoders_pose_3d' not in lifter._variables['params']  # training only
  arrays = input_pipeline.load_pose_arrays(
      input_pipeline.get_builder(config.dataset, config.data_dir), 'test',
      fields=('pose_2d', 'pose_3d'))
  lifted = lifter.lift(arrays['pose_2d'][:64], num_hypotheses=16)
  spread = lifted.hypotheses_mm.std(axis=1)[:, 1:].mean()  # root excluded (always 0)
  assert spread > 1.0, spread
  single = np.asarray(metrics.mpjpe(lifted.poses_mm, arrays['pose_3d'][:64])).mean()
  best = np.asarray(metrics.mpjpe(lifted.hypotheses_mm, arrays['pose_3d'][:64, None])).min(1)
  assert best.mean() < single


def test_lifter_flip_test_is_mirror_equivariant(tiny_lifting_run, tmp_path):
  from hpe_jax.inference import keypoints  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'flip'
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  config = json.loads((workdir / 'config.json').read_text())
  (workdir / 'config.json').write_text(json.dumps(dict(config, flip_test=True)))
  lifter = hpe_jax.load_lifter(str(workdir))
  keypoints_px = np.random.default_rng(4).normal(500, 80, (3, 17, 2)).astype(np.float32)
  reference_x = keypoints.reference_intrinsics()[1][0]
  poses = lifter.lift(keypoints_px).poses_mm
  poses_of_mirror = lifter.lift(np.asarray(mirror.mirror_pose_2d(keypoints_px, reference_x)))
  np.testing.assert_allclose(poses_of_mirror.poses_mm, np.asarray(mirror.mirror_pose_3d(poses)),
                             atol=1e-2)
  plain = hpe_jax.load_lifter(tiny_lifting_run['workdir']).lift(keypoints_px).poses_mm
  assert not np.allclose(plain, poses, atol=1e-2)
