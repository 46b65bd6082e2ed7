"""Motion capture as lifting data: the `mocap` builder, the lifter for any camera (2D on the
normalised image plane), detector-like noise, the camera estimate and the root's position."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

import hpe_jax
from hpe_jax import pose_bodies
from hpe_jax import pose_noise
from hpe_jax.inference import camera as camera_lib
from tfds_h36m import pose_arrays
from tfds_h36m import skeleton
from tfds_h36m.mocap import mocap_dataset_builder
from tfds_h36m.mocap import motions

from experiments import combined_build  # pylint: disable=g-bad-import-order
from conftest import ROOT, write_motion_bvh  # pylint: disable=g-bad-import-order


def _bone_lengths(pose):
  """(N, 16) mm: each joint's distance to its parent, by hand (not weak_supervision's)."""
  return np.linalg.norm(pose[:, 1:] - pose[:, list(skeleton.PARENTS[1:])], axis=-1)


def test_the_tiny_build_splits_by_person_at_50_fps(tiny_mocap_data_dir):
  builder = tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir)
  train, test = (pose_arrays.load(builder, s) for s in ('train', 'test'))
  assert set(train['subject_number']) == {1, 2} and set(test['subject_number']) == {5}
  # 180 frames at 120 fps: 1.4917 s -> 75 frames at 50 fps; 2 takes x 2 cameras per subject.
  assert len(test['frame']) == 2 * 2 * 75 and test['frame'].max() == 74
  summary = builder.info.metadata['build_summary']['test']
  assert summary['frames_50fps'] == 150 and summary['cameras'] == 4
  assert summary['subjects'] == ['cmu05'] and summary['skipped_files'] == []
  assert set(train['action']) == {motions.ACTIONS.index(a) for a in ('walk', 'run', 'jump', 'other')}
  # Every example carries its camera; its 2D pose is its 3D pose's projection, in frame.
  for arrays in (train, test):
    focal, center = arrays['focal_length'], arrays['center']
    pose_cam = arrays['pose_3d'] + arrays['root_3d'][:, None]
    plane = pose_cam[..., :2] / pose_cam[..., 2:]
    np.testing.assert_allclose(plane * focal[:, None] + center[:, None], arrays['pose_2d'],
                               atol=1e-2)
    size = 2 * center  # the principal point is near the centre of the image
    assert np.all(arrays['pose_2d'] > 0) and np.all(arrays['pose_2d'] < 1.05 * size[:, None])
  stats = builder.info.metadata['statistics']
  assert np.shape(stats['pose_2d_camera_std']) == (16, 2)


def test_body_variation_keeps_the_derived_torso():
  rng = np.random.default_rng(0)
  pose = rng.normal(0, 300, (5, 17, 3))
  j = {n: i for i, n in enumerate(skeleton.JOINT_NAMES)}
  pose[:, j['Pelvis']] = (pose[:, j['LHip']] + pose[:, j['RHip']]) / 2
  pose[:, j['Thorax']] = (pose[:, j['LShoulder']] + pose[:, j['RShoulder']]) / 2
  pose[:, j['Spine']] = (pose[:, j['Pelvis']] + pose[:, j['Thorax']]) / 2
  varied = mocap_dataset_builder.vary_body(pose, np.random.default_rng(1), 0.1, 0.05)
  np.testing.assert_allclose(varied[:, 0], pose[:, 0])
  np.testing.assert_allclose(varied[:, j['Pelvis']], (varied[:, j['LHip']] +
                                                      varied[:, j['RHip']]) / 2, atol=1e-9)
  np.testing.assert_allclose(varied[:, j['Spine']], (varied[:, j['Pelvis']] +
                                                     varied[:, j['Thorax']]) / 2, atol=1e-9)
  ratio = _bone_lengths(varied) / _bone_lengths(pose)
  np.testing.assert_allclose(ratio, ratio[:1].repeat(5, 0))  # one body for the whole take
  assert np.std(ratio[0]) > 0.01
  np.testing.assert_allclose(ratio[0, j['LKnee'] - 1], ratio[0, j['RKnee'] - 1])
  widths = {('RHip', 'LHip'): (250.0, 250.0), ('LShoulder', 'RShoulder'): (350.0, 350.0)}
  wide = mocap_dataset_builder.vary_body(pose, np.random.default_rng(1), 0.1, 0.05, widths)
  width = lambda p, a, b: np.linalg.norm(p[:, j[a]] - p[:, j[b]], axis=-1).mean()
  np.testing.assert_allclose(width(wide, 'LShoulder', 'RShoulder') / width(wide, 'RHip', 'LHip'),
                             1.4)
  np.testing.assert_allclose(wide[:, j['Pelvis']], (wide[:, j['LHip']] + wide[:, j['RHip']]) / 2,
                             atol=1e-9)


def test_a_malformed_file_is_skipped_in_one_line(tmp_path):
  good = tmp_path / '01'
  good.mkdir()
  write_motion_bvh(good / '01_01.bvh', 240)
  (good / '01_02.bvh').write_text('HIERARCHY\nROOT hip\n{\n  OFFSET 0 0\n')
  config = mocap_dataset_builder.MocapConfig(name='t', rig='cmu', subjects='cmu', num_workers=1)
  task = (config, mocap_dataset_builder.rigs.RIGS['cmu'], str(good / '01_02.bvh'), '01/01_02.bvh', 'cmu01', 0, 1)
  reason = mocap_dataset_builder._film_take(task)  # pylint: disable=protected-access
  assert isinstance(reason, str) and reason.startswith(str(good / '01_02.bvh'))
  assert '\n' not in reason
  pose_world, takes = mocap_dataset_builder._film_take(task[:2] + (str(good / '01_01.bvh'),)
                                                       + task[3:])
  assert pose_world.shape == (100, 17, 3) and len(takes) == 4


def test_leg_flexion_counts_the_flexed_poses_of_each_split(tiny_mocap_data_dir):
  """experiments.leg_flexion on the tiny build: a JSON line per split, each with its pose
  count and shares that agree with pose_bodies.hip_flexion_deg on the stored poses."""
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.leg_flexion', f'--data_dir={tiny_mocap_data_dir}',
       '--datasets=mocap/tiny'], cwd=ROOT, capture_output=True, text=True, check=True)
  lines = [json.loads(line) for line in done.stdout.splitlines()]
  assert [line['split'] for line in lines] == ['train', 'test']
  builder = tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir)
  for line in lines:
    pose_3d = pose_arrays.load(builder, line['split'], ('pose_3d',))['pose_3d']
    both = pose_bodies.hip_flexion_deg(pose_3d).min(axis=-1)
    assert line['poses'] == len(pose_3d)
    for threshold in (60, 75):
      share = round(float((both > threshold).mean()), 4)
      assert line[f'both_thighs_over_{threshold}_deg'] == share


def test_the_size_oracle_gives_each_test_pose_the_training_bodies_mean_size(
    tiny_mocap_data_dir):
  """experiments.size_floor on the tiny build (run as a program: its flags share names with
  other tools'): the sizes are the sums of the 16 bone lengths, and the oracle's error is that
  of each exact test pose scaled about the camera to the training bodies' mean size."""
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.size_floor', f'--data_dir={tiny_mocap_data_dir}',
       '--datasets=mocap/tiny'], cwd=ROOT, capture_output=True, text=True, check=True)
  (line,) = [json.loads(text) for text in done.stdout.splitlines()]
  builder = tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir)
  train = pose_arrays.load(builder, 'train', ('pose_3d',))['pose_3d']
  test = pose_arrays.load(builder, 'test', ('pose_3d',))['pose_3d']
  train_size, test_size = _bone_lengths(train).sum(-1).mean(), _bone_lengths(test).sum(-1)
  scaled = test * (train_size / test_size)[:, None, None]
  error = np.linalg.norm(scaled - test, axis=-1).mean()
  assert line['tested_on'] == line['sizes_of'] == 'mocap/tiny'
  assert abs(line['train_mean_size_mm'] - train_size) <= 0.05
  assert abs(line['test_mean_size_mm'] - test_size.mean()) <= 0.05
  assert abs(line['oracle_mpjpe_per_pose_mm'] - error) <= 0.05 and error > 0


