"""Temporal encoder of 2D pose windows (VideoPose3D, Pavllo et al. 2019).

A window of T = 3^k 2D poses goes to the latent Gaussian of one frame: the centre
frame, or the last one in the causal variant (`hpe_jax.sequences.window_offsets`
chooses which frames the window holds). VideoPose3D's net is a stack of temporal
convolutions of width 3 with dilations 1, 3, 9, ...; for one output frame it equals
the same convolutions with strides 3 in place of the dilations (VideoPose3D's own
single-frame training model), which computes only what that frame needs, so this
module is written that way: an expanding convolution T -> T/3 frames, then k - 1
residual blocks (a width-3 stride-3 convolution and a 1x1 one), each T/3^i -> T/3^(i+1),
down to one frame. A block's skip connection takes the middle frame of each group of
3 (the last one when causal, whose window ends at its frame). Batch norm, activation
and dropout are the MLP's (`pose_mlp.after_linear`); the 3D decoder stays per frame.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from hpe_jax.models import pose_mlp


class TemporalLayer(nn.Module):
  """Conv (width `kernel`, stride `kernel`, no padding) - BatchNorm - activation - Dropout.

  A convolution whose stride is its width sees every frame once: it is one matrix product
  over groups of `kernel` frames (kernel (width, in, out) as a convolution's), written so
  because XLA:CPU ran the convolution inside the training scan 18 times slower.
  """
  features: int
  kernel: int
  dropout: float
  use_batch_norm: bool
  activation: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    n, frames, channels = x.shape
    x = x.reshape(n, frames // self.kernel, self.kernel, channels)
    x = nn.DenseGeneral(self.features, axis=(-2, -1), use_bias=not self.use_batch_norm,
                        dtype=self.dtype, name='conv')(x)
    return pose_mlp.after_linear(self, x, train)


class TemporalPoseEncoder(nn.Module):
  """Window (N, T, J, D) of poses -> mean and log-variance (N, latent_dim) of one frame's
  latent, in f32, as pose_mlp.PoseEncoder returns them. `hidden` channels throughout; the
  window sets the depth (log3(T) - 1 residual blocks)."""
  window: int = 27
  causal: bool = False
  latent_dim: int = 100
  hidden: int = 512
  dropout: float = 0.2
  use_batch_norm: bool = True
  activation: str = 'relu'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, window, train):
    if window.shape[1] != self.window:
      raise ValueError(f'The temporal encoder takes windows of {self.window} frames, got '
                       f'{window.shape[1]}.')
    args = (self.dropout, self.use_batch_norm, self.activation, self.dtype)
    x = window.reshape(window.shape[:2] + (-1,)).astype(self.dtype)  # (N, T, J * D)
    x = TemporalLayer(self.hidden, 3, *args)(x, train)
    skip = 2 if self.causal else 1
    while x.shape[1] > 1:
      y = TemporalLayer(self.hidden, 3, *args)(x, train)
      y = TemporalLayer(self.hidden, 1, *args)(y, train)
      x = x[:, skip::3] + y
    gaussian = nn.Dense(2 * self.latent_dim, dtype=jnp.float32, name='gaussian')(x[:, 0])
    mean, logvar = jnp.split(gaussian, 2, axis=-1)
    return mean, logvar
