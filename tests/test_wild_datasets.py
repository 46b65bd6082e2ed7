"""The `mpi_inf_3dhp` and `pw3d` builders and their readers, on tiny files in the real formats."""

import io
import os
import pickle
import struct

import h5py
import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

import tfds_h36m.builders
from tfds_h36m import safe_pickle
from tfds_h36m import skeleton
from tfds_h36m import sources
from tfds_h36m import wild

FRAMES = 6
MPI_NAMES = ('head_top', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
             'left_elbow', 'left_wrist', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
             'left_knee', 'left_ankle', 'pelvis', 'spine', 'head')
COCO18_NAMES = ('Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist',
                'RHip', 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar',
                'LEar')
SMPL_NAMES = ('pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2',
              'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck',
              'left_collar', 'right_collar', 'head', 'left_shoulder', 'right_shoulder',
              'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hand', 'right_hand')
# H36M joint -> the joint of MPI-INF-3DHP, COCO-18 and SMPL-24 that means the same (- none).
_ROWS = """Pelvis pelvis - pelvis | RHip right_hip RHip right_hip
RKnee right_knee RKnee right_knee | RAnkle right_ankle RAnkle right_ankle
LHip left_hip LHip left_hip | LKnee left_knee LKnee left_knee
LAnkle left_ankle LAnkle left_ankle | Spine spine - - | Thorax neck Neck neck | Neck head - -
Head head_top - - | LShoulder left_shoulder LShoulder left_shoulder
LElbow left_elbow LElbow left_elbow | LWrist left_wrist LWrist left_wrist
RShoulder right_shoulder RShoulder right_shoulder | RElbow right_elbow RElbow right_elbow
RWrist right_wrist RWrist right_wrist"""
EXPECTED = {row.split()[0]: tuple(None if n == '-' else n for n in row.split()[1:])
            for row in _ROWS.replace('\n', ' | ').split('|')}


@pytest.mark.parametrize('layout, names, column', [
    (wild.MPI_TO_H36M, MPI_NAMES, 0), (wild.COCO18_TO_H36M, COCO18_NAMES, 1),
    (wild.SMPL24_TO_H36M, SMPL_NAMES, 2)])
def test_joint_mappings_put_each_joint_where_expected(layout, names, column):
  points = np.stack([np.full((FRAMES, 3), 100.0 * j) for j in range(len(names))], axis=1)
  points += np.arange(FRAMES)[:, None, None]
  mapped, valid = wild.map_joints(points, layout)
  assert mapped.shape == (FRAMES, 17, 3)
  for i, h36m_name in enumerate(skeleton.JOINT_NAMES):
    source = EXPECTED[h36m_name][column]
    assert valid[i] == (source is not None), h36m_name
    want = 100.0 * names.index(source) if source else 0.0
    if source:
      want = want + np.arange(FRAMES)[:, None]
    np.testing.assert_array_equal(mapped[:, i], np.broadcast_to(want, (FRAMES, 3)), h36m_name)


# MPI-INF-3DHP.

def _mpi_fields(seed, valid):
  """MATLAB-order fields of one annot_data.mat: poses (frames, 1, 17, C)."""
  rng = np.random.default_rng(seed)
  annot3 = rng.normal(0, 300, (FRAMES, 1, 17, 3)) + [0, 0, 4000]
  return {'annot2': rng.uniform(0, 2000, (FRAMES, 1, 17, 2)), 'annot3': annot3,
          'univ_annot3': annot3 * 0.9,
          'valid_frame': np.asarray(valid, np.float64).reshape(FRAMES, 1),
          'activity_annotation': (np.arange(FRAMES) % 7 + 1.0).reshape(FRAMES, 1)}


