"""2D pose -> latent -> 3D pose VAE: the thesis's first experiment.

Presets after the path, big_vision style:
  --config=configs/lifting.py          the thesis set-up (512 hidden, latent 100, beta 0.001, 100 epochs)
  --config=configs/lifting.py:quick    a few minutes on a laptop CPU
  --config=configs/lifting.py:tiny     seconds, for tests
  --config=configs/lifting.py:quick,beta=0.01   options after the preset: beta, every pair's KL weight
"""

from configs import common


def get_config(arg=None):
  """The lifting config; `arg`: a preset ('', 'quick' or 'tiny') and options (`common.parse_arg`)."""
  preset, options = common.parse_arg(arg)
  config = common.get_config()
  config.steps_per_call = 1000  # the poses live on the devices: 1000 steps per jitted call
  if preset == 'quick':
    config.num_epochs = 20
    config.eval_every_epochs = 5
  elif preset == 'tiny':
    config.dataset = 'h36m_synthetic/tiny'
    common.tiny(config)
  return common.apply_options(config, options)
