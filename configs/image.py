"""rgb->3d alone: the image branch of configs/crossmodal.py without the other pairs.

The comparison that asks whether cross-modal training helps (the thesis's synergy
question). Takes the same presets (e.g. configs/image.py:quick).
"""

import importlib.util
import os


def _crossmodal():
  """configs/crossmodal.py, found beside this file whatever the working directory."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'crossmodal.py')
  spec = importlib.util.spec_from_file_location('hpe_jax_configs_crossmodal', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(preset=None):
  module = _crossmodal()
  config = module.get_config(preset)
  config.pairs = [module.pair('image', 'pose_3d')]
  return config
