"""The deterministic baseline (Martinez et al. 2017): the lifting network with beta = 0, no sampling.

Takes the same presets as configs/lifting.py (e.g. configs/baseline.py:quick).
"""

import importlib.util
import os


def _lifting():
  """configs/lifting.py, found beside this file whatever the working directory."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lifting.py')
  spec = importlib.util.spec_from_file_location('hpe_jax_configs_lifting', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(preset=None):
  config = _lifting().get_config(preset)
  config.deterministic = True
  for pair in config.pairs:
    pair['beta'] = 0.0
  return config
