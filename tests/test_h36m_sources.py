"""The `h36m` builder and its readers, on tiny files in the real formats made here."""

import os
import pickle

import av
import cdflib
import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_h36m.builders
from tfds_h36m import cameras
from tfds_h36m import crop
from tfds_h36m import safe_pickle
from tfds_h36m import skeleton
from tfds_h36m import sources
from tfds_h36m.synthetic import motion

FRAMES = 11
SEQUENCES = {'S1': ('TakingPhoto 1', 'WalkingDog'), 'S11': ('Directions', 'Directions 1')}


def _poses(subject, name, frames=FRAMES):
  """(T, 17, 3) world mm, and the raw (T, 32, 3) layout with distinguishable extra joints."""
  action, _ = skeleton.parse_sequence_name(name)
  seed = sum(map(ord, subject + name))
  pose = motion.generate_sequence(np.random.default_rng(seed), motion.subject_bone_lengths(subject),
                                  action, frames).astype(np.float64)
  raw = np.full((frames, 32, 3), -9999.0)
  raw[:, list(skeleton.RAW_TO_17)] = pose
  return pose, raw


def _projections(subject, pose):
  return [cameras.project(cameras.world_to_camera(pose, c), c) for c in cameras.load_cameras(subject)]


def write_npz_layout(root, extra_2d_frames=2, source='gt'):
  positions_3d, positions_2d = {}, {}
  for subject, names in SEQUENCES.items():
    positions_3d[subject], positions_2d[subject] = {}, {}
    for name in names:
      pose, raw = _poses(subject, name)
      positions_3d[subject][name] = (raw / 1000.0).astype(np.float32)
      pose_long, _ = _poses(subject, name, FRAMES + extra_2d_frames)
      positions_2d[subject][name] = [p.astype(np.float32) for p in _projections(subject, pose_long)]
  os.makedirs(root, exist_ok=True)
  np.savez(os.path.join(root, 'data_3d_h36m.npz'), positions_3d=positions_3d)
  np.savez(os.path.join(root, f'data_2d_h36m_{source}.npz'), positions_2d=positions_2d,
           metadata={'layout_name': 'h36m', 'num_joints': 17})


def write_video(path, frames_rgb):
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=50)
    stream.height, stream.width = frames_rgb[0].shape[:2]
    stream.pix_fmt = 'yuv420p'
    for rgb in frames_rgb:
      for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def write_cdf_layout(root, videos=True):
  for subject, names in SEQUENCES.items():
    pose_dir = os.path.join(root, subject, 'MyPoseFeatures', 'D3_Positions')
    os.makedirs(pose_dir, exist_ok=True)
    os.makedirs(os.path.join(root, subject, 'Videos'), exist_ok=True)
    for name in names:
      pose, raw = _poses(subject, name)
      with cdflib.cdfwrite.CDF(os.path.join(pose_dir, f'{name}.cdf')) as cdf:
        cdf.write_var({'Variable': 'Pose', 'Data_Type': cdflib.cdfwrite.CDF.CDF_DOUBLE,
                       'Num_Elements': 1, 'Rec_Vary': True, 'Dim_Sizes': [FRAMES, 96]},
                      var_data=raw.reshape(1, FRAMES, 96))
      if not videos:
        continue
      for camera, px in zip(cameras.load_cameras(subject), _projections(subject, pose)):
        width, height = camera.image_size
        frames = []
        for t in range(FRAMES):  # a bright disc on the pelvis, dark elsewhere
          yy, xx = np.mgrid[:height, :width]
          disc = (xx - px[t, 0, 0])**2 + (yy - px[t, 0, 1])**2 < 30**2
          frames.append(np.where(disc[..., None], 255, 20).astype(np.uint8).repeat(3, -1))
        write_video(sources.video_path(root, subject, name, camera.camera_id), frames)


