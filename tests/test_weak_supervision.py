"""Weak supervision: the geometry on hand-made cases, the losses on ground truth and off it,
the second views of a batch, and training that never reads pose_3d."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import tiny_config
from hpe_jax import batches
from hpe_jax import camera_geometry
from hpe_jax import config_lib
from hpe_jax import input_pipeline
from hpe_jax import ray_spread
from hpe_jax import weak_supervision as ws
from tfds_h36m import cameras
from tfds_h36m import skeleton

# A standing skeleton (mm, root-relative, camera axes: x right, y down, z forward), with left
# and right bones of equal length.
SKELETON = np.array([
    [0, 0, 0], [-130, 0, 0], [-130, 450, 0], [-130, 880, 0], [130, 0, 0], [130, 450, 0],
    [130, 880, 0], [0, -230, 0], [0, -480, 0], [0, -590, 20], [0, -700, 0], [180, -470, 0],
    [180, -190, 0], [180, 60, 0], [-180, -470, 0], [-180, -190, 0], [-180, 60, 0]],
    np.float32)


def _weak(**overrides):
  config = ml_collections.ConfigDict(dict(
      root='known', reprojection=1.0, multiview=1.0, multiview_kind='extrinsics',
      bone_symmetry=0.1, bone_consistency=0.1, pose_3d_std_mm=300.0))
  config.update(overrides)
  stats = {'pose_2d_std': np.full((16, 2), 100.0, np.float32)}
  return ws.WeakSupervision(config, stats)


def _views_of_world_pose(pose_world, subject='S9', cams=(0, 2)):
  """Ground-truth 2D (px), root (mm), cameras and root-relative camera-frame poses of one
  world pose in two Human3.6M cameras, as a batch of one with its second view."""
  batch, poses = {}, []
  for index, suffix in zip(cams, ('', '_other')):
    camera = cameras.load_cameras(subject)[index]
    pose_cam = cameras.world_to_camera(pose_world, camera)
    fields = {'pose_2d_px': cameras.project(pose_cam, camera), 'root_3d': pose_cam[0],
              'camera_rotation': camera.rotation, 'camera_centre': camera.translation,
              **{k: getattr(camera, k) for k in ray_spread.INTRINSICS}}
    batch.update({k + suffix: np.asarray(v, np.float32)[None] for k, v in fields.items()})
    poses.append((pose_cam - pose_cam[0])[None].astype(np.float32))
  batch.update(subject_number=np.array([skeleton.subject_number(subject)], np.int32),
               view_valid=np.array([True]))
  return batch, poses[0], poses[1]


def _world_pose():
  """SKELETON turned upright in Human3.6M's world (z up) at (500, 300, 900) mm."""
  to_world = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float64)
  return SKELETON @ to_world.T + np.array([500.0, 300.0, 900.0])


def test_projection_is_the_datasets_camera_model():
  camera = cameras.load_cameras('S1')[1]
  points = np.random.default_rng(0).normal([0, 0, 4500], [600, 600, 500], (3, 17, 3))
  intrinsics = cameras.intrinsics_by_index()
  args = [jnp.asarray(np.repeat(intrinsics[k][1:2], 3, axis=0), jnp.float32) for k in (
      'focal_length', 'center', 'radial_distortion', 'tangential_distortion')]
  projected = cameras.project(points, camera)
  np.testing.assert_allclose(
      camera_geometry.project(jnp.asarray(points, jnp.float32), *args), projected, atol=1e-2)
  pinhole = points[..., :2] / points[..., 2:] * camera.focal_length + camera.center
  np.testing.assert_allclose(
      camera_geometry.undistort(jnp.asarray(projected, jnp.float32), *args), pinhole, atol=1e-2)
  assert np.abs(projected - pinhole).max() > 1.0  # the distortion is there to undo


def test_fit_root_recovers_the_translation_of_a_pinhole_projection():
  focal, center = np.array([[1100.0, 1000.0]]), np.array([[500.0, 480.0]])
  root = np.array([[150.0, -80.0, 4200.0]])
  points = SKELETON[None] + root[:, None]
  pose_2d = focal[:, None] * points[..., :2] / points[..., 2:] + center[:, None]
  fitted = camera_geometry.fit_root(
      jnp.asarray(SKELETON[None]), jnp.asarray(pose_2d, jnp.float32),
      jnp.asarray(focal, jnp.float32), jnp.asarray(center, jnp.float32))
  np.testing.assert_allclose(fitted, root, rtol=1e-4)


