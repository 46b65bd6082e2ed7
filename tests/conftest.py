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
