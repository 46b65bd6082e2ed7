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