def write_mat_v73(path, fields, matlab_axes=True):
  """An HDF5 .mat with MATLAB's 512-byte header; MATLAB's axes reversed on disk by default."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with h5py.File(path, 'w', userblock_size=512) as f:
    for key, value in fields.items():
      f[key] = value.T if matlab_axes else value
  with open(path, 'r+b') as f:
    f.write(b'MATLAB 7.3 MAT-file, written by the test'.ljust(128))


def write_mpi(root, valid=None, skip=()):
  """All six sequences: TS3 as a MATLAB v5 file, TS2 with the axes not reversed."""
  fields = {}
  for index, name in enumerate(wild.MPI_SEQUENCES):
    fields[name] = _mpi_fields(index, valid if valid is not None else [1] * FRAMES)
    path = os.path.join(root, 'mpi_inf_3dhp_test_set', name, 'annot_data.mat')
    if name in skip:
      continue
    if name == 'TS3':
      os.makedirs(os.path.dirname(path), exist_ok=True)
      scipy.io.savemat(path, fields[name])
    else:
      write_mat_v73(path, fields[name], matlab_axes=name != 'TS2')
  return fields


def test_mpi_reader_maps_joints_skips_invalid_frames_in_every_format(tmp_path):
  fields = write_mpi(tmp_path, valid=[1, 0, 1, 1, 0, 1])
  for name, path in wild.mpi_paths(tmp_path).items():
    seq = wild.read_mpi_sequence(path, name)
    np.testing.assert_array_equal(seq.frames, [0, 2, 3, 5])
    assert seq.num_invalid == 2
    f = fields[name]
    np.testing.assert_allclose(seq.pose_3d, f['annot3'][[0, 2, 3, 5], 0][:, wild.MPI_TO_H36M])
    np.testing.assert_allclose(seq.pose_3d_univ,
                               f['univ_annot3'][[0, 2, 3, 5], 0][:, wild.MPI_TO_H36M])
    np.testing.assert_allclose(seq.pose_2d[:, 0], f['annot2'][[0, 2, 3, 5], 0, 14])  # pelvis
    np.testing.assert_array_equal(seq.activity, [0, 2, 3, 5])


def test_mpi_cameras():
  studio, outdoor = wild.mpi_camera('TS4'), wild.mpi_camera('TS5')
  np.testing.assert_allclose(studio['focal_length'], 7.32506 / 10 * 2048, rtol=1e-6)
  np.testing.assert_allclose(studio['center'], [1024 - 0.0322884 * 204.8, 1024 + 0.0929296 * 204.8],
                             rtol=1e-6)
  assert tuple(studio['image_size']) == (2048, 2048)
  assert tuple(outdoor['image_size']) == (1920, 1080)
  np.testing.assert_allclose(outdoor['focal_length'][0], 8.770747185 / 10 * 1920, rtol=1e-6)


def _build(builder_cls, manual_dir, data_dir):
  builder = builder_cls(data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _examples(builder, split):
  source = builder.as_data_source(split=split)
  return [source[i] for i in range(len(source))]


def test_mpi_builds_and_reads_back(tmp_path):
  fields = write_mpi(tmp_path / 'manual', valid=[1, 1, 0, 1, 1, 1])
  builder = _build(tfds_h36m.builders.MpiInf3dhp, tmp_path / 'manual', tmp_path / 'data')
  assert builder.info.file_format.value == 'array_record'
  assert builder.info.splits['test'].num_examples == 6 * 5
  summary = builder.info.metadata['build_summary']['test']
  assert summary['invalid_frames'] == {name: 1 for name in wild.MPI_SEQUENCES}
  names = builder.info.features['activity'].names
  for ex in _examples(builder, 'test'):
    name, frame = ex['sequence'].decode(), ex['frame']
    assert frame != 2
    annot3 = fields[name]['annot3'][frame, 0][list(wild.MPI_TO_H36M)]
    np.testing.assert_allclose(ex['root_3d'], annot3[0], atol=1e-3)
    np.testing.assert_allclose(ex['pose_3d_annot3'], annot3 - annot3[0], atol=1e-3)
    np.testing.assert_allclose(ex['pose_3d'], 0.9 * (annot3 - annot3[0]), atol=1e-3)
    assert ex['joint_valid'].all() and names[ex['activity']] == wild.MPI_ACTIVITIES[frame % 7]
    outdoor = name in ('TS5', 'TS6')
    assert tuple(ex['camera']['image_size']) == ((1920, 1080) if outdoor else (2048, 2048))


def test_mpi_missing_truncated_and_malformed_files_are_named(tmp_path):
  write_mpi(tmp_path, skip=('TS4',))
  with pytest.raises(sources.MissingDataError, match=r'TS4[/\\]annot_data.mat is missing'):
    wild.mpi_paths(tmp_path)
  path = tmp_path / 'mpi_inf_3dhp_test_set' / 'TS1' / 'annot_data.mat'
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(safe_pickle.DataFormatError, match=r'TS1[/\\]annot_data.mat: not a readable'):
    wild.read_mpi_sequence(path, 'TS1')
  fields = _mpi_fields(0, [1] * FRAMES)
  fields['annot3'] = fields['annot3'][:, :, :16]
  write_mat_v73(str(path), fields)
  with pytest.raises(safe_pickle.DataFormatError, match=r'annot_data.mat: annot3 has shape'):
    wild.read_mpi_sequence(path, 'TS1')
  del fields['valid_frame']
  write_mat_v73(str(path), fields)
  with pytest.raises(safe_pickle.DataFormatError,
                     match=r"annot_data.mat: has no \['valid_frame'\]"):
    wild.read_mpi_sequence(path, 'TS1')


# 3DPW.

class _Py2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Writes bytes as Python 2 `str` (BINSTRING), as 3DPW's Python 2 pickles hold them."""

  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_py2_str(self, obj):
    self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
    self.memoize(obj)

  dispatch[bytes] = save_py2_str


