"""Keypoint inputs: COCO -> H36M by hand, reference camera, confidences, file readers."""

import csv
import json

import numpy as np
import pytest

from hpe_jax.inference import camera as camera_lib
from hpe_jax.inference import keypoints
from tfds_h36m import skeleton

# A hand-made COCO-17 skeleton (px, y down): a person facing the camera.
COCO = {
    'nose': (100, 50), 'left_eye': (104, 46), 'right_eye': (96, 46), 'left_ear': (110, 50),
    'right_ear': (90, 50), 'left_shoulder': (120, 80), 'right_shoulder': (80, 80),
    'left_elbow': (130, 110), 'right_elbow': (70, 110), 'left_wrist': (135, 140),
    'right_wrist': (65, 140), 'left_hip': (112, 160), 'right_hip': (88, 160),
    'left_knee': (114, 200), 'right_knee': (86, 200), 'left_ankle': (115, 240),
    'right_ankle': (85, 240)}
# By hand: Pelvis = mid-hip, Thorax = mid-shoulder, Spine = their midpoint, Neck/Nose =
# nose, Head = mean(eyes, ears) (100, 48) + mid-eyes (100, 46) - nose (100, 50) = (100, 44).
H36M = {
    'Pelvis': (100, 160), 'RHip': (88, 160), 'RKnee': (86, 200), 'RAnkle': (85, 240),
    'LHip': (112, 160), 'LKnee': (114, 200), 'LAnkle': (115, 240), 'Spine': (100, 120),
    'Thorax': (100, 80), 'Neck': (100, 50), 'Head': (100, 44), 'LShoulder': (120, 80),
    'LElbow': (130, 110), 'LWrist': (135, 140), 'RShoulder': (80, 80), 'RElbow': (70, 110),
    'RWrist': (65, 140)}


def _coco_frame():
  return np.array([COCO[name] for name in keypoints.COCO_JOINT_NAMES], np.float64)


def test_coco_to_h36m_by_hand():
  frames = np.stack([_coco_frame(), _coco_frame() + [10, -5]])
  conf = np.full((2, 17), 0.9)
  conf[0, keypoints.COCO_JOINT_NAMES.index('right_ear')] = 0.2
  conf[0, keypoints.COCO_JOINT_NAMES.index('left_hip')] = 0.5
  h36m, h36m_conf = keypoints.coco_to_h36m(frames, conf)
  expected = np.array([H36M[name] for name in skeleton.JOINT_NAMES], np.float64)
  np.testing.assert_allclose(h36m[0], expected)
  np.testing.assert_allclose(h36m[1], expected + [10, -5])  # translation-equivariant
  by_name = dict(zip(skeleton.JOINT_NAMES, h36m_conf[0]))
  # A derived joint is as confident as its least confident source keypoint.
  assert by_name['Head'] == 0.2
  assert by_name['Pelvis'] == by_name['Spine'] == by_name['LHip'] == 0.5
  assert by_name['Thorax'] == by_name['RHip'] == by_name['Neck'] == 0.9
  assert np.all(h36m_conf[1] == 0.9)
  assert keypoints.coco_to_h36m(frames)[1] is None


def test_low_confidence_flags_the_mean_below_threshold():
  conf = np.array([np.full(17, 0.9), np.full(17, 0.2), np.r_[np.full(8, 0.0), np.full(9, 0.6)]])
  # Means: 0.9, 0.2, 9 * 0.6 / 17 = 0.318.
  np.testing.assert_array_equal(keypoints.low_confidence(conf, 0.3), [False, True, False])
  np.testing.assert_array_equal(keypoints.low_confidence(conf, 0.5), [False, True, True])


def test_reference_camera_is_the_mean_h36m_camera():
  f_ref, c_ref = keypoints.reference_intrinsics()
  # The published intrinsics of cameras 54138969, 55011271, 58860488, 60457274.
  fx = (1145.0494384765625 + 1149.6756591796875 + 1149.1407470703125 + 1145.5113525390625) / 4
  cy = (515.4514770507812 + 508.0649108886719 + 501.40264892578125 + 501.88201904296875) / 4
  assert f_ref[0] == pytest.approx(fx) and c_ref[1] == pytest.approx(cy)
  # A camera's centre goes to the reference centre, a point one focal length off it
  # (normalised coordinate 1) to c_ref + f_ref.
  kp = np.zeros((2, 17, 2))
  kp[0, 0] = (960, 540)
  kp[0, 1] = (960 + 1500, 540 - 1500)
  kp[1, 0] = (320, 240)
  out = camera_lib.Intrinsics.of(np.array([[1500, 1500], [600, 500]]),
                                 np.array([[960, 540], [320, 240]]), 'given').moved_into(
                                     kp, f_ref, c_ref)
  np.testing.assert_allclose(out[0, 0], c_ref)
  np.testing.assert_allclose(out[0, 1], c_ref + [f_ref[0], -f_ref[1]])
  np.testing.assert_allclose(out[1, 0], c_ref)
  np.testing.assert_allclose(out[1, 2], (np.array([0, 0]) - [320, 240]) / [600, 500] * f_ref
                             + c_ref)
  scalar = camera_lib.Intrinsics.of(1500.0, (960, 540), 'given').moved_into(kp[:1], f_ref, c_ref)
  np.testing.assert_allclose(scalar, out[:1])


