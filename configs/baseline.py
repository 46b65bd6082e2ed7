"""The deterministic baseline (Martinez et al. 2017): the lifting network with beta = 0, no sampling.

Takes the same presets as configs/lifting.py (e.g. configs/baseline.py:quick).
"""

from configs import lifting


def get_config(arg=None):
  config = lifting.get_config(arg)
  config.deterministic = True
  for pair in config.pairs:
    pair['beta'] = 0.0
  return config
