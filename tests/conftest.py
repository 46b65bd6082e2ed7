"""Shared helpers and fixtures: configs, the tiny synthetic dataset, a trained tiny workdir."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

from hpe_jax import config_lib  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name='lifting', preset='tiny'):
  """configs/<name>.py with a preset, as --config=configs/<name>.py:<preset> reads it."""
  return config_lib.load(os.path.join(ROOT, 'configs', f'{name}.py') +
                         (f':{preset}' if preset else ''))


def tiny_config(data_dir=None, name='lifting', **overrides):
  """The tiny preset of a config on `data_dir`, with top-level fields overridden."""
  config = load_config(name, 'tiny')
  config.data_dir = data_dir
  config.update(overrides)
  return config


def pair(source, target):
  return dict(source=source, target=target, weight=1.0, beta=0.001)


def random_batch(config, n=4, seed=0):
  """A random batch in the training data's layout (uint8 crops, normalised poses)."""
  rng = np.random.default_rng(seed)
  s = config.image_size
  return {'image': rng.integers(0, 256, (n, s, s, 3)).astype(np.uint8),
          'pose_2d': rng.normal(size=(n, 16, 2)).astype(np.float32),
          'pose_3d': rng.normal(size=(n, 16, 3)).astype(np.float32)}


def assert_pair_shapes(config, model, variables, batch):
  """Every pair of `config` on `batch` (4 rows) gives a float32 reconstruction of the
  target's shape and float32 latent moments (shapes only: jax.eval_shape, no compiling)."""
  from hpe_jax import modalities, normalization  # pylint: disable=g-import-not-at-top
  for pair in modalities.pairs(config):
    x = normalization.model_input(batch, pair.source)
    out = jax.eval_shape(lambda v, x, p=pair: model.apply(
        v, x, source=p.source, target=p.target, train=False), variables, x)
    assert out['recon'].shape == (4,) + modalities.modality_shape(config, pair.target), pair
    assert out['recon'].dtype == np.float32, pair
    assert out['mean'].shape == out['logvar'].shape == (4, config.model.latent_dim), pair
    assert out['mean'].dtype == out['logvar'].dtype == np.float32, pair


def latest_state(workdir, config):
  """The full TrainState of a workdir's latest checkpoint."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from hpe_jax import checkpointing, optim, train  # pylint: disable=g-import-not-at-top
  from hpe_jax.models import factory  # pylint: disable=g-import-not-at-top
  model = factory.create_model(config)
  state = train.create_train_state(config, model, optim.create_optimizer(config, 1),
                                   jax.random.PRNGKey(0))
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  with checkpointing.training_manager(workdir, config.keep_checkpoints) as manager:
    return manager.restore(manager.latest_step(), args=ocp.args.Composite(
        **{checkpointing.STATE_ITEM: ocp.args.StandardRestore(abstract)}))[
            checkpointing.STATE_ITEM]


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def run_predict(capsys, *args):
  """predict's command line run in this process: (exit status, stderr)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from hpe_jax import cli, predict  # pylint: disable=g-import-not-at-top
  flags.FLAGS.unparse_flags()
  try:
    predict.main(cli.parse_flags(['predict'] + [str(a) for a in args]))
    status = 0
  except SystemExit as e:
    status = e.code
  finally:
    flags.FLAGS.unparse_flags()
  return status, capsys.readouterr().err


