"""Latent -> RGB image decoder: a transposed-convolution stack as in the thesis."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hpe_jax.models import pose_mlp

START_SIZE = 8  # side of the first feature map, in pixels


def num_upsamplings(image_size):
  """Number of stride-2 transposed convolutions from 8 px to image_size (= 8 * 2**k, k >= 1)."""
  ratio = image_size // START_SIZE if isinstance(image_size, int) else 0
  if ratio < 2 or image_size % START_SIZE or ratio & (ratio - 1):
    raise ValueError(f'image_size must be 8 * 2**k with k >= 1 (16, 32, 64, ...); got {image_size}')
  return ratio.bit_length() - 1


class Upsample2x(nn.Module):
  """A stride-2, kernel-4 transposed convolution that doubles the side:
  `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=2)` with the same
  parameters and the same outputs, (N, H, W, C) -> (N, 2H, 2W, features).

  Output pixel (2u + a, 2v + b) only meets kernel rows {0, 2} (a = 0) or {1, 3}
  (a = 1) of input rows u-1..u+1, and likewise for columns; so one 3x3 convolution
  with the four parities' kernels side by side, then depth-to-space, computes it.
  Written here because XLA:CPU differentiates nn.ConvTranspose 20-40x slower than a
  plain convolution (a 64 x 8 x 8 x 256 -> 128 layer: 1.6 s a gradient, 2 CPU cores,
  JAX 0.10.2), which made the image decoder the whole cost of a step.
  """
  features: int
  use_bias: bool = True
  dtype: Any = jnp.float32

  # For output parity 0 and 1: the kernel index (None: no tap) of input offsets -1, 0, +1.
  _TAPS = ((0, 2, None), (None, 1, 3))

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (4, 4, x.shape[-1], self.features))
    zero = jnp.zeros_like(kernel[0, 0])
    tap = lambda r, c: zero if r is None or c is None else kernel[r, c]
    phases = [jnp.stack([jnp.stack([tap(r, c) for c in self._TAPS[b]]) for r in self._TAPS[a]])
              for a in range(2) for b in range(2)]
    weights = jnp.concatenate(phases, axis=-1)  # (3, 3, C, 4 * features), parity-major
    bias = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else None
    x, weights, bias = nn.dtypes.promote_dtype(x, weights, bias, dtype=self.dtype)
    y = jax.lax.conv_general_dilated(x, weights, (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    n, h, w, _ = y.shape
    y = y.reshape(n, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(n, 2 * h, 2 * w, self.features)
    return y + bias if bias is not None else y


class ImageDecoder(nn.Module):
  """Latent (N, latent_dim) -> image (N, image_size, image_size, 3) f32 in the normalised
  image space (see resnet.normalize_image), unsquashed.

  Dense to an 8 x 8 x base_channels map, BatchNorm + activation, then stride-2
  transposed convolutions (kernel 4) that double the side and halve the channels,
  each followed by BatchNorm + activation, the last one giving 3 channels: 256 px
  takes five. `dtype` is the compute dtype; the last layer computes in f32.
  """
  image_size: int = 256
  base_channels: int = 256
  activation: str = 'relu'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z, train):
    steps = num_upsamplings(self.image_size)
    if self.base_channels < 2 ** (steps - 1):
      raise ValueError(f'base_channels={self.base_channels} cannot be halved {steps - 1} times '
                       f'for image_size={self.image_size}')
    act = pose_mlp.activation_fn(self.activation)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)
    # Kernel 4, stride 2, padding 2 on the dilated input (torch's ConvTranspose2d padding=1).
    up = Upsample2x

    # BatchNorm's own offset makes the biases before it redundant.
    x = nn.Dense(START_SIZE * START_SIZE * self.base_channels, use_bias=False,
                 dtype=self.dtype)(z.astype(self.dtype))
    x = act(norm()(x.reshape(z.shape[0], START_SIZE, START_SIZE, self.base_channels)))
    for i in range(1, steps):
      x = up(self.base_channels // 2 ** i, use_bias=False, dtype=self.dtype)(x)
      x = act(norm()(x))
    return up(3, dtype=jnp.float32, name='out')(x)