def test_the_combined_build_links_both_datasets_per_person(tmp_path):
  """experiments.combined_build's folder: CMU's training takes linked `cmu_views` times, its
  test people once, Bandai Namco's training actors once and its test actors not at all, CMU's
  index beside them; every link names its file."""
  cmu, bandai, links = tmp_path / 'cmu', tmp_path / 'bandai' / 'data', tmp_path / 'links'
  for name in ('01/01_01.bvh', '01/01_02.bvh', '08/08_01.bvh'):
    (cmu / name).parent.mkdir(parents=True, exist_ok=True)
    (cmu / name).write_text(name)
  (cmu / 'CMU-INDEX.md').write_text('01_01  walk\n')
  bandai.mkdir(parents=True)
  for name in ('dataset-2_walk_active_001.bvh', 'dataset-2_walk_feminine_001.bvh'):
    (bandai / name).write_text(name)
  counts = combined_build.link_takes(str(cmu), str(tmp_path / 'bandai'), str(links), 3)
  assert counts == {'cmu01': 6, 'cmu08': 1, 'bandai1': 1}
  assert sorted(os.listdir(links / 'cmu01')) == [
      '01_01.bvh', '01_01_view1.bvh', '01_01_view2.bvh',
      '01_02.bvh', '01_02_view1.bvh', '01_02_view2.bvh']
  assert (links / 'cmu01' / '01_02_view2.bvh').read_text() == '01/01_02.bvh'
  assert (links / 'bandai1' / 'dataset-2_walk_active_001.bvh').is_symlink()
  assert sorted(os.listdir(links)) == ['CMU-INDEX.md', 'bandai1', 'cmu01', 'cmu08']
  assert combined_build.link_takes(str(cmu), str(tmp_path / 'bandai'), str(links), 1) == {
      'cmu01': 2, 'cmu08': 1, 'bandai1': 1}  # made anew
  with pytest.raises(ValueError, match='01_01.bvh, which is not a link'):
    combined_build.link_takes(str(cmu), str(tmp_path / 'bandai'), str(cmu), 1)
  assert (cmu / '01' / '01_01.bvh').read_text() == '01/01_01.bvh'  # the capture untouched


