"""The XLA:CPU rewrites of hpe_jax.models.xla_cpu equal the lax / flax ops they replace,
values and gradients (tiny shapes)."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hpe_jax.models import resnet
from hpe_jax.models import xla_cpu

DN = ('NHWC', 'HWIO', 'NHWC')


def _grads(f, *args):
  """Values and gradients of sum(sin(f(*args))) (a loss whose cotangent varies by element)."""
  loss = lambda *a: jnp.sum(jnp.sin(f(*a)))
  return jax.jit(f)(*args), jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)


def _assert_close(got, expected, rtol=1e-5):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.abs(b).max()))


# (batch, side, in channels, out channels, kernel, stride, padding, chunk_kernel_grad)
CONVS = [
    (4, 9, 5, 6, 3, 1, 1, False),  # lax's, unchanged
    (4, 2, 6, 5, 3, 1, 1, False),  # output 2x2: patches x kernel
    (4, 4, 6, 5, 3, 2, 1, False),  # strided, output 2x2
    (4, 1, 6, 5, 3, 1, 1, False),  # output 1x1
    (4, 7, 6, 5, 1, 2, 0, False),  # 1x1 stride-2 shortcut: strided slice x kernel
    (4, 6, 6, 5, 1, 1, 0, False),  # 1x1 stride 1
    (8, 12, 5, 6, 3, 1, 1, True),  # kernel gradient in batch chunks
    (8, 16, 3, 6, 7, 2, 3, True),  # the stem's shape of kernel, chunked
    (8, 11, 4, 6, 3, 2, 1, True),  # strided with an odd side, chunked
]


@pytest.fixture
def small_chunks(monkeypatch):
  """A chunk budget so small that each example of these tiny batches is a chunk."""
  monkeypatch.setattr(xla_cpu, '_KERNEL_GRAD_CHUNK_BYTES', 1)


@pytest.mark.parametrize('n,side,cin,cout,k,stride,pad,chunked', CONVS)
def test_convolution_equals_lax(small_chunks, n, side, cin, cout, k, stride, pad, chunked):
  del small_chunks
  rng = np.random.default_rng(side * 100 + k)
  x = jnp.asarray(rng.normal(size=(n, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
  padding = ((pad, pad), (pad, pad))
  ours = functools.partial(xla_cpu.conv_general_dilated, window_strides=(stride, stride),
                           padding=padding, dimension_numbers=DN, chunk_kernel_grad=chunked)
  lax = functools.partial(jax.lax.conv_general_dilated, window_strides=(stride, stride),
                          padding=padding, dimension_numbers=DN)
  if chunked:
    out = (side + 2 * pad - k) // stride + 1
    assert xla_cpu._kernel_grad_chunks(x, w, out, out) > 1  # pylint: disable=protected-access
  _assert_close(_grads(ours, x, w), _grads(lax, x, w))


def test_chunked_kernel_grad_is_plain_lax_at_inference():
  """Without chunk_kernel_grad (inference), the jaxpr holds lax's convolution itself."""
  x, w = jnp.ones((64, 16, 16, 8)), jnp.ones((3, 3, 8, 8))
  for chunked, primitive in ((False, 'conv_general_dilated'), (True, 'custom_vjp_call')):
    jaxpr = jax.make_jaxpr(functools.partial(
        xla_cpu.conv_general_dilated, window_strides=(1, 1), padding=((1, 1), (1, 1)),
        dimension_numbers=DN, chunk_kernel_grad=chunked))(x, w)
    assert [e.primitive.name for e in jaxpr.eqns] == [primitive]