def coco_of(h36m):
  """COCO-17 (N, 17, 2) px of H36M-17 keypoints (N, 17, 2) px: the body joints copied, and a
  face whose derived Head (`layouts.to_h36m`) is each frame's own Head."""
  from hpe_jax.inference import layouts  # pylint: disable=g-import-not-at-top
  from tfds_h36m import skeleton  # pylint: disable=g-import-not-at-top
  index = {n: i for i, n in enumerate(layouts.COCO_JOINT_NAMES)}
  joint = dict(zip(skeleton.JOINT_NAMES, np.moveaxis(h36m, 1, 0)))
  coco = np.zeros((len(h36m), 17, 2))
  for side, s in (('left', 'L'), ('right', 'R')):
    for part in ('shoulder', 'elbow', 'wrist', 'hip', 'knee', 'ankle'):
      coco[:, index[f'{side}_{part}']] = joint[s + part.capitalize()]
  nose, up = joint['Neck'], joint['Head'] - joint['Neck']
  eyes = nose + up / 2  # head = mean(eyes, ears) + (eyes - nose) = eyes + up / 2 here
  lateral = np.stack([-up[:, 1], up[:, 0]], axis=-1)
  coco[:, index['nose']] = nose
  for name, k in (('left_eye', 0.3), ('right_eye', -0.3), ('left_ear', 0.7), ('right_ear', -0.7)):
    coco[:, index[name]] = eyes + k * lateral
  return coco


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A TFDS data dir holding h36m_synthetic/tiny."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_h36m.builders  # pylint: disable=g-import-not-at-top,unused-import
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds.builder('h36m_synthetic/tiny', data_dir=data_dir).download_and_prepare()
  return data_dir


@pytest.fixture(scope='session')
def tiny_poses_data_dir(tmp_path_factory):
  """A TFDS data dir holding h36m_synthetic/tiny_poses (every frame, for temporal models)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_h36m.builders  # pylint: disable=g-import-not-at-top,unused-import
  data_dir = str(tmp_path_factory.mktemp('tfds_poses'))
  tfds.builder('h36m_synthetic/tiny_poses', data_dir=data_dir).download_and_prepare()
  return data_dir


@pytest.fixture(scope='session')
def tfrecord_data_dir(tmp_path_factory):
  """A TFDS data dir holding h36m_synthetic/tiny in TFRecord files, as earlier versions
  built it."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_h36m.builders  # pylint: disable=g-import-not-at-top,unused-import
  data_dir = str(tmp_path_factory.mktemp('tfds_tfrecord'))
  tfds.builder('h36m_synthetic/tiny', data_dir=data_dir).download_and_prepare(
      file_format='tfrecord')
  return data_dir


@pytest.fixture(scope='session')
def tiny_lifting_run(tiny_data_dir, tmp_path_factory):
  """A workdir of configs/lifting.py:tiny trained 4 epochs (60 steps) on the tiny dataset.

  Returns dict(workdir, config, summary): summary is the final evaluation
  (of the last checkpoint) returned by train_and_evaluate. Tests that modify
  a workdir copy it first.
  """
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  config = tiny_config(tiny_data_dir, num_epochs=4)
  workdir = str(tmp_path_factory.mktemp('tiny_lifting'))
  summary = train.train_and_evaluate(config, workdir)
  return {'workdir': workdir, 'config': config, 'summary': summary}


# A CMU-named rig (cgspeed joint names), cm, joints parents first: (name, parent, offset).
CMU_RIG = (
    ('hip', None, (0, 0, 0)), ('abdomen', 'hip', (0, 20, -1)), ('chest', 'abdomen', (0, 12, 0)),
    ('neck', 'chest', (0, 22, -2)), ('head', 'neck', (0, 7, 1)),
    ('lCollar', 'chest', (3, 19, -5)), ('lShldr', 'lCollar', (9, -2, 1)),
    ('lForeArm', 'lShldr', (28, -2, 0)), ('lHand', 'lForeArm', (23, 1, 0)),
    ('rCollar', 'chest', (-3, 19, -5)), ('rShldr', 'rCollar', (-9, -2, 1)),
    ('rForeArm', 'rShldr', (-28, -2, 0)), ('rHand', 'rForeArm', (-23, 1, 0)),
    ('lButtock', 'hip', (9, 4, 1)), ('lThigh', 'lButtock', (0, -2, -2)),
    ('lShin', 'lThigh', (0, -40, 1)), ('lFoot', 'lShin', (1, -42, -5)),
    ('rButtock', 'hip', (-9, 4, 1)), ('rThigh', 'rButtock', (0, -2, -2)),
    ('rShin', 'rThigh', (0, -40, 1)), ('rFoot', 'rShin', (-1, -42, -5)))