def test_kinds_of_motion_are_read_from_words():
  """A keyword counts as a word or an inflection of it, in CMU's descriptions, CamelCase take
  names and Bandai Namco's file names; a longer word that starts with it does not."""
  kind = lambda text: motions.ACTIONS[motions.action_of(text)]
  assert kind('sit on stepstool, stand up') == 'everyday'
  assert kind('climb 3 steps') == 'acrobatics' and kind('stepping over') == 'walk'
  assert kind('NormalWalk') == 'walk' and kind('RunningStraight') == 'run'
  assert kind('dancing bear (human subject)') == 'dance' and kind('boxing') == 'fight'
  assert kind('dataset-1_byebye_happy_001') == 'gestures' and kind('Hopscotch') == 'jump'
  assert kind('laugh') == 'other'


def test_subject_rules():
  of = mocap_dataset_builder.subject_of
  assert of('/x/05/05_12.bvh', 'cmu') == ('cmu05', '05_12')
  assert of('/x/dataset-2_walk_feminine_003.bvh', 'bandai')[0] == 'bandai2'
  assert of('/x/actor3/take.bvh', 'folder') == ('actor3', 'take')
  with pytest.raises(ValueError, match='take.bvh: not NN_MM.bvh'):
    of('/x/actor3/take.bvh', 'cmu')


def test_noise_model_by_hand():
  pose = np.zeros((3, 17, 2), np.float32)
  pose[:, :, 1] = np.linspace(0.0, 1.7, 17)  # 1.7 tall, no width
  noisy = np.asarray(pose_noise.corrupt(jax.random.PRNGKey(0), np.repeat(pose, 2000, 0), 0.01,
                                        0.0, variable=False))
  np.testing.assert_allclose(np.std(noisy - np.repeat(pose, 2000, 0)), 0.017, rtol=0.05)
  # Missing limb joints sit at their parents: an ankle at the knee, which sits at the hip.
  kp = np.arange(34, dtype=np.float64).reshape(1, 17, 2)
  j = {n: i for i, n in enumerate(skeleton.JOINT_NAMES)}
  kp[0, [j['RKnee'], j['RAnkle'], j['LWrist']]] = np.nan
  filled = np.asarray(pose_noise.fill_missing(kp))
  for joint, source in (('RKnee', 'RHip'), ('RAnkle', 'RHip'), ('LWrist', 'LElbow')):
    np.testing.assert_array_equal(filled[0, j[joint]], kp[0, j[source]])