def test_kernel_grad_chunks():
  # ResNet-18 at 64 px, batch 64: stage 1 (16x16 px, 3x3x64) in 16 chunks of 4, the
  # 7x7 stem (32x32 px out) in 16, stage 3 (4x4 px, 3x3x256) in 4; a batch of 1 in 1.
  chunks = xla_cpu._kernel_grad_chunks  # pylint: disable=protected-access
  assert chunks(jnp.zeros((64, 16, 16, 64)), jnp.zeros((3, 3, 64, 64)), 16, 16) == 16
  assert chunks(jnp.zeros((64, 64, 64, 3)), jnp.zeros((7, 7, 3, 64)), 32, 32) == 16
  assert chunks(jnp.zeros((64, 4, 4, 256)), jnp.zeros((3, 3, 256, 256)), 4, 4) == 4
  assert chunks(jnp.zeros((1, 16, 16, 64)), jnp.zeros((3, 3, 64, 64)), 16, 16) == 1
  assert chunks(jnp.zeros((7, 16, 16, 64)), jnp.zeros((3, 3, 64, 64)), 16, 16) == 7


@pytest.mark.parametrize('shape,window,strides,padding', [
    ((2, 9, 8, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # the stem's pool, odd side
    ((2, 8, 8, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((1, 6, 5, 4), (2, 3), (1, 2), ((0, 1), (2, 0))),
    ((3, 8, 7, 2), (3, 3), (2, 2), ((0, 0), (0, 0))),
])
def test_max_pool_equals_flax(shape, window, strides, padding):
  """Same values, and the same gradient even with ties: all of it to the first maximum of
  each window, as lax's select-and-scatter sends it."""
  rng = np.random.default_rng(0)
  # After a relu and rounding: many windows hold their maximum twice (or are all zero).
  x = jnp.asarray(np.maximum(rng.normal(size=shape), 0.0).round(1), jnp.float32)
  ours = lambda x: xla_cpu.max_pool(x, window, strides, padding)
  flax_pool = lambda x: nn.max_pool(x, window, strides=strides, padding=padding)
  got, expected = _grads(ours, x), _grads(flax_pool, x)
  np.testing.assert_array_equal(got[0], expected[0])
  np.testing.assert_allclose(got[1][0], expected[1][0], rtol=0, atol=1e-6)


class _SmallResNet(nn.Module):
  """resnet's layers in a small trunk that meets every rewrite: a chunked 7x7 stem,
  BatchNorm, the max pool, chunked 3x3 convolutions, a strided block with its 1x1
  shortcut, and a block whose outputs are 2x2 px."""

  @nn.compact
  def __call__(self, x, train):
    x = resnet._conv(8, 7, 2, 3, jnp.float32, 'stem', train)(x)  # pylint: disable=protected-access
    x = nn.relu(resnet._batch_norm(train, jnp.float32, 'bn')(x))  # pylint: disable=protected-access
    x = xla_cpu.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    x = resnet.BasicBlock(8)(x, train)
    x = resnet.BasicBlock(16, 2)(x, train)
    x = resnet.BasicBlock(16, 2)(x, train)
    return jnp.mean(x, axis=(1, 2))


def test_train_step_gradients_equal_plain_ops(small_chunks, monkeypatch):
  """Outputs, batch statistics and parameter gradients in training equal those of the
  same layers built from lax's convolution and flax's max pool and BatchNorm."""
  del small_chunks  # so that the kernel gradients come in chunks
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 32, 32, 3)), jnp.float32)
  model = _SmallResNet()
  # 'rbg' keys: XLA:CPU compiles their random bits much faster than threefry's.
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0, impl='rbg'), x)

  def loss(params, batch_stats):
    y, updates = model.apply({'params': params, 'batch_stats': batch_stats}, x, train=True,
                             mutable=['batch_stats'])
    return jnp.sum(jnp.sin(y)), (y, updates['batch_stats'])

  step = lambda: jax.jit(jax.grad(loss, has_aux=True))(variables['params'],
                                                       variables['batch_stats'])
  got = step()
  monkeypatch.setattr(xla_cpu, '_on_cpu', lambda: False)  # every rewrite off
  monkeypatch.setattr(resnet, '_batch_norm', lambda train, dtype, name: nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name))
  expected = step()
  _assert_close(got, expected, rtol=2e-4)
