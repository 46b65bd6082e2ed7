"""The one config schema: every field any hpe_jax config has, with its default.

`lifting.py`, `baseline.py`, `crossmodal.py` and `image.py` start from
`get_config()` and change fields; they never add one (`hpe_jax.config_lib`
rejects a field this file lacks, naming the nearest known ones).
"""

import ml_collections

PRESETS = ('', 'quick', 'tiny')
# After the preset: configs/lifting.py:quick,beta=0.01; configs/weakly_supervised.py:quick,root=known
OPTIONS = {'beta': float, 'root': str, 'window': int}


def pair(source, target, weight=1.0, beta=0.001):
  """One encoder -> decoder pair over the shared latent space ('image', 'pose_2d', 'pose_3d')."""
  return dict(source=source, target=target, weight=weight, beta=beta)


def get_config():
  """The schema with its defaults (the lifting VAE of the thesis)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  # A config of h36m (your own build) or h36m_synthetic (builds with no download;
  # its numbers are not Human3.6M numbers).
  config.dataset = 'h36m_synthetic/default'
  config.data_dir = ml_collections.config_dict.placeholder(str)
  config.image_size = 256  # side of the model's square crop (px); image pairs only
  # The 2D pose a pose model reads: 'h36m', the dataset's 17 joints as they are; 'detector',
  # with Pelvis, Spine and Thorax derived from the hips and shoulders the way `predict`
  # derives them from a detector's keypoints (hpe_jax/inference/layouts.py), for a lifter
  # that will be fed COCO, OpenPose, AlphaPose or BlazePose keypoints. Pose configs only.
  config.input_layout = 'h36m'
  # The units of a pose model's 2D input: 'pixels' as the dataset gives them (one camera's
  # focal length and principal point baked into the model), or 'camera', the normalised image
  # plane (u - c) / f of each example's own camera: a lifter for any camera; or
  # 'perspective_crop', that plane as a camera turned to look at the pose's root sees it, the
  # root at the origin and the pose scaled to unit size (hpe_jax/normalization.py; the 3D poses
  # then live in the turned camera's frame, and the lifter turns them back): the same input
  # wherever the person is in the image and however far (configs/mocap.py). Pose configs only;
  # 'perspective_crop' with 3D labels only.
  config.input_space = 'pixels'

  # activation: 'relu', 'leaky_relu', 'gelu' or 'elu'. dtype: 'float32', 'bfloat16', or 'auto'
  # (bf16 on GPU/TPU, f32 on CPU); parameters and losses stay f32. pose_net: the network of every
  # pose encoder and decoder, 'mlp' (residual MLP, `hidden` units wide) or 'graph' (a
  # modulated graph convolution network over the skeleton, hpe_jax/models/pose_graph.py,
  # `graph_hidden` features per joint); both take num_blocks, dropout, batch_norm and
  # activation. Or 'temporal' (configs/temporal.py): the 2D pose encoder reads a `window`
  # of 2D poses (27, 81 or 243 frames at the data's frame rate; VideoPose3D's temporal
  # convolutions, hpe_jax/models/pose_temporal.py, `hidden` channels), centred on its frame
  # or, `causal`, ending at it (no future frame, for real-time use); the other pose
  # networks are the MLP. Image encoders and decoders are the same for all.
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=100, hidden=512, num_blocks=2, dropout=0.2, batch_norm=True,
      activation='relu', logvar_clip=10.0, image_decoder_channels=256, dtype='float32',
      pose_net='mlp', graph_hidden=128, window=27, causal=False))
  # ImageNet weights for the ResNet-18 image encoder: a torchvision resnet18 state dict
  # (.pth) or .safetensors file of your own. trainable_stages: 'all' or a comma-separated
  # subset of stem, stage1, stage2, stage3, stage4, heads (the rest stay frozen).
  config.pretrained = ml_collections.ConfigDict(dict(
      path=ml_collections.config_dict.placeholder(str), trainable_stages='all'))
  # Training-time augmentation, on the accelerator inside the train step. flip_prob: the
  # left-right mirror (`hpe_jax.mirror`) of every config's poses and crops. Keep it 0 for
  # image configs on the synthetic data, whose renderer paints left and right limbs in
  # different colours (a mirrored crop would contradict its labels); the rest: image
  # configs only (crop jitter, colour jitter; the host only decodes JPEGs).
  # pose_2d_noise and missing_joints: pose configs' detector-like 2D corruption
  # (`hpe_jax.pose_noise`): Gaussian noise of a fraction of the pose's size, each pose at its
  # own level in [0, 2 x pose_2d_noise], and the probability of a missing knee, ankle, elbow or
  # wrist (placed at its parent, as the lifter places a detector's missing joints).
  # bone_scale: 'perspective_crop' configs' new bodies: each training pose's bone groups
  # scaled by exp(N(0, bone_scale)) (joint angles kept) and filmed again from the same place
  # (`hpe_jax.pose_bodies`); a temporal window keeps one body. leg_bend: the fraction of
  # those poses whose hips and knees are flexed more (seated, crouched, kneeling legs) for
  # capture in which nobody sits.
  config.augment = ml_collections.ConfigDict(dict(
      flip_prob=0.0, scale=0.1, shift=0.05, brightness=0.2, contrast=0.2, saturation=0.2,
      hue=0.02, pose_2d_noise=0.0, missing_joints=0.0, bone_scale=0.0, leg_bend=0.0))
  # grain worker processes decoding the training crops per host; 0: two threads of the
  # training process; -1: one per host core but one, at most 16 (none on 2 cores).
  config.input_workers = -1
  # Training subjects (numbers, 1 for S1) left out: the folds of `hpe_jax.fit_spread`.
  config.train_exclude_subjects = ()

  # Encoder -> decoder pairs over one latent space, each with a loss weight and beta.
  # The first pair ending in 3D ranks the checkpoints.
  config.pairs = [pair('pose_2d', 'pose_3d')]
  # 'sum': every pair's loss in one step (pose-only configs); 'round_robin': one pair per
  # step in turn; 'per_epoch': one pair per epoch in turn.
  config.pair_schedule = 'sum'
  # Multiplies each pair's beta: 'constant', 'linear' (annealing from 0) or 'cyclical'.
  config.beta_schedule = ml_collections.ConfigDict(dict(
      kind='constant', warmup_epochs=10, num_cycles=4, ratio=0.5))
  # True: no sampling and no KL term (beta = 0), the Martinez et al. 2017 baseline.
  config.deterministic = False
  # The latent prior of the pairs that end in 3D from another modality. 'standard': each
  # encoder's distribution is pulled to N(0, I) (the thesis VAE). 'conditional': a CVAE
  # (Sohn et al. 2015): the 3D encoder gives the posterior q(z | 3D), the source encoder a
  # learned prior p(z | 2D or image), trained with KL(q || p); hypotheses at test time are
  # prior samples. gsnn_weight: the share of the reconstruction loss that decodes a prior
  # sample instead of a posterior one (Sharma et al. 2019's GSNN term); gsnn_temperature
  # scales that sample's sigma (0: the prior mean, the single answer at test time).
  config.prior = ml_collections.ConfigDict(dict(kind='standard', gsnn_weight=0.5,
                                                gsnn_temperature=1.0))

  # '3d': pairs ending in 3D learn from the 3D labels. 'weak': the 2D -> 3D pair learns from
  # 2D poses and cameras alone (`hpe_jax.weak_supervision`; configs/weakly_supervised.py),
  # with the losses weighted in `weak`: reprojection through the example's camera at a root
  # that is 'known' (the record's root_3d, which leaks the person's metric size) or 'fit'
  # (least squares from the 2D pose); multi-view consistency of two synchronised views,
  # placed with the known 'extrinsics' or aligned by a 'rigid' rotation; bone-length
  # symmetry and consistency over a subject's frames. pose_3d_std_mm: the 3D output's unit
  # in place of the labels' statistics.
  config.supervision = '3d'
  config.weak = ml_collections.ConfigDict(dict(
      root='fit', reprojection=1.0, multiview=1.0, multiview_kind='extrinsics',
      bone_symmetry=0.1, bone_consistency=0.1, pose_3d_std_mm=300.0))

  # name: 'adam', 'adamw' (with weight_decay) or 'sgd' (momentum 0.9); lr_schedule:
  # 'constant', 'exponential' or 'cosine'.
  config.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, lr_schedule='exponential', lr_decay_rate=0.96,
      lr_decay_epochs=1.0, warmup_epochs=0.0, grad_clip_norm=1.0, weight_decay=0.0))
  config.batch_size = 256  # global, over all devices and hosts
  config.eval_batch_size = 4096
  config.num_epochs = 100
  # Train steps per jitted call (one lax.scan) when the poses live on the devices; image
  # configs stream one step per call and keep 1.
  config.steps_per_call = 1
  config.eval_every_epochs = 1
  # True: every pair ending in 3D also lifts the mirrored input, mirrors its answer back and
  # averages the two (test-time flip augmentation) in the evaluations.
  config.flip_test = False
  # True: the single 3D answer of an any-camera lifter ('camera' or 'perspective_crop'
  # input) is moved toward its keypoints' rays, as far as their expected noise allows
  # (`hpe_jax.ray_refinement`): in `Lifter.lift` (keypoint_noise) and in the evaluations
  # (at eval_pose_2d_noise).
  config.ray_refinement = False
  # Detector-like Gaussian 2D noise (a fraction of each pose's size, `hpe_jax.pose_noise`,
  # seeded) on the evaluated split's 2D poses: the lifter measured on keypoints as a detector
  # gives them. Pose configs only.
  config.eval_pose_2d_noise = 0.0
  config.eval_split = 'test'  # the split evaluated during training ('train': how well it fits)
  config.checkpoint_every_epochs = 1
  config.keep_checkpoints = 3  # the latest N, plus the best by test MPJPE
  config.log_every_secs = 30.0  # progress (steps/s, ETA) on the console
  config.log_every_steps = 100  # train losses to TensorBoard and the non-finite check
  config.profile = False  # True: a trace of one jitted call in the workdir (TensorBoard profile)
  return config


def tiny(config):
  """`config` shrunk for tests, in seconds: tiny pose networks, small batches, 2 epochs of a
  few steps per call, progress on every call."""
  config.model.update(latent_dim=8, hidden=32, num_blocks=1, graph_hidden=8)
  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_epochs = 2
  config.steps_per_call = 5
  config.log_every_secs = 0.0
  return config


def parse_arg(arg):
  """The text after the config path, big_vision style: a preset and options, comma-separated
  ('quick', 'tiny,beta=0.01', 'beta=0.1') -> (preset, {option: value}).

  Options: beta (float), every pair's KL weight; root ('known' or 'fit'), the weak
  supervision's root; window (int), the temporal pose network's frames. Unknown presets or options are errors naming the known ones.
  """
  preset, options = '', {}
  for part in filter(None, (arg or '').split(',')):
    if '=' not in part:
      preset = part
      continue
    name, value = part.split('=', 1)
    if name not in OPTIONS:
      raise ValueError(f'Unknown config option {name!r}; known: {", ".join(OPTIONS)}.')
    try:
      options[name] = OPTIONS[name](value)
    except ValueError:
      raise ValueError(f'Config option {name}={value!r} is not a {OPTIONS[name].__name__}.')
  if preset not in PRESETS:
    raise ValueError(f"Unknown preset {preset!r}; use '', 'quick' or 'tiny'.")
  return preset, options


def apply_options(config, options):
  """`config` with the options of `parse_arg` applied."""
  if 'beta' in options:
    for pair_ in config.pairs:
      pair_['beta'] = options['beta']
  if 'root' in options:
    config.weak.root = options['root']
  if 'window' in options:
    config.model.window = options['window']
  return config