def py2_pickle(obj):
  """Protocol-2 bytes as Python 2 with NumPy 1 wrote them (numpy.core module names)."""
  buffer = io.BytesIO()
  _Py2Pickler(buffer, protocol=2).dump(obj)
  return buffer.getvalue().replace(b'numpy._core.', b'numpy.core.')


def _rotation_z(angle):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _pw3d_sequence(name, actors=2, campose_valid=None):
  rng = np.random.default_rng(len(name))
  cam_poses = np.tile(np.eye(4), (FRAMES, 1, 1))
  for t in range(FRAMES):
    cam_poses[t, :3, :3] = _rotation_z(0.3 * t)
    cam_poses[t, :3, 3] = [0.1 * t, -0.2, 4.0]
  return {
      'sequence': name, 'genders': ['m'] * actors,
      'poses2d': [rng.uniform(1, 1000, (FRAMES, 3, 18)) for _ in range(actors)],
      'jointPositions': [rng.normal(0, 0.5, (FRAMES, 72)) for _ in range(actors)],
      'cam_poses': cam_poses,
      'cam_intrinsics': np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]]),
      'campose_valid': [np.ones(FRAMES, np.int64) if campose_valid is None else
                        np.asarray(campose_valid, np.int64) for _ in range(actors)],
      'img_frame_ids': np.arange(FRAMES) + 100,
  }


def write_pw3d(root, valid=None):
  sequences = {}
  for split, names in (('train', ('courtyard_a_00', 'courtyard_b_00')),
                       ('validation', ('downtown_c_00',)), ('test', ('office_d_00',))):
    os.makedirs(os.path.join(root, 'sequenceFiles', split), exist_ok=True)
    for name in names:
      sequences[name] = _pw3d_sequence(name, actors=1 if split == 'validation' else 2,
                                       campose_valid=valid)
      with open(os.path.join(root, 'sequenceFiles', split, f'{name}.pkl'), 'wb') as f:
        f.write(py2_pickle(sequences[name]))
  return sequences


def test_pw3d_camera_frame_against_a_hand_computation():
  cam_poses = np.tile(np.eye(4), (1, 1, 1))
  cam_poses[0, :3, :3] = _rotation_z(np.pi / 2)
  cam_poses[0, :3, 3] = [0.1, 0.2, 3.0]
  # Rotating (1, 0, 0) by 90 degrees about z gives (0, 1, 0); then add t.
  np.testing.assert_allclose(wild.world_to_camera(np.array([[[1.0, 0, 0]]]), cam_poses),
                             [[[0.1, 1.2, 3.0]]], atol=1e-12)


def test_pw3d_reader_reads_py2_pickle_maps_and_converts(tmp_path):
  seq = _pw3d_sequence('courtyard_a_00', campose_valid=[1, 1, 0, 1, 0, 1])
  path = tmp_path / 'courtyard_a_00.pkl'
  path.write_bytes(py2_pickle(seq))
  with pytest.raises(UnicodeDecodeError):  # Python 2 pickles need latin1: the arrays' bytes
    pickle.loads(path.read_bytes().replace(b'numpy.core.', b'numpy._core.'))
  actors = wild.read_pw3d_sequence(path)
  assert [a.actor for a in actors] == [0, 1] and actors[0].num_invalid == 2
  actor = actors[1]
  np.testing.assert_array_equal(actor.frames, [0, 1, 3, 5])
  np.testing.assert_array_equal(actor.image_frames, [100, 101, 103, 105])
  t = 3  # frame 3 is row 2; hand computation of the camera frame, mm
  joints = seq['jointPositions'][1][t].reshape(24, 3)
  expected = (joints @ _rotation_z(0.3 * t).T + [0.3, -0.2, 4.0]) * 1000.0
  np.testing.assert_allclose(actor.joints_cam[2, 1], expected[2])  # RHip <- SMPL right_hip
  np.testing.assert_allclose(actor.joints_cam[2, 0], expected[0])  # root: SMPL pelvis
  np.testing.assert_array_equal(actor.joints_cam[2, ~actor.joint_valid], 0.0)
  poses2d = seq['poses2d'][1][t]
  np.testing.assert_allclose(actor.pose_2d[2, 16], poses2d[:2, 4])  # RWrist <- COCO RWrist
  np.testing.assert_allclose(actor.confidence_2d[2, 16], poses2d[2, 4])
  assert actor.confidence_2d[2, 0] == 0.0  # no pelvis in COCO-18