def test_camera_estimate():
  camera = camera_lib.estimate(np.zeros((1, 17, 2)), (1920, 1080))
  np.testing.assert_array_equal(camera.focal_length, [1920, 1920])
  np.testing.assert_array_equal(camera.center, [960, 540])
  assert camera.estimated and '1920 x 1080' in camera.describe()
  kp = np.full((2, 17, 2), 100.0)
  kp[1, 3] = (1500, 900)  # beyond 1280 x 720: a 1920 x 1080 frame
  assert camera_lib.frame_size_of(kp) == (1920, 1080)
  kp[1, 3] = (700, 1800)  # a portrait frame
  assert camera_lib.frame_size_of(kp) == (1080, 1920)
  plane = camera.to_plane(np.array([[[960 + 192.0, 540 - 96.0]]]))
  np.testing.assert_allclose(plane, [[[0.1, -0.05]]])


def test_any_camera_lifter_trains_lifts_and_places_the_root(tiny_mocap_run, tiny_mocap_data_dir):
  summary = tiny_mocap_run['summary']
  assert np.isfinite(summary['2d->3d/mpjpe']['mean_over_actions'])
  lifter = hpe_jax.load_lifter(tiny_mocap_run['workdir'])
  assert lifter.any_camera and lifter.config.input_layout == 'detector'
  builder = tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir)
  test = pose_arrays.load(builder, 'test')
  rows = slice(0, 40)
  given = lifter.lift(test['pose_2d'][rows], focal_length=test['focal_length'][rows],
                      center=test['center'][rows])
  assert given.poses_mm.shape == (40, 17, 3) and not given.camera.estimated
  # The root fitted to the 2D pose puts the lifted pose onto the keypoints.
  placed = given.poses_mm + given.root_mm[:, None]
  plane = placed[..., :2] / placed[..., 2:]
  reprojected = plane * test['focal_length'][rows, None] + test['center'][rows, None]
  residual = np.abs(reprojected - test['pose_2d'][rows]).mean()
  assert np.all(given.root_mm[:, 2] > 0) and residual < 0.1 * np.ptp(test['pose_2d'][rows])
  # Moving the keypoints to another camera (same rays) changes nothing but the root's units.
  doubled = lifter.lift(2 * (test['pose_2d'][rows] - test['center'][rows, None]) + 500.0,
                        focal_length=2 * test['focal_length'][rows], center=np.full(2, 500.0))
  np.testing.assert_allclose(doubled.poses_mm, given.poses_mm, atol=1e-2)
  np.testing.assert_allclose(doubled.root_mm, given.root_mm, rtol=1e-4, atol=1e-2)
  estimated = lifter.lift(test['pose_2d'][rows], image_size=(1920, 1080))
  assert estimated.camera.estimated and estimated.poses_mm.shape == (40, 17, 3)


def test_the_lifter_turns_its_answers_back_into_the_camera(tiny_mocap_run, tiny_mocap_data_dir):
  """A perspective-crop lifter answers in the frames of cameras turned to each root, where the
  evaluation scores it; the lifter's camera-frame poses, refined toward the rays of exact
  keypoints as the evaluation's are, score the same against the camera-frame labels."""
  assert tiny_mocap_run['config'].input_space == 'perspective_crop'
  test = pose_arrays.load(tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir), 'test')
  lifted = hpe_jax.load_lifter(tiny_mocap_run['workdir'], 'last').lift(
      test['pose_2d'], focal_length=test['focal_length'], center=test['center'],
      check_layout=False, keypoint_noise=0.0)
  mpjpe = np.linalg.norm(lifted.poses_mm - test['pose_3d'], axis=-1).mean()
  evaluated = tiny_mocap_run['summary']['2d->3d/mpjpe']['mean_over_poses']
  assert mpjpe == pytest.approx(evaluated, rel=1e-4)


