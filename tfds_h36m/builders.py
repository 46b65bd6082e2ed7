"""Importing this module registers `h36m`, `h36m_synthetic`, `mocap`, `mpi_inf_3dhp` and `pw3d`
with TFDS.

`python -m tfds_h36m.prepare --dataset=h36m_synthetic/default`, or in Python
`import tfds_h36m.builders; tfds.builder('h36m/poses')`. The package itself
stays free of TensorFlow so its geometry helpers import fast.
"""

import json
import os

import tensorflow_datasets as tfds

from tfds_h36m.h36m import h36m_dataset_builder
from tfds_h36m.h36m_synthetic import h36m_synthetic_dataset_builder
from tfds_h36m.mocap import mocap_dataset_builder
from tfds_h36m.mpi_inf_3dhp import mpi_inf_3dhp_dataset_builder
from tfds_h36m.pw3d import pw3d_dataset_builder

H36m = h36m_dataset_builder.Builder
H36mConfig = h36m_dataset_builder.H36mConfig
H36mSynthetic = h36m_synthetic_dataset_builder.Builder
SyntheticConfig = h36m_synthetic_dataset_builder.SyntheticConfig
MpiInf3dhp = mpi_inf_3dhp_dataset_builder.Builder
Pw3d = pw3d_dataset_builder.Builder
Mocap = mocap_dataset_builder.Builder
MocapConfig = mocap_dataset_builder.MocapConfig
BUILDER_NAMES = ('h36m', 'h36m_synthetic', 'mocap')  # the training datasets
WILD_BUILDER_NAMES = ('mpi_inf_3dhp', 'pw3d')  # in-the-wild test sets (docs/in_the_wild.md)


class ForeignCode(ValueError):
  """A dataset folder whose files name Python code that reading it would import."""


def _class_names(node):
  """Every 'pythonClassName' value in a parsed JSON tree."""
  if isinstance(node, dict):
    for key, value in node.items():
      if key == 'pythonClassName' and isinstance(value, str):
        yield value
      else:
        yield from _class_names(value)
  elif isinstance(node, list):
    for value in node:
      yield from _class_names(value)


def check_no_code(name, data_dir=None):
  """Raises ForeignCode (one line) if a JSON file of the built dataset `name` names a feature
  class this program has not loaded itself.

  TFDS imports the module of every feature class a dataset's features.json names when it reads
  a build its registered configs do not describe (a config built from a user's JSON, or a
  folder someone handed over); run from that folder, a module shipped beside it would run.
  Only classes TFDS or tfds_h36m already registered pass, so reading never imports.
  """
  known = set(getattr(tfds.features.FeatureConnector, '_registered_features', {}))
  builder_name, _, rest = name.partition('/')
  root = os.path.join(os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR),
                      builder_name, rest.split(':')[0])
  for folder, _, names in os.walk(root):
    for json_name in (n for n in names if n.endswith('.json')):
      path = os.path.join(folder, json_name)
      try:
        with open(path, encoding='utf-8') as f:
          tree = json.load(f)
      except (OSError, ValueError):
        continue  # not ours to judge here: TFDS reports a damaged info file itself
      foreign = sorted(set(_class_names(tree)) - known)
      if foreign:
        raise ForeignCode(f'{path} names Python code ({foreign[0]}) that reading the dataset '
                          'would import; hpe_jax runs no code named by a data file: rebuild '
                          f'{name} with python -m tfds_h36m.prepare.')


def load(name, data_dir=None):
  """`tfds.builder(name, data_dir=...)` once `check_no_code` has passed: the one way hpe_jax
  opens a dataset."""
  check_no_code(name, data_dir)
  return tfds.builder(name, data_dir=data_dir)
