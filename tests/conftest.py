"""Shared fixtures: the tiny synthetic dataset, built once per test process."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A TFDS data dir holding h36m_synthetic/tiny."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfds_h36m.builders  # pylint: disable=g-import-not-at-top,unused-import
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  tfds.builder('h36m_synthetic/tiny', data_dir=data_dir).download_and_prepare()
  return data_dir


@pytest.fixture(scope='session')
def tiny_lifting_run(tiny_data_dir, tmp_path_factory):
  """A workdir of configs/lifting.py:tiny trained 4 epochs (60 steps) on the tiny dataset.

  Returns dict(workdir, config, summary): summary is the final evaluation
  (of the last checkpoint) returned by train_and_evaluate. Tests that modify
  a workdir copy it first.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  spec = importlib.util.spec_from_file_location('lifting_config',
                                                os.path.join(root, 'configs', 'lifting.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('tiny')
  config.data_dir = tiny_data_dir
  config.num_epochs = 4
  workdir = str(tmp_path_factory.mktemp('tiny_lifting'))
  summary = train.train_and_evaluate(config, workdir)
  return {'workdir': workdir, 'config': config, 'summary': summary}