def _write_all_formats(tmp_path, kp, conf, focal, center):
  paths = {}
  paths['npz'] = tmp_path / 'kp.npz'
  np.savez(paths['npz'], keypoints=kp, confidences=conf, focal_length=focal, center=center)
  paths['json'] = tmp_path / 'kp.json'
  triplets = np.concatenate([kp, conf[..., None]], axis=-1)
  paths['json'].write_text(json.dumps({'keypoints': triplets.tolist(),
                                       'focal_length': focal.tolist(),
                                       'center': center.tolist()}))
  paths['csv'] = tmp_path / 'kp.csv'
  with open(paths['csv'], 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['frame'] + [f'{a}{j}' for j in range(17) for a in 'xyc'] +
                    ['fx', 'fy', 'cx', 'cy'])
    for i in range(len(kp)):
      values = np.concatenate([kp[i], conf[i][:, None]], axis=-1).ravel()
      writer.writerow([i] + [repr(float(v)) for v in values] + list(focal) + list(center))
  return paths


def test_the_three_file_formats_read_the_same(tmp_path):
  rng = np.random.default_rng(0)
  kp = rng.uniform(0, 1000, (3, 17, 2))
  conf = rng.uniform(0, 1, (3, 17))
  focal, center = np.array([1500.0, 1490.0]), np.array([960.0, 540.0])
  for fmt, path in _write_all_formats(tmp_path, kp, conf, focal, center).items():
    read = keypoints.read_keypoints(str(path))
    np.testing.assert_allclose(read.keypoints, kp, err_msg=fmt)
    np.testing.assert_allclose(read.confidences, conf, err_msg=fmt)
    np.testing.assert_allclose(np.broadcast_to(read.focal_length, (3, 2)), np.tile(focal, (3, 1)))
    np.testing.assert_allclose(np.broadcast_to(read.center, (3, 2)), np.tile(center, (3, 1)))
  np.savez(tmp_path / 'plain.npz', keypoints=kp)
  plain = keypoints.read_keypoints(str(tmp_path / 'plain.npz'))
  assert plain.confidences is None and plain.focal_length is None and plain.center is None


@pytest.mark.parametrize('write, message', [
    (lambda p: np.savez(p / 'in.npz', keypoints=np.zeros((4, 15, 2))),
     'expected 17 joints per frame, got 15'),
    (lambda p: (p / 'in.csv').write_text(
        ','.join(f'{a}{j}' for j in range(15) for a in 'xy') + '\n' + ','.join(['1'] * 30)),
     r'expected 17 joints per frame \(columns x0, y0 ... x16, y16\), found 15'),
    (lambda p: (p / 'in.json').write_text(
        json.dumps({'keypoints': [[[1, 2]] * 17, [[1, 2]] * 16]})), 'not a numeric array of shape'),
    (lambda p: (p / 'in.npz').write_bytes(b''), 'is empty'),
    (lambda p: (p / 'in.json').write_text(json.dumps({'keypoints': []})), 'holds no frames'),
    (lambda p: (p / 'in.csv').write_text('x0,y0\n'), 'holds no frames'),
    (lambda p: (p / 'in.json').write_text('[1, 2]'), 'expected a JSON object'),
    (lambda p: (p / 'in.json').write_text('{"keypoints": [[[1, 2'), 'is not valid JSON'),
    (lambda p: np.savez(p / 'in.npz', points=np.zeros((1, 17, 2))),
     r'no "keypoints" entry \(found \[.points.\]\)'),
    (lambda p: np.savez(p / 'in.npz', keypoints=np.zeros((2, 17, 2)), confidences=np.ones(17)),
     r'confidences must have shape \(2, 17\)'),
    (lambda p: np.savez(p / 'in.npz', keypoints=np.zeros((2, 17, 2)), focal_length=-5.0,
                        center=np.zeros(2)), 'focal_length must be positive'),
    (lambda p: (p / 'in.txt').write_text('1 2 3'), r"extension '.txt'; use .npz, .json, .csv"),
])
def test_bad_files_raise_clear_errors(tmp_path, write, message):
  write(tmp_path)
  (path,) = list(tmp_path.iterdir())
  with pytest.raises(keypoints.KeypointError, match=message):
    keypoints.read_keypoints(str(path))


def test_implausible_values_are_refused_or_clipped():
  kp = np.zeros((2, 17, 2))
  kp[0, 3] = (2e5, np.nan)  # NaN: a missing joint, allowed here
  conf = np.full((2, 17), 0.5)
  conf[1, 0] = -0.25
  with pytest.raises(keypoints.KeypointError, match=r'in.json: 1 coordinate\(s\) beyond '
                     r'\+-100000 px \(e.g. 200000\) and 1 confidence\(s\) outside \[0, 1\]'):
    keypoints.check_plausible(kp, conf, path='in.json')
  clipped, clipped_conf = keypoints.check_plausible(kp, conf, clip=True)
  assert clipped[0, 3, 0] == 1e5 and np.isnan(clipped[0, 3, 1]) and clipped_conf[1, 0] == 0
  same, same_conf = keypoints.check_plausible(np.ones((1, 17, 2)), None)
  assert np.all(same == 1) and same_conf is None


def test_a_joint_count_of_another_format_is_a_usage_error(tmp_path):
  np.savez(tmp_path / 'in.npz', keypoints=np.zeros((2, 26, 3)))
  with pytest.raises(keypoints.UsageError, match=r'expected 17 joints per frame, got 26; '
                     r'--format=halpe26 has 26\.$'):
    keypoints.read_keypoints(str(tmp_path / 'in.npz'))
  assert keypoints.read_keypoints(str(tmp_path / 'in.npz'), num_joints=26).keypoints.shape == (
      2, 26, 2)
  np.savez(tmp_path / 'in.npz', keypoints=np.zeros((2, 15, 2)))
  with pytest.raises(keypoints.KeypointError) as error:  # no format has 15: a data error
    keypoints.read_keypoints(str(tmp_path / 'in.npz'))
  assert not isinstance(error.value, keypoints.UsageError)
