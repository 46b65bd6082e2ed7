"""ResNet-18 in NHWC, laid out like torchvision's so ImageNet weights load, and the
image encoder built on it."""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from hpe_jax.models import batch_norm as batch_norm_lib
from hpe_jax.models import xla_cpu

# ImageNet channel statistics (RGB, 0-1 scale), the normalisation torchvision's weights expect.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2

# torchvision initialises convolutions with He normal over fan-out.
_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def normalize_image(image):
  """uint8 (..., H, W, 3) RGB -> float32 (x / 255 - mean) / std."""
  return (jnp.asarray(image, jnp.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def denormalize_image(image):
  """Inverse of `normalize_image`: float (..., H, W, 3) -> uint8, rounded and clipped."""
  pixels = (jnp.asarray(image, jnp.float32) * IMAGENET_STD + IMAGENET_MEAN) * 255.0
  return jnp.clip(jnp.round(pixels), 0, 255).astype(jnp.uint8)


def _conv(features, kernel, strides, padding, dtype, name, train):
  """Bias-free square convolution (BatchNorm follows) with symmetric padding, as torch's.

  In training, XLA:CPU computes its kernel gradient in batch chunks (see
  `xla_cpu.conv_general_dilated`); at inference it stays plain lax.
  """
  conv = functools.partial(xla_cpu.conv_general_dilated, chunk_kernel_grad=train)
  return nn.Conv(features, (kernel, kernel), strides=strides, padding=padding, use_bias=False,
                 dtype=dtype, kernel_init=_conv_init, conv_general_dilated=conv, name=name)


def _batch_norm(train, dtype, name):
  """BatchNorm with torch's defaults: momentum 0.1 on the new batch (0.9 on the old), eps 1e-5.

  hpe_jax's BatchNorm: flax's variables and forward arithmetic, with a closed-form
  gradient (one reduction and one elementwise pass over the activations, where JAX's
  differentiation of flax's takes several).
  """
  return batch_norm_lib.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                  dtype=dtype, name=name)


class BasicBlock(nn.Module):
  """Two 3x3 conv-BatchNorm layers plus a shortcut (1x1 conv-BatchNorm where the shape
  changes), then relu: (N, H, W, C) -> (N, H / strides, W / strides, features)."""
  features: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    y = _conv(self.features, 3, self.strides, 1, self.dtype, 'conv1', train)(x)
    y = nn.relu(_batch_norm(train, self.dtype, 'bn1')(y))
    y = _conv(self.features, 3, 1, 1, self.dtype, 'conv2', train)(y)
    y = _batch_norm(train, self.dtype, 'bn2')(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = _conv(self.features, 1, self.strides, 0, self.dtype, 'downsample_conv', train)(x)
      x = _batch_norm(train, self.dtype, 'downsample_bn')(x)
    return nn.relu(x + y)


class ResNet18(nn.Module):
  """ResNet-18 trunk: image (N, H, W, 3) -> globally average-pooled features (N, 512).

  Spatial size is divided by 32 before the pool, so H, W >= 32. `dtype` is the
  compute dtype (e.g. jnp.bfloat16); parameters and BatchNorm statistics stay f32.
  BatchNorm of the `frozen_stages` ('stem', 'stage1'..'stage4') always uses its
  running statistics, so a frozen pretrained stage stays exactly as loaded.
  """
  dtype: Any = jnp.float32
  frozen_stages: Sequence[str] = ()

  @nn.compact
  def __call__(self, x, train):
    stem_train = train and 'stem' not in self.frozen_stages
    x = _conv(64, 7, 2, 3, self.dtype, 'conv_init', stem_train)(x.astype(self.dtype))
    x = nn.relu(_batch_norm(stem_train, self.dtype, 'bn_init')(x))
    x = xla_cpu.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    for stage, features in enumerate(STAGE_WIDTHS, start=1):
      stage_train = train and f'stage{stage}' not in self.frozen_stages
      for block in range(BLOCKS_PER_STAGE):
        strides = 2 if stage > 1 and block == 0 else 1
        x = BasicBlock(features, strides, self.dtype,
                       name=f'stage{stage}_block{block}')(x, stage_train)
    return jnp.mean(x, axis=(1, 2))


class ResNet18Classifier(nn.Module):
  """ResNet-18 with its classification layer: image (N, H, W, 3) -> logits (N, num_classes) f32."""
  num_classes: int = 1000
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train):
    x = ResNet18(self.dtype, name='backbone')(x, train)
    return nn.Dense(self.num_classes, dtype=jnp.float32, name='fc')(x)


class ImageEncoder(nn.Module):
  """Normalised image (N, H, W, 3), H, W >= 32 -> mean and log-variance (N, latent_dim) f32
  of a Gaussian, from a ResNet-18 trunk; the same interface as PoseEncoder."""
  latent_dim: int = 100
  dtype: Any = jnp.float32
  frozen_stages: Sequence[str] = ()  # see ResNet18

  @nn.compact
  def __call__(self, image, train):
    x = ResNet18(self.dtype, self.frozen_stages, name='backbone')(image, train)
    mean = nn.Dense(self.latent_dim, dtype=jnp.float32, name='mean')(x)
    logvar = nn.Dense(self.latent_dim, dtype=jnp.float32, name='logvar')(x)
    return mean, logvar
