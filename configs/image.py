"""rgb->3d alone: the image branch of configs/crossmodal.py without the other pairs.

The comparison that asks whether cross-modal training helps (the thesis's synergy
question). Takes the same presets (e.g. configs/image.py:quick).
"""

from configs import common
from configs import crossmodal


def get_config(preset=None):
  config = crossmodal.get_config(preset)
  config.pairs = [common.pair('image', 'pose_3d')]
  return config