def test_hypotheses_and_the_rays_sampler_turn_a_crop_lifters_poses_back(tiny_mocap_run,
                                                                        tmp_path):
  """The hypothesis report and the rays sampler's spread reproject camera-frame poses: a
  perspective-crop lifter's answers and labels are turned back first."""
  from hpe_jax import cross_fitting  # pylint: disable=g-import-not-at-top
  from hpe_jax.evaluation import report  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  shutil.copytree(tiny_mocap_run['workdir'], workdir)
  settings = dict(checkpoint='last', num_hypotheses=8, max_hypothesis_poses=64,
                  umap_neighbors=())
  latent = report.run_evaluation(workdir, **settings)['hypotheses']['2d->3d']['tables']
  # The labels, turned back and placed at their roots, project onto their 2D poses.
  assert latent['reprojection_gt']['mean_over_actions'] < 0.5
  cross_fitting.fit(workdir, max_rows=300)
  rays = report.run_evaluation(workdir, sampler='rays', **settings)['hypotheses']['2d->3d'][
      'tables']
  assert rays['best_of_k']['mean_over_actions'] < rays['posterior_mean']['mean_over_actions']
  # Its single answer, moved onto the keypoints' rays, reprojects better than the latent's.
  assert (rays['reprojection_posterior_mean']['mean_over_actions'] <
          latent['reprojection_posterior_mean']['mean_over_actions'])


def test_the_answer_moves_toward_the_rays_but_not_for_missing_joints(tiny_mocap_run,
                                                                     tiny_mocap_data_dir):
  """With `ray_refinement` (configs/mocap.py) the answer to exact keypoints lies nearer their
  rays than the one to noisy keypoints; a missing joint stays where the lifter put it."""
  lifter = hpe_jax.load_lifter(tiny_mocap_run['workdir'], 'last')
  assert lifter.config.ray_refinement
  test = pose_arrays.load(tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir), 'test')
  keypoints, camera = test['pose_2d'][:32].copy(), dict(
      focal_length=test['focal_length'][:32], center=test['center'][:32], check_layout=False)

  def off_the_rays(lifted):  # mean distance (mm) of the limb joints from their rays
    placed = lifted.poses_mm + lifted.root_mm[:, None]
    rays = np.concatenate([(keypoints - camera['center'][:, None]) / camera['focal_length'][
        :, None], np.ones((32, 17, 1))], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    return np.linalg.norm(np.cross(placed, rays), axis=-1)[:, 11:].mean()
  exact, noisy = (lifter.lift(keypoints, keypoint_noise=noise, **camera) for noise in (0.0, 0.05))
  assert off_the_rays(exact) < 0.5 * off_the_rays(noisy)
  keypoints[:, 16] = np.nan  # a missing right wrist
  lifter.config.ray_refinement = False
  plain = lifter.lift(keypoints, **camera)
  lifter.config.ray_refinement = True
  refined = lifter.lift(keypoints, keypoint_noise=0.0, **camera)
  np.testing.assert_allclose(refined.poses_mm[:, 16], plain.poses_mm[:, 16], atol=1e-3)
  assert np.abs(refined.poses_mm[:, 13] - plain.poses_mm[:, 13]).max() > 1.0


def test_the_onnx_engine_turns_the_answers_back_too(tiny_mocap_run, tiny_mocap_data_dir):
  """The exported graph holds the perspective crop and the turn back into the camera."""
  test = pose_arrays.load(tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir), 'test')
  kwargs = dict(focal_length=test['focal_length'][:16], center=test['center'][:16],
                check_layout=False)
  answers = {engine: hpe_jax.load_lifter(tiny_mocap_run['workdir'], 'last', engine=engine).lift(
      test['pose_2d'][:16], **kwargs).poses_mm for engine in ('jax', 'onnx')}
  np.testing.assert_allclose(answers['onnx'], answers['jax'], atol=0.01)
  assert np.abs(answers['jax'] - test['pose_3d'][:16]).mean() < np.abs(test['pose_3d'][:16]).mean()


def test_a_packaged_copy_lifts_as_its_workdir(tiny_mocap_run, tiny_mocap_data_dir, tmp_path):
  from hpe_jax import export  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path / 'lifter')
  export.export_file(tiny_mocap_run['workdir'], folder, 'package', licence='CC BY-NC 4.0')
  assert sorted(os.listdir(folder)) == ['card.json', 'config.json', 'normalization.json',
                                       'variables.safetensors']
  assert hpe_jax.load_lifter(folder).licence == 'CC BY-NC 4.0'
  assert hpe_jax.load_lifter(tiny_mocap_run['workdir']).licence is None
  test = pose_arrays.load(tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir), 'test')
  kwargs = dict(focal_length=test['focal_length'][:8], center=test['center'][:8])
  packaged = hpe_jax.load_lifter(folder).lift(test['pose_2d'][:8], **kwargs)
  trained = hpe_jax.load_lifter(tiny_mocap_run['workdir']).lift(test['pose_2d'][:8], **kwargs)
  np.testing.assert_allclose(packaged.poses_mm, trained.poses_mm, atol=1e-4)
  with open(os.path.join(folder, 'config.json')) as f:
    assert json.load(f)['pairs'] == [{'source': 'pose_2d', 'target': 'pose_3d', 'weight': 1.0,
                                      'beta': 0.001}]


