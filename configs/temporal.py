"""Temporal lifting: a window of 2D poses -> the latent of its frame -> that frame's 3D pose.

The 2D encoder is VideoPose3D's temporal convolution net (hpe_jax/models/pose_temporal.py)
over `model.window` frames of one sequence (subject, action, subaction, camera) at the
data's 50 fps; the 3D decoder stays per frame, as in lifting.py. It needs every frame:
h36m/poses for Human3.6M, h36m_synthetic/poses for the stand-in (builds with no download).

Presets after the path, big_vision style:
  --config=configs/temporal.py             VideoPose3D's set-up: 243 frames, 1024 channels
  --config=configs/temporal.py:quick       27 frames, 256 channels, 10 epochs
  --config=configs/temporal.py:tiny        seconds, for tests
  --config=configs/temporal.py:quick,window=81   options after the preset (window, beta)
Set --config.model.causal=True for windows that end at their frame (real-time use).
"""

from configs import common


def get_config(arg=None):
  """The temporal lifting config; `arg`: a preset ('', 'quick' or 'tiny') and options."""
  preset, options = common.parse_arg(arg)
  config = common.get_config()
  config.dataset = 'h36m_synthetic/poses'
  config.model.update(pose_net='temporal', window=243, hidden=1024, dropout=0.25)
  config.optimizer.lr_decay_rate = 0.95
  config.batch_size = 1024
  config.num_epochs = 80
  config.steps_per_call = 100  # the poses live on the devices
  if preset == 'quick':
    config.model.update(window=27, hidden=256)
    config.batch_size = 256
    config.num_epochs = 10
    config.eval_every_epochs = 5
  elif preset == 'tiny':
    config.dataset = 'h36m_synthetic/tiny_poses'
    common.tiny(config)
    config.model.window = 9
  return common.apply_options(config, options)