def test_reprojection_and_multiview_are_zero_on_ground_truth_and_positive_off_it():
  batch, pose_a, pose_b = _views_of_world_pose(_world_pose())
  weak = _weak()
  terms = weak.losses(jnp.asarray(pose_a), batch, jnp.asarray(pose_b))
  assert float(terms['reprojection']) < 1e-6 and float(terms['multiview']) < 1e-6
  bent = pose_a.copy()
  bent[0, 13] += np.array([0.0, 0.0, 200.0])  # the left wrist 20 cm deeper
  off = weak.losses(jnp.asarray(bent), batch, jnp.asarray(pose_b))
  assert float(off['multiview']) > 1e-3  # depth errors show in the other view
  # mean over 17 joints of (200 mm)^2 over (300 mm)^2
  np.testing.assert_allclose(float(off['multiview']), 200.0**2 / 17 / 300.0**2, rtol=1e-3)
  unknown = dict(batch, camera_centre_other=np.full((1, 3), np.nan, np.float32))
  assert float(weak.losses(jnp.asarray(bent), unknown, jnp.asarray(pose_b))['multiview']) == 0
  moved = pose_a + np.array([0.0, 50.0, 0.0], np.float32)  # every joint 5 cm lower: ~12 px
  assert float(weak.losses(jnp.asarray(moved), batch, None)['reprojection']) > 5e-3


def test_fitted_root_and_rigid_alignment_need_no_3d_position():
  batch, pose_a, pose_b = _views_of_world_pose(_world_pose())
  del batch['root_3d'], batch['root_3d_other']
  for kind in ('extrinsics', 'rigid'):
    terms = _weak(root='fit', multiview_kind=kind).losses(jnp.asarray(pose_a), batch,
                                                          jnp.asarray(pose_b))
    assert float(terms['reprojection']) < 1e-6, kind
    assert float(terms['multiview']) < 1e-6, kind
  # A rotated copy of a pose is perfectly consistent under the rigid alignment only.
  angle = 0.7
  rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                       [-np.sin(angle), 0, np.cos(angle)]], np.float32)
  residual = ws.rigid_residual(jnp.asarray(pose_a), jnp.asarray(pose_a @ rotation.T))
  assert float(residual[0]) < 1e-2
  assert float(ws.rigid_residual(jnp.asarray(pose_a), jnp.asarray(pose_a * 1.2))[0]) > 1.0


def test_bone_priors_on_hand_made_skeletons():
  lengths = ws.bone_lengths(jnp.asarray(SKELETON[None]))
  np.testing.assert_allclose(lengths[0, 1], 450.0)  # right thigh, joint 1 -> 2
  assert float(ws.bone_symmetry_loss(lengths)[0]) < 1e-9
  longer = SKELETON.copy()
  longer[13, 1] += 60.0  # the left forearm 60 mm longer
  lengths_2 = ws.bone_lengths(jnp.asarray(longer[None]))
  expected = 60.0**2 / 6 / float(jnp.mean(lengths_2**2))  # 6 left-right bone pairs
  np.testing.assert_allclose(ws.bone_symmetry_loss(lengths_2)[0], expected, rtol=1e-5)
  # Equal bones in two poses of one subject are consistent, whatever the joint angles; the
  # loss is relative, so shrinking both poses does not lower it.
  raised = SKELETON.copy()
  raised[12:14] = raised[11] + np.array([[280.0, 0, 0], [530.0, 0, 0]])
  both = jnp.asarray(np.stack([SKELETON, raised]))
  same_subject = jnp.array([5, 5])
  assert float(jnp.max(ws.bone_consistency_loss(ws.bone_lengths(both), same_subject))) < 1e-9
  mixed = jnp.asarray(np.stack([SKELETON, longer]))
  loss = ws.bone_consistency_loss(ws.bone_lengths(mixed), same_subject)
  assert float(loss[0]) > 0
  np.testing.assert_allclose(ws.bone_consistency_loss(ws.bone_lengths(mixed * 0.1),
                                                      same_subject), loss, rtol=1e-4)
  assert float(jnp.max(ws.bone_consistency_loss(ws.bone_lengths(mixed), jnp.array([1, 5])))) \
      < 1e-9  # two subjects may differ


def test_view_table_and_second_views_of_a_batch():
  arrays = {'subject_number': np.array([1, 1, 1, 5, 1]), 'action': np.zeros(5, int),
            'subaction': np.zeros(5, int), 'frame': np.array([7, 7, 8, 7, 7]),
            'camera_index': np.array([0, 2, 0, 0, 3])}
  table = input_pipeline.view_table(arrays)
  np.testing.assert_array_equal(table[0], [0, -1, 1, 4])
  np.testing.assert_array_equal(table[2], [2, -1, -1, -1])
  np.testing.assert_array_equal(table[3], [3, -1, -1, -1])
  data = {'views': jnp.asarray(table), 'camera_index': jnp.asarray(arrays['camera_index']),
          'pose_2d_px': jnp.arange(5.0)[:, None, None] * jnp.ones((5, 17, 2))}
  idx = jnp.zeros(64, jnp.int32)  # row 0, many draws of its second camera
  batch = batches.gather_rows(data, idx, jax.random.PRNGKey(0))
  valid = np.asarray(batch['view_valid'])
  others = np.asarray(batch['camera_index_other'])[valid]
  assert set(others.tolist()) == {2, 3} and valid.sum() < 64  # camera 1 never saw it
  assert set(np.asarray(batch['pose_2d_px_other'])[valid, 0, 0].tolist()) == {1.0, 4.0}


