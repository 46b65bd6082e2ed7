"""The lifters that ship with the package (hpe_jax/lifters/cmu, cmu_temporal and cmu_bandai):
`load_lifter()` with no workdir, on a hand-made person and on the example keypoints file."""

import json
import os
import subprocess
import sys

import numpy as np

import hpe_jax
from hpe_jax.inference import body_height
from tfds_h36m import cameras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A person standing (y down), with hips 24 cm and shoulders 32 cm apart (wider than the CMU
# skeleton's; docs/measurements.md), root-relative mm.
STANDING = np.array([[0, 0, 0], [-120, 0, 0], [-120, 420, 0], [-120, 840, 0], [120, 0, 0],
                     [120, 420, 0], [120, 840, 0], [0, -230, 0], [0, -460, 0], [0, -570, 0],
                     [0, -690, 0], [160, -460, 0], [160, -180, 0], [160, 60, 0],
                     [-160, -460, 0], [-160, -180, 0], [-160, 60, 0]], float)
LEVEL_CAMERA = cameras.Camera('c', np.array([1500.0, 1500.0]), np.array([960.0, 540.0]),
                              np.zeros(3), np.zeros(2), (1920, 1080), np.eye(3), np.zeros(3))


def predict_example(lifter, out):
  """`predict --lifter=LIFTER` on the example COCO file into `out`; its stderr."""
  done = subprocess.run([sys.executable, '-m', 'hpe_jax.predict', f'--lifter={lifter}',
                         '--input=docs/examples/coco_keypoints.json', '--format=coco',
                         f'--output={out}'], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stderr


def test_the_packaged_lifter_lifts_without_a_workdir():
  lifter = hpe_jax.load_lifter()
  card = json.load(open(os.path.join(lifter.workdir, 'card.json')))
  assert lifter.any_camera and card['dataset'] == 'mocap/cmu'
  # A person standing 4 m in front of a level 1920 x 1080 camera.
  camera = LEVEL_CAMERA
  keypoints = cameras.project(STANDING + [0, 0, 4000], camera)[None]
  lifted = lifter.lift(keypoints, focal_length=camera.focal_length, center=camera.center)
  assert np.linalg.norm(lifted.poses_mm[0] - STANDING, axis=-1).mean() < 80  # mm (43 measured)
  np.testing.assert_allclose(lifted.root_mm[0], [0, 0, 4000], atol=320)  # 8% (1.3% measured)


def test_each_shipped_lifter_says_its_licence_and_the_non_commercial_one_lifts(tmp_path):
  """Every shipped lifter's card holds the terms of its training data; `cmu_bandai` (CMU and
  Bandai Namco, CC BY-NC 4.0) lifts the standing person as the default does, and predict
  states its licence."""
  licences = {name: hpe_jax.load_lifter(name).licence for name in ('cmu', 'cmu_temporal')}
  assert all('commercial use' in text and 'non-commercial' not in text
             for text in licences.values())
  lifter = hpe_jax.load_lifter('cmu_bandai')
  assert lifter.any_camera and lifter.licence.startswith('CC BY-NC 4.0, non-commercial')
  keypoints = cameras.project(STANDING + [0, 0, 4000], LEVEL_CAMERA)[None]
  lifted = lifter.lift(keypoints, focal_length=LEVEL_CAMERA.focal_length,
                       center=LEVEL_CAMERA.center)
  assert np.linalg.norm(lifted.poses_mm[0] - STANDING, axis=-1).mean() < 80  # mm (49 measured)
  np.testing.assert_allclose(lifted.root_mm[0], [0, 0, 4000], atol=320)  # (2.2% measured)
  out = tmp_path / 'poses.npz'
  stderr = predict_example('cmu_bandai', out)
  assert 'licence: CC BY-NC 4.0, non-commercial use only' in stderr and out.exists()


def test_predict_without_a_workdir_estimates_the_camera_once(tmp_path):
  out = str(tmp_path / 'poses.json')
  done = subprocess.run([sys.executable, '-m', 'hpe_jax.predict',
                         '--input=docs/examples/coco_keypoints.json', '--format=coco',
                         f'--output={out}'], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stderr.count('No camera intrinsics given') == 1
  with open(out) as f:
    poses = json.load(f)
  assert 'estimated' in poses['camera_source'] and 'packaged' not in poses['camera_source']
  root_mm = np.asarray(poses['root_3d_mm'])
  assert root_mm.shape == (len(poses['frame']), 3) and np.all(root_mm[:, 2] > 1000)
  assert max(len(line) for line in done.stderr.splitlines()) < 300


def test_an_unknown_shipped_lifter_or_two_lifters_are_one_usage_line(capsys, tmp_path):
  from conftest import run_predict  # pylint: disable=g-import-not-at-top
  args = ['--input=docs/examples/coco_keypoints.json', '--format=coco',
          f'--output={tmp_path / "poses.npz"}']
  status, err = run_predict(capsys, *args, '--lifter=cmu_huge')
  assert status == 2 and "No lifter named 'cmu_huge' ships with hpe_jax; shipped: cmu" in err
  status, err = run_predict(capsys, *args, '--lifter=cmu', f'--workdir={tmp_path}')
  assert status == 2 and 'Give --workdir or --lifter, not both.' in err
  assert not os.listdir(tmp_path)


def test_the_temporal_lifter_lifts_a_track(tmp_path):
  """The shipped temporal lifter reads 27 frames of a track: a person sliding sideways across
  a level camera's view is lifted and placed, and with noisy keypoints its poses are much
  steadier than the single-frame lifter's."""
  temporal = hpe_jax.load_lifter('cmu_temporal')
  assert temporal.window == 27 and temporal.any_camera
  frames = np.linspace(-600.0, 600.0, 40)
  track = np.stack([STANDING + [x, 0, 4000] for x in frames])
  keypoints = cameras.project(track.reshape(-1, 3), LEVEL_CAMERA).reshape(40, 17, 2)
  kwargs = dict(focal_length=LEVEL_CAMERA.focal_length, center=LEVEL_CAMERA.center,
                sequence_ids=np.zeros(40, int))
  lifted = temporal.lift(keypoints, **kwargs)
  assert np.linalg.norm(lifted.poses_mm - STANDING, axis=-1).mean() < 100  # mm (43 measured)
  np.testing.assert_allclose(lifted.root_mm[:, 0], frames, atol=150)  # (3 mm measured)
  noisy = keypoints + np.random.default_rng(0).normal(0.0, 3.0, keypoints.shape)  # px
  jitter = lambda poses: np.linalg.norm(np.diff(poses, 2, axis=0), axis=-1).mean()
  single = hpe_jax.load_lifter().lift(noisy, **kwargs).poses_mm
  assert jitter(temporal.lift(noisy, **kwargs).poses_mm) < 0.5 * jitter(single)
  out = tmp_path / 'poses.json'
  assert 'cmu_temporal' in predict_example('cmu_temporal', out) and out.exists()


def test_a_known_height_scales_the_person_and_places_them_to_match(capsys, tmp_path):
  """Told the standing person's height, the lifter answers a body of that height; told 10%
  more, a body 10% bigger placed 10% further along the same rays. predict's --height_mm does
  the same and writes the height; a height in metres is one usage line."""
  from conftest import run_predict  # pylint: disable=g-import-not-at-top
  lifter = hpe_jax.load_lifter()
  keypoints = cameras.project(STANDING + [0, 0, 4000], LEVEL_CAMERA)[None]
  kwargs = dict(focal_length=LEVEL_CAMERA.focal_length, center=LEVEL_CAMERA.center)
  height = body_height.chain_mm(STANDING) / body_height.CHAIN_PER_HEIGHT
  known = lifter.lift(keypoints, height_mm=height, **kwargs)
  np.testing.assert_allclose(body_height.chain_mm(known.poses_mm),
                             body_height.chain_mm(STANDING), rtol=1e-5)
  np.testing.assert_allclose(known.root_mm[0], [0, 0, 4000], atol=320)  # 8% (4.2% measured)
  taller = lifter.lift(keypoints, height_mm=1.1 * height, **kwargs)
  np.testing.assert_allclose(taller.poses_mm, 1.1 * known.poses_mm, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(taller.root_mm, 1.1 * known.root_mm, rtol=1e-4, atol=1e-2)
  args = ['--input=docs/examples/coco_keypoints.json', '--format=coco']
  status, err = run_predict(capsys, *args, f'--output={tmp_path / "m.npz"}', '--height_mm=1.75')
  assert status == 2 and "--height_mm 1.75 is not a person's height in mm" in err
  assert not os.listdir(tmp_path)
  status, err = run_predict(capsys, *args, f'--output={tmp_path / "p.npz"}', '--height_mm=1700')
  assert status == 0, err
  with np.load(tmp_path / 'p.npz') as out:
    assert float(out['height_mm']) == 1700.0
    np.testing.assert_allclose(body_height.chain_mm(out['poses_3d_mm']), 0.96 * 1700, rtol=1e-4)


def test_a_calibrated_lens_distortion_is_undone_before_lifting(capsys, tmp_path):
  """The standing person seen through a wide-angle lens (OpenCV's model), off the image's
  centre: lifted with the lens's coefficients as if filmed by the pinhole camera; predict's
  --distortion does the same, and coefficients it cannot use are one usage line."""
  from conftest import run_predict  # pylint: disable=g-import-not-at-top
  from hpe_jax.inference import camera as camera_lib  # pylint: disable=g-import-not-at-top
  lifter = hpe_jax.load_lifter()
  wide = [-0.28, 0.09, 0.001, -0.0007, -0.015]
  points = STANDING + [1500, 300, 4000]  # right of the centre, where the lens bends most
  plane = points[:, :2] / points[:, 2:]
  pinhole = (LEVEL_CAMERA.focal_length * plane + LEVEL_CAMERA.center)[None]
  bent = (LEVEL_CAMERA.focal_length * camera_lib.distort(plane, wide) + LEVEL_CAMERA.center)[None]
  kwargs = dict(focal_length=LEVEL_CAMERA.focal_length, center=LEVEL_CAMERA.center,
                keypoint_noise=0.0)
  want = lifter.lift(pinhole, **kwargs)
  got = lifter.lift(bent, distortion=wide, **kwargs)
  np.testing.assert_allclose(got.poses_mm, want.poses_mm, atol=0.01)
  np.testing.assert_allclose(got.root_mm, want.root_mm, atol=0.1)
  ignored = lifter.lift(bent, **kwargs)
  assert np.linalg.norm(ignored.root_mm - want.root_mm) > 100  # mm: the lens moved the person
  keypoints = tmp_path / 'bent.json'
  keypoints.write_text(json.dumps({'keypoints': bent.tolist()}))
  args = [f'--input={keypoints}', '--focal_length=1500', '--center=960,540']
  status, err = run_predict(capsys, *args, f'--output={tmp_path / "p.npz"}',
                            '--distortion=' + ','.join(map(str, wide)), '--keypoint_noise=0')
  assert status == 0, err
  with np.load(tmp_path / 'p.npz') as out:
    np.testing.assert_allclose(out['poses_3d_mm'], want.poses_mm, atol=0.01)
    np.testing.assert_allclose(out['camera_distortion'], wide, rtol=1e-6)
  status, err = run_predict(capsys, *args, f'--output={tmp_path / "q.npz"}', '--distortion=0.1,2')
  assert status == 2 and '--distortion takes 4 or 5 finite numbers' in err
  status, err = run_predict(capsys, f'--input={keypoints}', f'--output={tmp_path / "r.npz"}',
                            '--distortion=' + ','.join(map(str, wide)))
  assert status == 2 and '--distortion needs its camera\'s intrinsics' in err
  assert sorted(os.listdir(tmp_path)) == ['bent.json', 'p.npz']
