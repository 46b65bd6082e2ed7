"""Cross-modal VAE: RGB image, 2D pose and 3D pose encoders/decoders over one latent space.

The thesis set-up (after Spurr et al., CVPR 2018): the pairs rgb->3d, rgb->rgb,
2d->3d, 3d->3d and 2d->2d take turns, one per step, so image -> 3D needs no
explicit 2D stage and each modality shapes the latent space for the others.

Presets after the path, big_vision style:
  --config=configs/crossmodal.py          the full set-up for an accelerator (256 px, bf16 on GPU/TPU)
  --config=configs/crossmodal.py:quick    a first run on a CPU (64 px crops, a short budget)
  --config=configs/crossmodal.py:tiny     seconds, for tests
"""

import ml_collections


def pair(source, target, weight=1.0, beta=0.001):
  return dict(source=source, target=target, weight=weight, beta=beta)


def get_config(preset=None):
  """The cross-modal config; `preset` is '', 'quick' or 'tiny'."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  # An image config of h36m or h36m_synthetic. Without a Human3.6M build of your
  # own, the synthetic default stands in (its numbers are not Human3.6M numbers).
  config.dataset = 'h36m_synthetic/default'
  config.data_dir = ml_collections.config_dict.placeholder(str)
  config.image_size = 256  # side of the model's square crop (px); the stored crop is resized

  # dtype: 'auto' computes in bf16 on GPU/TPU and f32 on CPU; parameters and losses stay f32.
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=100, hidden=512, num_blocks=2, dropout=0.2, batch_norm=True,
      activation='relu', logvar_clip=10.0, image_decoder_channels=256, dtype='auto'))
  # ImageNet weights for the ResNet-18 encoder: a torchvision resnet18 state dict
  # (.pth) or .safetensors file of your own. trainable_stages: 'all' or a comma-separated
  # subset of stem, stage1, stage2, stage3, stage4, heads (the rest stay frozen).
  config.pretrained = ml_collections.ConfigDict(dict(
      path=ml_collections.config_dict.placeholder(str), trainable_stages='all'))
  # Training-time augmentation of the crops (and poses, for the flip). Set flip_prob=0.5 for
  # Human3.6M; the synthetic renderer paints left and right limbs in different colours, so a
  # mirrored synthetic crop would contradict its swapped joint labels.
  config.augment = ml_collections.ConfigDict(dict(
      flip_prob=0.0, scale=0.1, shift=0.05, brightness=0.2, contrast=0.2, saturation=0.2,
      hue=0.02))

  # Encoder->decoder pairs over one latent space, each with a loss weight and beta.
  # The first pair ending in 3D ranks the checkpoints.
  config.pairs = [pair('image', 'pose_3d'), pair('image', 'image'), pair('pose_2d', 'pose_3d'),
                  pair('pose_3d', 'pose_3d'), pair('pose_2d', 'pose_2d')]
  # 'round_robin': one pair per step in turn; 'per_epoch': one pair per epoch in turn;
  # 'sum': every pair's loss in one step.
  config.pair_schedule = 'round_robin'
  config.beta_schedule = ml_collections.ConfigDict(dict(
      kind='constant', warmup_epochs=10, num_cycles=4, ratio=0.5))
  config.deterministic = False

  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, lr_schedule='exponential', lr_decay_rate=0.96,
      lr_decay_epochs=1.0, warmup_epochs=0.0, grad_clip_norm=1.0, weight_decay=0.0))
  config.batch_size = 128  # global, over all devices and hosts
  config.eval_batch_size = 256
  config.num_epochs = 50
  config.eval_every_epochs = 1
  config.eval_split = 'test'  # the split evaluated during training ('train': how well it fits)
  config.checkpoint_every_epochs = 1
  config.keep_checkpoints = 3  # the latest N, plus the best by test MPJPE
  config.log_every_secs = 60.0
  config.log_every_steps = 100  # train losses to TensorBoard and the console
  config.steps_per_call = 1  # images stream: one jitted step per call
  config.profile = False

  preset = preset or ''
  if preset == 'quick':
    config.image_size = 64
    config.batch_size = 64
    config.eval_batch_size = 256
    config.num_epochs = 2
    config.eval_every_epochs = 2  # evaluating the 5,760 test crops takes half a minute on a CPU
    config.log_every_secs = 30.0
    config.log_every_steps = 50
  elif preset == 'tiny':
    config.dataset = 'h36m_synthetic/tiny'
    config.image_size = 32
    config.model.update(latent_dim=8, hidden=32, num_blocks=1, image_decoder_channels=16)
    config.batch_size = 32
    config.eval_batch_size = 64
    config.num_epochs = 2
    config.log_every_secs = 0.0
    config.log_every_steps = 5
  elif preset:
    raise ValueError(f"Unknown preset {preset!r}; use '', 'quick' or 'tiny'.")
  return config
