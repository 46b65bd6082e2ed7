"""MLP encoders and decoders of 2D and 3D poses (Martinez et al. 2017 residual blocks)."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from hpe_jax.models import batch_norm as batch_norm_lib
from hpe_jax.models import dropout as dropout_lib

ACTIVATIONS = {'relu': nn.relu, 'leaky_relu': nn.leaky_relu, 'gelu': nn.gelu, 'elu': nn.elu}


def activation_fn(name):
  if name not in ACTIVATIONS:
    raise ValueError(f'Unknown activation {name!r}; known: {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


def after_linear(layer, x, train):
  """BatchNorm (if `layer.use_batch_norm`) - activation - Dropout of a linear map's output,
  called inside `layer`'s compact __call__ (its submodules are `layer`'s). Shared by the
  MLP's and the graph network's layers."""
  if layer.use_batch_norm:
    x = batch_norm_lib.BatchNorm(use_running_average=not train, momentum=0.9,
                                 dtype=layer.dtype)(x)
  x = activation_fn(layer.activation)(x)
  return dropout_lib.Dropout(layer.dropout)(x, deterministic=not train)


class DenseLayer(nn.Module):
  """Linear - BatchNorm - activation - Dropout."""
  features: int
  dropout: float
  use_batch_norm: bool
  activation: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    # BatchNorm's own offset makes a Dense bias redundant.
    x = nn.Dense(self.features, use_bias=not self.use_batch_norm, dtype=self.dtype)(x)
    return after_linear(self, x, train)


class ResidualBlock(nn.Module):
  """Two DenseLayers with a skip connection."""
  features: int
  dropout: float
  use_batch_norm: bool
  activation: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    layer = lambda: DenseLayer(self.features, self.dropout, self.use_batch_norm,
                               self.activation, self.dtype)
    return x + layer()(layer()(x, train), train)


class PoseMLP(nn.Module):
  """Shared trunk of pose encoders and decoders: an input DenseLayer to `hidden`,
  then `num_blocks` residual blocks.

  Defaults follow the thesis: 512 wide, 2 residual blocks of 2 layers (5 linear
  blocks with the input layer).
  """
  hidden: int = 512
  num_blocks: int = 2
  dropout: float = 0.2
  use_batch_norm: bool = True
  activation: str = 'relu'
  dtype: Any = jnp.float32

  def trunk(self, x, train):
    args = (self.hidden, self.dropout, self.use_batch_norm, self.activation, self.dtype)
    x = DenseLayer(*args)(x.astype(self.dtype), train)
    for _ in range(self.num_blocks):
      x = ResidualBlock(*args)(x, train)
    return x


class PoseEncoder(PoseMLP):
  """Pose (N, J, D) -> mean and log-variance (N, latent_dim, default 100) of a Gaussian."""
  latent_dim: int = 100

  @nn.compact
  def __call__(self, pose, train):
    x = self.trunk(pose.reshape(pose.shape[0], -1), train)
    # One Dense for both heads: a single 2*latent-wide matmul is cheaper than two.
    gaussian = nn.Dense(2 * self.latent_dim, dtype=jnp.float32, name='gaussian')(x)
    mean, logvar = jnp.split(gaussian, 2, axis=-1)
    return mean, logvar


class PoseDecoder(PoseMLP):
  """Latent (N, latent_dim) -> pose (N, num_joints, joint_dim), in f32."""
  num_joints: int = 16
  joint_dim: int = 3

  @nn.compact
  def __call__(self, z, train):
    x = self.trunk(z, train)
    x = nn.Dense(self.num_joints * self.joint_dim, dtype=jnp.float32, name='out')(x)
    return x.reshape(z.shape[0], self.num_joints, self.joint_dim)
