"""Cross-modal VAE: RGB image, 2D pose and 3D pose encoders/decoders over one latent space.

The thesis set-up (after Spurr et al., CVPR 2018): the pairs rgb->3d, rgb->rgb,
2d->3d, 3d->3d and 2d->2d take turns, one per step, so image -> 3D needs no
explicit 2D stage and each modality shapes the latent space for the others.

Presets after the path, big_vision style:
  --config=configs/crossmodal.py          the full set-up for an accelerator (256 px, bf16 on GPU/TPU)
  --config=configs/crossmodal.py:quick    a first run on a CPU (32 px crops, a short budget)
  --config=configs/crossmodal.py:tiny     seconds, for tests
  --config=configs/crossmodal.py:quick,beta=0.01   options after the preset: beta, every pair's KL weight
"""

from configs import common


def get_config(arg=None):
  """The cross-modal config; `arg`: a preset ('', 'quick' or 'tiny') and options (`common.parse_arg`)."""
  preset, options = common.parse_arg(arg)
  config = common.get_config()
  config.model.dtype = 'auto'
  pair = common.pair
  config.pairs = [pair('image', 'pose_3d'), pair('image', 'image'), pair('pose_2d', 'pose_3d'),
                  pair('pose_3d', 'pose_3d'), pair('pose_2d', 'pose_2d')]
  config.pair_schedule = 'round_robin'
  config.batch_size = 128
  config.eval_batch_size = 256
  config.num_epochs = 50
  config.log_every_secs = 60.0
  if preset == 'quick':
    # About 3 minutes on 2 CPU cores, a third of it compiling the five pairs' steps: 32 px
    # crops and a narrow image decoder (64 px and 256 channels took 17 minutes for about the
    # same errors: rgb->3d 139 / 145 mm, 2d->3d 94 / 94 mm; an untrained model's are ~215 mm).
    # The default build's poses and renders with 64 px crops (built in under a minute, against
    # about 4 for the 256 px ones), decoded straight to 32 px.
    config.dataset = 'h36m_synthetic/quick'
    config.image_size = 32
    config.model.image_decoder_channels = 64
    config.batch_size = 64
    config.num_epochs = 2
    config.eval_every_epochs = 2  # evaluating the 5,760 test crops takes half a minute on a CPU
    config.log_every_secs = 30.0
    config.log_every_steps = 50
  elif preset == 'tiny':
    config.dataset = 'h36m_synthetic/tiny'
    config.image_size = 32
    common.tiny(config)
    config.model.image_decoder_channels = 16
    config.steps_per_call = 1  # image configs stream one step per call
    config.log_every_steps = 5
    config.input_workers = 0  # the same threads on every machine the tests run on
  return common.apply_options(config, options)