def test_evaluate_with_detector_like_noise_writes_its_own_folder(tiny_mocap_run):
  from hpe_jax.evaluation import report  # pylint: disable=g-import-not-at-top
  workdir = tiny_mocap_run['workdir']
  clean = report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[])
  noisy = report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[],
                                pose_2d_noise=0.05)
  with open(os.path.join(workdir, 'eval_noise0.05', 'summary.json')) as f:
    record = json.load(f)
  assert record['eval_pose_2d_noise'] == 0.05 and record['actions'] == list(motions.ACTIONS)
  mpjpe = lambda out: out['summary']['2d->3d/mpjpe']['mean_over_poses']
  assert mpjpe(noisy) != mpjpe(clean)
  assert os.path.exists(os.path.join(workdir, 'eval', 'summary.json'))
  # The training split gets a folder of its own and leaves the test's results.
  report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[], split='train[:50%]')
  with open(os.path.join(workdir, 'eval_train_50', 'summary.json')) as f:
    assert json.load(f)['split'] == 'train[:50%]'
  with open(os.path.join(workdir, 'eval', 'summary.json')) as f:
    assert json.load(f)['split'] == 'test'


def test_a_known_height_moves_only_the_size_of_the_answers(tiny_mocap_data_dir):
  """experiments.known_height on the tiny build: per 2D noise, the packaged lifter guessing
  the test bodies' size and told their heights (exactly, 5% short, 5% over). A height only
  scales each answer, so the errors after the best scale (N-MPJPE, P-MPJPE) stay the same."""
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.known_height', f'--data_dir={tiny_mocap_data_dir}',
       '--datasets=mocap/tiny', '--max_poses=300'], cwd=ROOT, capture_output=True, text=True,
      check=True)
  lines = [json.loads(text) for text in done.stdout.splitlines()]
  assert [(line['pose_2d_noise'], line['height_given']) for line in lines] == [
      (noise, height) for noise in (0.0, 0.01) for height in ('none', 'true', '-5%', '+5%')]
  for noise in (0.0, 0.01):
    same = [line for line in lines if line['pose_2d_noise'] == noise]
    for name in ('p_mpjpe', 'n_mpjpe'):
      assert max(abs(line[name] - same[0][name]) for line in same) <= 0.11
    assert len({line['mpjpe'] for line in same}) > 1
    assert all(0 < line['root_distance_error_pct'] < 100 for line in same)

def test_the_test_people_filmed_by_human36m_cameras(tiny_mocap_data_dir):
  """experiments.h36m_cameras on the tiny build: every fifth frame of each test take's first
  virtual view, and the same frames placed in Human3.6M's studio and seen by its four
  cameras (the tiny takes stay in every image), lifted by the packaged lifter."""
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.h36m_cameras', f'--data_dir={tiny_mocap_data_dir}',
       '--datasets=mocap/tiny'], cwd=ROOT, capture_output=True, text=True, check=True)
  lines = {line['view']: line for line in map(json.loads, done.stdout.splitlines())}
  assert list(lines) == ['virtual', 'h36m_pinhole', 'h36m_distorted']
  builder = tfds.builder('mocap/tiny', data_dir=tiny_mocap_data_dir)
  first = pose_arrays.load(builder, 'test', ('camera_index',))['camera_index'] == 0
  assert lines['virtual']['poses'] == sum(-(-count // 5) for count in (first.sum() // 2,) * 2)
  for view in ('h36m_pinhole', 'h36m_distorted'):
    assert lines[view]['poses'] == 4 * lines['virtual']['poses']
  for line in lines.values():
    assert all(0 < line[name] < 1000 for name in ('mpjpe', 'p_mpjpe', 'n_mpjpe'))