def write_motion_bvh(path, num_frames, fps=120.0, seed=0, rig=CMU_RIG):
  """Writes a BVH file of `rig` walking and swinging its limbs (smooth random joint angles,
  the root moving forward at 1 m/s, 90 cm up), Windows line ends; returns its path."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_frames) / fps
  lines = ['HIERARCHY']
  children = {}
  for name, parent, _ in rig:
    children.setdefault(parent, []).append(name)
  offsets = {name: offset for name, _, offset in rig}

  def block(name, depth):
    pad = '  ' * depth
    channels = ('6 Xposition Yposition Zposition Zrotation Yrotation Xrotation' if depth == 0
                else '3 Zrotation Xrotation Yrotation')
    lines.extend([f"{pad}{'JOINT' if depth else 'ROOT'} {name}", f'{pad}{{',
                  f'{pad}  OFFSET ' + ' '.join(map(str, offsets[name])),
                  f'{pad}  CHANNELS {channels}'])
    for child in children.get(name, []):
      block(child, depth + 1)
    if name not in children:
      lines.extend([f'{pad}  End Site', f'{pad}  {{', f'{pad}    OFFSET 0 5 0', f'{pad}  }}'])
    lines.append(f'{pad}}}')

  block(rig[0][0], 0)
  columns = [t * 100.0, np.full_like(t, 90.0), np.zeros_like(t)]  # cm
  for _ in rig:
    for _ in range(3):
      amplitude, rate, phase = rng.uniform(0, 30), rng.uniform(0.3, 1.5), rng.uniform(0, 6.3)
      columns.append(amplitude * np.sin(2 * np.pi * rate * t + phase))
  values = np.stack(columns, axis=1)
  lines.extend(['MOTION', f'Frames: {num_frames}', f'Frame Time: {1 / fps:.8f}'])
  lines.extend(' '.join(f'{v:.4f}' for v in row) for row in values)
  with open(path, 'w', newline='\r\n') as f:
    f.write('\n'.join(lines) + '\n')
  return str(path)


@pytest.fixture(scope='session')
def tiny_mocap_data_dir(tmp_path_factory):
  """A TFDS data dir holding mocap/tiny: CMU-named BVH files of subjects 1, 2 (train) and 5
  (test), two 1.5 s takes each at 120 fps, two virtual cameras per take."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_h36m.builders as builders  # pylint: disable=g-import-not-at-top
  folder = tmp_path_factory.mktemp('cmu_bvh')
  for subject in (1, 2, 5):
    (folder / f'{subject:02d}').mkdir()
    for take in (1, 2):
      write_motion_bvh(folder / f'{subject:02d}' / f'{subject:02d}_{take:02d}.bvh', 180,
                       seed=10 * subject + take)
  (folder / 'CMU-INDEX.md').write_text('01_01  walk\n01_02  run\n02_01  jump\n05_01  dance\n')
  data_dir = str(tmp_path_factory.mktemp('tfds_mocap'))
  config = builders.MocapConfig(name='tiny', rig='cmu', subjects='cmu', test_every=5,
                                cameras_per_sequence=2, num_workers=1)
  builders.Mocap(config=config, data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(folder)))
  return data_dir


@pytest.fixture(scope='session')
def tiny_mocap_run(tiny_mocap_data_dir, tmp_path_factory):
  """A workdir of configs/mocap.py:tiny (any camera, detector layout, flips, 2D noise)
  trained 2 epochs on mocap/tiny."""
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  config = load_config('mocap', 'tiny')
  config.update(dataset='mocap/tiny', data_dir=tiny_mocap_data_dir)
  workdir = str(tmp_path_factory.mktemp('tiny_mocap'))
  summary = train.train_and_evaluate(config, workdir)
  return {'workdir': workdir, 'config': config, 'summary': summary}
