"""rgb->3d alone: the image branch of configs/crossmodal.py without the other pairs.

The comparison that asks whether cross-modal training helps (the thesis's synergy
question). Takes the same presets (e.g. configs/image.py:quick).
"""

from configs import crossmodal


def get_config(arg=None):
  config = crossmodal.get_config(arg)
  config.pairs = [p for p in config.pairs if (p['source'], p['target']) == ('image', 'pose_3d')]
  return config