def test_config_checks_and_the_root_option():
  config = config_lib.load('configs/weakly_supervised.py:tiny,root=known')
  assert config.supervision == 'weak' and config.weak.root == 'known'
  bad = config.copy_and_resolve_references()
  bad.weak.root = 'guess'
  with pytest.raises(config_lib.ConfigError, match="Unknown weak.root 'guess'"):
    config_lib.check(bad)
  bad = config.copy_and_resolve_references()
  bad.pairs = [dict(source='pose_3d', target='pose_3d', weight=1.0, beta=0.001)]
  with pytest.raises(config_lib.ConfigError, match='from 2D poses alone'):
    config_lib.check(bad)
  bad = config.copy_and_resolve_references()
  bad.augment.flip_prob = 0.5
  with pytest.raises(config_lib.ConfigError, match='pose flips'):
    config_lib.check(bad)


def _weak_run(data_dir, workdir, monkeypatch, *, hide_3d, num_epochs):
  """Trains configs/weakly_supervised.py:tiny (fitted root); with `hide_3d`, every training
  pose_3d and root_3d the data pipeline could hand out is NaN."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  if hide_3d:
    real = input_pipeline.load_pose_arrays

    def nan_3d(builder, split, **kwargs):
      arrays = real(builder, split, **kwargs)
      if split.startswith('train'):
        arrays = {k: np.full_like(v, np.nan) if k in ('pose_3d', 'root_3d') else v
                  for k, v in arrays.items()}
      return arrays

    monkeypatch.setattr(input_pipeline, 'load_pose_arrays', nan_3d)
  config = tiny_config(data_dir, name='weakly_supervised', num_epochs=num_epochs)
  summary = train.train_and_evaluate(config, str(workdir))
  monkeypatch.undo()
  return config, summary


def test_weak_training_never_reads_3d_labels_and_lowers_p2(tiny_data_dir, tmp_path,
                                                           monkeypatch):
  from conftest import assert_trees_equal, latest_state  # pylint: disable=g-import-not-at-top
  config, trained = _weak_run(tiny_data_dir, tmp_path / 'real', monkeypatch, hide_3d=False,
                              num_epochs=3)
  _, hidden = _weak_run(tiny_data_dir, tmp_path / 'nan', monkeypatch, hide_3d=True,
                        num_epochs=3)
  real_state = latest_state(str(tmp_path / 'real'), config)
  assert_trees_equal(real_state.params, latest_state(str(tmp_path / 'nan'), config).params)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(real_state.params))
  _, untrained = _weak_run(tiny_data_dir, tmp_path / 'init', monkeypatch, hide_3d=False,
                           num_epochs=0)
  key = '2d->3d/p_mpjpe'
  assert trained[key]['mean_over_actions'] < 0.95 * untrained[key]['mean_over_actions']
  assert hidden[key]['mean_over_actions'] == trained[key]['mean_over_actions']


def test_weak_training_on_motion_capture_reads_each_takes_cameras(tiny_mocap_data_dir, tmp_path):
  """A mocap dataset's examples carry their virtual camera's pose: two views of a frame
  agree once turned into the world, and weak training with multi-view consistency runs."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  from tfds_h36m import builders  # pylint: disable=g-import-not-at-top
  arrays = input_pipeline.load_pose_arrays(builders.load('mocap/tiny', tiny_mocap_data_dir),
                                           'train')
  table = input_pipeline.view_table(arrays)
  row, other = next((r, v) for r, views in enumerate(table) for v in views
                    if v >= 0 and v != r)
  world = [arrays['pose_3d'][i] @ arrays['camera_rotation'][i].T
           + arrays['root_3d'][i] @ arrays['camera_rotation'][i].T + arrays['camera_centre'][i]
           for i in (row, other)]
  np.testing.assert_allclose(world[0], world[1], atol=0.5)  # mm
  config = tiny_config(tiny_mocap_data_dir, name='weakly_supervised', num_epochs=1)
  config.dataset, config.input_space = 'mocap/tiny', 'camera'  # 2D input on the image plane
  summary = train.train_and_evaluate(config, str(tmp_path / 'workdir'))
  assert np.isfinite(summary['2d->3d/mpjpe']['mean_over_actions'])