def build(config, manual_dir, data_dir):
  builder = tfds_h36m.builders.H36m(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def _small(name, **kwargs):
  return tfds_h36m.builders.H36mConfig(name=name, train_subjects=('S1',), test_subjects=('S11',),
                                       **kwargs)


@pytest.fixture(scope='module')
def npz_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('npz')
  write_npz_layout(str(root))
  return root


def test_npz_sequences_mm_joints_truncation_skip_and_names(npz_dir):
  skipped = []
  seqs = list(sources.iter_npz_sequences(npz_dir, ['S1', 'S11'], skipped=skipped))
  assert [(s.subject, s.action, s.subaction) for s in seqs] == [
      ('S1', 'Photo', 1), ('S1', 'WalkDog', 0), ('S11', 'Directions', 1)]
  assert skipped == ['S11/Directions']
  pose, _ = _poses('S1', 'TakingPhoto 1')
  np.testing.assert_allclose(seqs[0].pose_3d_world, pose, atol=0.05)  # metres -> mm, 17 joints
  assert len(seqs[0].pose_2d[0]) == FRAMES  # 2D had 2 more frames: truncated


def _examples(builder, split):
  """Every example of a split (ArrayRecord: read through TFDS's random-access source)."""
  source = builder.as_data_source(split=split)
  return [source[i] for i in range(len(source))]


def test_poses_from_npz(npz_dir, tmp_path):
  builder = build(_small('poses_small'), npz_dir, tmp_path)
  assert builder.info.splits['train'].num_examples == 2 * FRAMES * 4
  assert builder.info.splits['test'].num_examples == 1 * FRAMES * 4  # S11 Directions skipped
  assert builder.info.metadata['build_summary']['test']['skipped_sequences'] == ['S11/Directions']
  train = _examples(builder, 'train')
  for ex in train:
    assert ex['pose_3d'].shape == (17, 3) and ex['pose_2d'].dtype == np.float32
    np.testing.assert_array_equal(ex['pose_3d'][0], 0.0)
    assert ex['root_3d'][2] > 1000
    cam = cameras.Camera(ex['camera_id'].decode(), ex['camera']['focal_length'],
                         ex['camera']['center'], ex['camera']['radial_distortion'],
                         ex['camera']['tangential_distortion'], tuple(ex['camera']['image_size']),
                         np.eye(3), np.zeros(3))
    reprojected = cameras.project(ex['pose_3d'] + ex['root_3d'], cam)
    np.testing.assert_allclose(reprojected, ex['pose_2d'], atol=0.5)
  names = builder.info.features['action'].names
  assert {names[ex['action']] for ex in train} == {'Photo', 'WalkDog'}
  stats = builder.info.metadata['statistics']
  pose_3d = np.stack([ex['pose_3d'][1:] for ex in train]).astype(np.float64)
  pose_2d = np.stack([ex['pose_2d'][1:] for ex in train]).astype(np.float64)
  np.testing.assert_allclose(stats['pose_3d_mean'], pose_3d.mean(0), rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(stats['pose_3d_std'], pose_3d.std(0), rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(stats['pose_2d_mean'], pose_2d.mean(0), rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(stats['pose_2d_std'], pose_2d.std(0), rtol=1e-4, atol=1e-3)


def test_detections_source_is_read(tmp_path):
  write_npz_layout(str(tmp_path / 'manual'), source='cpn_ft_h36m_dbb')
  assert sources.detect_layout(tmp_path / 'manual', 'cpn_ft_h36m_dbb') == 'npz'
  builder = build(_small('poses_cpn_small', keypoints_2d='cpn_ft_h36m_dbb'), tmp_path / 'manual',
                  tmp_path / 'data')
  assert builder.info.splits['train'].num_examples == 2 * FRAMES * 4


def test_images_from_cdf_and_videos_are_centred_crops(tmp_path):
  write_cdf_layout(str(tmp_path / 'manual'))
  # One unreadable video: skipped with a count, the rest builds.
  bad = sources.video_path(tmp_path / 'manual', 'S1', 'WalkingDog', skeleton.CAMERA_IDS[2])
  bad.write_bytes(b'not a video')
  builder = build(_small('images_small', image_size=64, frame_stride=5), tmp_path / 'manual',
                  tmp_path / 'data')
  summary = builder.info.metadata['build_summary']
  assert summary['train']['skipped_videos'] == [str(bad)]
  frames_kept = len(range(0, FRAMES, 5))
  assert builder.info.splits['train'].num_examples == (2 * 4 - 1) * frames_kept
  for ex in _examples(builder, 'train'):
    assert ex['image'].shape == (64, 64, 3) and ex['frame'] % 5 == 0
    # The bright disc drawn on the pelvis lands where the crop maps the projected pelvis.
    expected = crop.crop_to_pixels(ex['pose_2d'][:1], ex['crop_box'], 64)[0]
    bright = np.argwhere(ex['image'].mean(-1) > 128)
    assert len(bright) > 0
    np.testing.assert_allclose(bright.mean(0)[::-1], expected, atol=2.0)
    # The crop holds the whole 2D pose.
    inside = crop.crop_to_pixels(ex['pose_2d'], ex['crop_box'], 64)
    assert np.all((inside >= 0) & (inside <= 64))


def test_cdf_poses_project_like_the_camera_model(tmp_path):
  write_cdf_layout(str(tmp_path / 'manual'), videos=False)
  builder = build(_small('poses_cdf_small', source='cdf'), tmp_path / 'manual', tmp_path / 'data')
  pose, _ = _poses('S1', 'WalkingDog')
  camera = cameras.load_camera('S1', skeleton.CAMERA_IDS[1])
  expected = cameras.project(cameras.world_to_camera(pose, camera), camera)
  found = 0
  for ex in _examples(builder, 'train'):
    if ex['camera_id'].decode() == camera.camera_id and ex['action'] == skeleton.ACTIONS.index('WalkDog'):
      np.testing.assert_allclose(ex['pose_2d'], expected[ex['frame']], atol=0.5)
      found += 1
  assert found == FRAMES


# Bad input: clear errors naming the problem.

def test_missing_manual_dir(tmp_path):
  with pytest.raises(sources.MissingDataError, match='does not exist'):
    sources.detect_layout(tmp_path / 'nowhere')


def test_empty_manual_dir_names_first_missing_path_and_layouts(tmp_path):
  with pytest.raises(sources.MissingDataError) as e:
    sources.detect_layout(tmp_path)
  assert str(tmp_path / 'data_3d_h36m.npz') in str(e.value)
  assert 'D3_Positions' in str(e.value) and 'data_2d_h36m_' in str(e.value)


def test_missing_2d_file_is_named(npz_dir):
  with pytest.raises(sources.MissingDataError, match='data_2d_h36m_cpn_ft_h36m_dbb.npz'):
    sources.detect_layout(npz_dir, 'cpn_ft_h36m_dbb')


def test_build_fails_cleanly_without_files(tmp_path):
  # TFDS itself rejects a missing or empty manual dir, with our layout instructions.
  with pytest.raises(AssertionError, match=r'manual_missing does not exist(.|\n)*data_3d_h36m.npz'):
    build(_small('poses_empty'), tmp_path / 'manual_missing', tmp_path / 'data')
  (tmp_path / 'other').mkdir()
  (tmp_path / 'other' / 'notes.txt').write_text('not Human3.6M')
  with pytest.raises(sources.MissingDataError, match='first missing path: .*data_3d_h36m.npz'):
    build(_small('poses_empty'), tmp_path / 'other', tmp_path / 'data')
  assert not tfds_h36m.builders.H36m(config=_small('poses_empty'),
                                     data_dir=str(tmp_path / 'data')).is_prepared()


def test_images_need_videos(npz_dir, tmp_path):
  with pytest.raises(sources.MissingDataError, match=r'S1[/\\]Videos is missing'):
    build(_small('images_novideo', image_size=32), npz_dir, tmp_path)


def test_truncated_npz_is_named(npz_dir, tmp_path):
  data = (npz_dir / 'data_3d_h36m.npz').read_bytes()
  path = tmp_path / 'data_3d_h36m.npz'
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(safe_pickle.DataFormatError, match='data_3d_h36m.npz.*truncated'):
    safe_pickle.load_npz_dict(path, 'positions_3d')
  with pytest.raises(safe_pickle.DataFormatError, match="has no key 'nope'"):
    safe_pickle.load_npz_dict(npz_dir / 'data_3d_h36m.npz', 'nope')


class _Exploit:
  """Unpickling this runs code: it writes a marker file."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
  marker = tmp_path / 'pwned'
  path = tmp_path / 'data_3d_h36m.npz'
  np.savez(path, positions_3d={'S1': {'Directions 1': _Exploit(marker)}})
  # The unrestricted loader would run it (checked on a copy of the payload).
  with pytest.raises(safe_pickle.DataFormatError, match=r'forbidden global (posix|os)\.system'):
    safe_pickle.load_npz_dict(path, 'positions_3d')
  assert not marker.exists()
  pickle.loads(pickle.dumps(_Exploit(marker)))
  assert marker.exists()


def test_malformed_cdf_and_wrong_shape(tmp_path):
  garbage = tmp_path / 'Directions 1.cdf'
  garbage.write_bytes(b'\x00garbage' * 10)
  with pytest.raises(sources.DataFormatError, match='Directions 1.cdf'):
    sources.read_cdf_pose(garbage)
  wrong = tmp_path / 'Walking 1.cdf'
  with cdflib.cdfwrite.CDF(str(wrong)) as cdf:
    cdf.write_var({'Variable': 'Pose', 'Data_Type': cdflib.cdfwrite.CDF.CDF_DOUBLE,
                   'Num_Elements': 1, 'Rec_Vary': True, 'Dim_Sizes': [3, 10]},
                  var_data=np.zeros((1, 3, 10)))
  with pytest.raises(sources.DataFormatError, match=r'Walking 1.cdf: Pose has shape'):
    sources.read_cdf_pose(wrong)


def test_video_frames_and_broken_video(tmp_path):
  path = tmp_path / 'clip.mp4'
  write_video(path, [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)])
  got = list(sources.read_video_frames(path, [0, 5, 10, 40]))
  assert [i for i, _ in got] == [0, 5, 10]
  assert [round(float(f.mean()) / 10) for _, f in got] == [0, 5, 10]
  broken = tmp_path / 'broken.mp4'
  broken.write_bytes(path.read_bytes()[:200])
  with pytest.raises(sources.VideoError, match='broken.mp4'):
    list(sources.read_video_frames(broken, [0, 5]))
