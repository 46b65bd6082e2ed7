"""2D pose -> latent -> 3D pose VAE: the thesis's first experiment.

Presets after the path, big_vision style:
  --config=configs/lifting.py          the thesis set-up (512 hidden, latent 100, beta 0.001, 100 epochs)
  --config=configs/lifting.py:quick    a few minutes on a laptop CPU
  --config=configs/lifting.py:tiny     seconds, for tests
"""

import ml_collections


def get_config(preset=None):
  """The lifting config; `preset` is '', 'quick' or 'tiny'."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Any h36m or h36m_synthetic config. Without a Human3.6M build of your own,
  # the synthetic default stands in (its numbers are not Human3.6M numbers).
  config.dataset = 'h36m_synthetic/default'
  config.data_dir = ml_collections.config_dict.placeholder(str)

  config.model = ml_collections.ConfigDict(dict(
      latent_dim=100, hidden=512, num_blocks=2, dropout=0.2, batch_norm=True,
      activation='relu', logvar_clip=10.0))
  # Encoder->decoder pairs over one latent space, each with a loss weight and beta.
  config.pairs = [dict(source='pose_2d', target='pose_3d', weight=1.0, beta=0.001)]
  # 'sum': every pair's loss in one step (the only choice with a single pair).
  config.pair_schedule = 'sum'
  # Multiplies each pair's beta: 'constant', 'linear' (annealing from 0) or 'cyclical'.
  config.beta_schedule = ml_collections.ConfigDict(dict(
      kind='constant', warmup_epochs=10, num_cycles=4, ratio=0.5))
  # True: no sampling and no KL term (beta = 0), the Martinez et al. 2017 baseline.
  config.deterministic = False

  # name: 'adam', 'adamw' (with weight_decay) or 'sgd' (momentum 0.9).
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, lr_schedule='exponential', lr_decay_rate=0.96,
      lr_decay_epochs=1.0, warmup_epochs=0.0, grad_clip_norm=1.0, weight_decay=0.0))
  config.batch_size = 256  # global, over all devices and hosts
  config.eval_batch_size = 4096
  config.num_epochs = 100
  # Train steps per jitted call (one lax.scan): the host sees the run this often.
  config.steps_per_call = 1000
  config.eval_every_epochs = 1
  config.eval_split = 'test'  # the split evaluated during training ('train': how well it fits)
  config.checkpoint_every_epochs = 1
  config.keep_checkpoints = 3  # the latest N, plus the best by test MPJPE
  config.log_every_secs = 30.0
  config.profile = False  # True: a trace of one jitted call in the workdir (TensorBoard profile)

  preset = preset or ''
  if preset == 'quick':
    config.num_epochs = 20
    config.eval_every_epochs = 5
  elif preset == 'tiny':
    config.dataset = 'h36m_synthetic/tiny'
    config.model.update(latent_dim=8, hidden=32, num_blocks=1)
    config.batch_size = 32
    config.eval_batch_size = 64
    config.num_epochs = 2
    config.steps_per_call = 5
    config.log_every_secs = 0.0
  elif preset:
    raise ValueError(f"Unknown preset {preset!r}; use '', 'quick' or 'tiny'.")
  return config
