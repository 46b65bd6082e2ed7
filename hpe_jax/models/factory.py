"""The CrossModalVAE of a config: an encoder per source and a decoder per target modality.

Shared by training, evaluation and the lifter (no TensorFlow, no training code).
"""

import jax
import jax.numpy as jnp

from hpe_jax import modalities
from hpe_jax.models import image_decoder
from hpe_jax.models import pose_graph
from hpe_jax.models import pose_mlp
from hpe_jax.models import pose_temporal
from hpe_jax.models import pretrained
from hpe_jax.models import resnet
from hpe_jax.models import vae


def compute_dtype(config):
  """bf16 compute on GPU/TPU and f32 on CPU for model.dtype 'auto'; parameters stay f32."""
  name = config.model.dtype
  if name == 'auto':
    name = 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'
  if name not in ('float32', 'bfloat16'):
    raise ValueError(f"model.dtype must be 'auto', 'float32' or 'bfloat16', got {name!r}")
  return jnp.dtype(name)


def trainable_stages(config):
  """The image encoder's stages that train ('all', or a tuple of stage names)."""
  stages = config.pretrained.trainable_stages
  return stages if stages == 'all' else tuple(s.strip() for s in stages.split(','))


POSE_NETS = {'mlp': (pose_mlp.PoseEncoder, pose_mlp.PoseDecoder),
             'graph': (pose_graph.GraphPoseEncoder, pose_graph.GraphPoseDecoder),
             # The temporal net's 2D encoder is `pose_2d_encoder`'s; the rest stay per frame.
             'temporal': (pose_mlp.PoseEncoder, pose_mlp.PoseDecoder)}


def pose_networks(config):
  """(encoder class, decoder class, their shared options) of config.model.pose_net: the
  MLP (`hidden` units wide) or the skeleton graph network (`graph_hidden` per joint)."""
  m = config.model
  if m.pose_net not in POSE_NETS:
    raise ValueError(f"model.pose_net must be one of {', '.join(POSE_NETS)}, got {m.pose_net!r}")
  hidden = m.graph_hidden if m.pose_net == 'graph' else m.hidden
  common = dict(hidden=hidden, num_blocks=m.num_blocks, dropout=m.dropout,
                use_batch_norm=m.batch_norm, activation=m.activation,
                dtype=compute_dtype(config))
  return POSE_NETS[m.pose_net] + (common,)


def pose_2d_encoder(config, pose_encoder, common):
  """The 2D pose encoder: the temporal net over `model.window` frames for pose_net
  'temporal', else the config's per-frame `pose_encoder`."""
  m = config.model
  if not modalities.is_temporal(config):
    return pose_encoder(latent_dim=m.latent_dim, **common)
  options = {k: v for k, v in common.items() if k != 'num_blocks'}
  return pose_temporal.TemporalPoseEncoder(window=m.window, causal=m.causal,
                                           latent_dim=m.latent_dim, **options)


def create_model(config):
  """A CrossModalVAE with an encoder per source and a decoder per target modality."""
  m = config.model
  dtype = compute_dtype(config)
  pose_encoder, pose_decoder, common = pose_networks(config)
  pairs = modalities.pairs(config)
  encoders, decoders = {}, {}
  for source in modalities.encoder_modalities(config):
    if source == modalities.IMAGE:
      stages = trainable_stages(config)
      frozen = () if stages == 'all' else tuple(
          s for s in pretrained.STAGES if s not in stages and s != 'heads')
      encoders[source] = resnet.ImageEncoder(latent_dim=m.latent_dim, dtype=dtype,
                                             frozen_stages=frozen)
    elif source == modalities.POSE_2D:
      encoders[source] = pose_2d_encoder(config, pose_encoder, common)
    else:
      encoders[source] = pose_encoder(latent_dim=m.latent_dim, **common)
  for target in sorted({p.target for p in pairs}):
    if target == modalities.IMAGE:
      decoders[target] = image_decoder.ImageDecoder(
          image_size=config.image_size, base_channels=m.image_decoder_channels,
          activation=m.activation, dtype=dtype)
    else:
      num_joints, joint_dim = modalities.POSE_SHAPES[target]
      decoders[target] = pose_decoder(num_joints=num_joints, joint_dim=joint_dim, **common)
  return vae.CrossModalVAE(encoders=encoders, decoders=decoders,
                           logvar_clip=m.logvar_clip, deterministic_latent=config.deterministic)


def init_variables(config, model, rng):
  """Randomly initialised {'params', 'batch_stats'} of every encoder and decoder."""
  inputs = {m: jnp.zeros((2,) + modalities.input_shape(config, m))
            for m in modalities.modalities(config)}

  @jax.jit  # one compilation, not one per layer: 2.8 s instead of 4.8 s for the lifting model
  def init(rng):
    variables = model.init({'params': rng, 'dropout': rng, 'latent': rng}, inputs,
                           method=model.init_all)
    return {'params': variables['params'], 'batch_stats': variables.get('batch_stats', {})}

  return init(rng)