def test_pw3d_builds_and_reads_back(tmp_path):
  sequences = write_pw3d(tmp_path / 'manual', valid=[1, 0, 1, 1, 1, 1])
  builder = _build(tfds_h36m.builders.Pw3d, tmp_path / 'manual', tmp_path / 'data')
  assert builder.info.file_format.value == 'array_record'
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      'train': 2 * 2 * 5, 'validation': 5, 'test': 2 * 5}
  assert builder.info.metadata['build_summary']['validation']['invalid_camera_frames'] == {
      'downtown_c_00/0': 1}
  for ex in _examples(builder, 'test'):
    seq, frame = sequences[ex['sequence'].decode()], ex['frame']
    assert frame != 1 and ex['image_frame'] == 100 + frame
    joints = seq['jointPositions'][ex['actor']][frame].reshape(24, 3)
    cam = (joints @ seq['cam_poses'][frame, :3, :3].T + seq['cam_poses'][frame, :3, 3]) * 1000
    np.testing.assert_allclose(ex['root_3d'], cam[0], rtol=1e-5)
    rshoulder = cam[17] - cam[0]  # SMPL right_shoulder
    np.testing.assert_allclose(ex['pose_3d'][14], rshoulder, rtol=1e-4, atol=1e-2)
    assert ex['pose_3d'][7].tolist() == [0, 0, 0] and not ex['joint_valid'][7]  # Spine missing
    assert ex['joint_valid'].sum() == 14 and ex['joint_valid_2d'].sum() == 13
    np.testing.assert_allclose(ex['camera']['focal_length'], [1961, 1969])
    np.testing.assert_allclose(ex['camera']['center'], [540, 960])


class _Exploit:
  """Unpickling this runs code: it writes a marker file."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def test_pw3d_malicious_pickle_is_refused_naming_the_file(tmp_path):
  marker = tmp_path / 'pwned'
  seq = _pw3d_sequence('evil_00')
  seq['genders'] = [_Exploit(marker)]
  path = tmp_path / 'evil_00.pkl'
  path.write_bytes(pickle.dumps(seq, protocol=2))
  with pytest.raises(safe_pickle.DataFormatError,
                     match=r'evil_00.pkl: refusing to load the forbidden global '
                     r'(posix|os)\.system'):
    wild.read_pw3d_sequence(path)
  assert not marker.exists()


def test_pw3d_truncated_malformed_and_missing_files_are_named(tmp_path):
  path = tmp_path / 'office_d_00.pkl'
  data = py2_pickle(_pw3d_sequence('office_d_00'))
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(safe_pickle.DataFormatError, match=r'office_d_00.pkl: not a readable pickle'):
    wild.read_pw3d_sequence(path)
  seq = _pw3d_sequence('office_d_00')
  seq['jointPositions'] = [np.zeros((FRAMES, 70))] * 2
  path.write_bytes(py2_pickle(seq))
  with pytest.raises(safe_pickle.DataFormatError, match=r'office_d_00.pkl: jointPositions is not'):
    wild.read_pw3d_sequence(path)
  del seq['cam_poses']
  path.write_bytes(py2_pickle(seq))
  with pytest.raises(safe_pickle.DataFormatError, match=r"office_d_00.pkl: has no 'cam_poses'"):
    wild.read_pw3d_sequence(path)
  with pytest.raises(sources.MissingDataError, match=r'sequenceFiles[/\\]test has no .pkl'):
    wild.pw3d_files(tmp_path, 'test')


def test_failed_build_leaves_no_finished_dataset(tmp_path):
  write_pw3d(tmp_path / 'manual')
  bad = tmp_path / 'manual' / 'sequenceFiles' / 'test' / 'office_d_00.pkl'
  bad.write_bytes(bad.read_bytes()[:100])
  with pytest.raises(safe_pickle.DataFormatError, match='office_d_00.pkl'):
    _build(tfds_h36m.builders.Pw3d, tmp_path / 'manual', tmp_path / 'data')
  assert not tfds_h36m.builders.Pw3d(data_dir=str(tmp_path / 'data')).is_prepared()
  finished = [root for root, _, files in os.walk(tmp_path / 'data') if 'dataset_info.json' in files]
  assert finished == []
