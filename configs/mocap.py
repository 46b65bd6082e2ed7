"""A lifter for any camera, trained on real motion capture (the `mocap` datasets).

The 2D -> 3D VAE of lifting.py on people filmed by virtual cameras (tfds_h36m/mocap), its
encoder and decoder graph networks over the skeleton (`model.pose_net` 'graph',
hpe_jax/models/pose_graph.py; on real motion they beat the residual MLP, 'mlp', at equal
epochs and at full length: docs/experiments/mocap_lifters.md): its 2D
input a perspective crop of each camera's normalised image plane (`config.input_space`
'perspective_crop': no focal length or principal point baked in, the same input wherever the
person is in the image and however far); Pelvis, Spine and Thorax derived from the hips and
shoulders (`input_layout` 'detector': COCO, Halpe, OpenPose and BlazePose keypoints are
first-class); left-right flips in training and at test; detector-like 2D noise and missing
limb joints in training (`hpe_jax.pose_noise`); each training pose on a new body, its bones
scaled by exp(N(0, 0.1)), a fifth of them with their legs bent (seated, crouched, kneeling:
`hpe_jax.pose_bodies`); a cosine learning rate; the answers moved
toward the keypoints' rays (`hpe_jax.ray_refinement`). The lifters that ship with the package
(docs/model_card.md) are this config and its temporal form (window=27) on mocap/cmu.
A CPU trains the graph network about 5x slower than the MLP (10 epochs of mocap/cmu: about
an hour on 2 cores); `--config.model.pose_net=mlp` for the MLP.

  python -m tfds_h36m.prepare --dataset=mocap/cmu --manual_dir=/path/to/cmu_bvh --data_dir=data
  python -m hpe_jax.main --config=configs/mocap.py --config.data_dir=data --workdir=workdirs/mocap

Presets after the path, big_vision style:
  --config=configs/mocap.py           mocap/cmu, 10 epochs
  --config=configs/mocap.py:quick     2 epochs
  --config=configs/mocap.py:tiny      seconds, for tests (set config.dataset)
  --config=configs/mocap.py:window=27 the temporal lifter for tracks: a window of 27 frames
                                      (VideoPose3D's temporal convolutions, 256 channels)
Set --config.dataset=mocap/bandai (or your own build, `mocap/<name>`) for other capture.
"""

from configs import common


def get_config(arg=None):
  """The motion capture lifting config; `arg`: a preset ('', 'quick' or 'tiny') and options."""
  preset, options = common.parse_arg(arg)
  config = common.get_config()
  config.dataset = 'mocap/cmu'
  config.input_space = 'perspective_crop'
  config.input_layout = 'detector'
  config.model.pose_net = 'graph'
  config.augment.update(flip_prob=0.5, pose_2d_noise=0.01, missing_joints=0.05, bone_scale=0.1,
                        leg_bend=0.2)
  config.flip_test = True
  config.ray_refinement = True
  config.optimizer.lr_schedule = 'cosine'
  config.num_epochs = 10
  config.eval_every_epochs = 5
  config.steps_per_call = 1000  # the poses live on the devices
  if preset == 'quick':
    config.num_epochs = 2
    config.eval_every_epochs = 1
  elif preset == 'tiny':
    common.tiny(config)
    config.model.window = 9
    config.eval_every_epochs = 1
  if 'window' in options:
    config.model.pose_net = 'temporal'
    if preset != 'tiny':
      config.model.hidden = 256
  return common.apply_options(config, options)
