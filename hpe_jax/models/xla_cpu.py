"""Rewrites of convolutions and max pooling for XLA:CPU, where they run faster than lax's.

Each applies only when arrays compute on XLA:CPU, for NHWC inputs and HWIO kernels; on
GPUs and TPUs (cuDNN, the TPU compiler) and for other layouts, dilated or grouped
convolutions, the plain lax / flax ops run. Each has the plain op's values and
gradients up to float rounding (tests/test_xla_cpu.py). What each gained is in
docs/measurements.md.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


def _on_cpu():
  """Whether arrays compute on XLA:CPU, the only backend the rewrites below are for.

  They replace ops that XLA:CPU runs badly (see each one) with ops it runs well; on GPUs
  and TPUs cuDNN / the TPU compiler run the plain ops well, so those keep them.
  """
  return jax.default_backend() == 'cpu'


def _window_views(x, window, strides, padding, pad_value=0.0):
  """The strided views of NHWC `x` (padded with `pad_value`) under each window position,
  row-major: views[kh * window[1] + kw][n, i, j] = x_padded[n, i * sh + kh, j * sw + kw]."""
  n, h, w, c = x.shape
  (pt, pb), (pl, pr) = padding
  out_h = (h + pt + pb - window[0]) // strides[0] + 1
  out_w = (w + pl + pr - window[1]) // strides[1] + 1
  if pt or pb or pl or pr:
    x = jax.lax.pad(x, jnp.asarray(pad_value, x.dtype),
                    ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
  return [jax.lax.slice(x, (0, i, j, 0),
                        (n, i + strides[0] * (out_h - 1) + 1, j + strides[1] * (out_w - 1) + 1, c),
                        (1, strides[0], strides[1], 1))
          for i in range(window[0]) for j in range(window[1])]


def _patches(x, window, strides, padding):
  """im2col of NHWC `x`: (N, H', W', window rows * window columns * C), features ordered
  (kernel row, kernel column, channel) as an HWIO kernel reshaped to (-1, O).

  Built from strided slices and one concatenation, whose gradient is pads and adds.
  (`lax.conv_general_dilated_patches` computes patches as a grouped convolution with an
  identity kernel; its gradient is another grouped convolution, and XLA:CPU took 25-57 ms
  for each of them at stage 4 of a batch of 64 64 px crops.)
  """
  views = _window_views(x, window, strides, padding)
  return views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)


# Kernel gradients of XLA:CPU convolutions are computed over batch chunks whose im2col
# buffer (input channels x kernel taps x chunk's output pixels) takes at most this much
# memory; see `_conv_chunked_kernel_grad`.
_KERNEL_GRAD_CHUNK_BYTES = 3 * 2**20


def _lax_conv_nhwc(lhs, rhs, strides, padding, precision):
  return jax.lax.conv_general_dilated(lhs, rhs, strides, padding, precision=precision,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_chunked_kernel_grad(lhs, rhs, strides, padding, precision, chunks):
  """lax's NHWC/HWIO convolution, whose kernel gradient is summed over `chunks` equal
  slices of the batch.

  XLA:CPU (YNNPACK) computes a kernel gradient as one convolution whose window is the
  whole output and whose input channels are the batch, and it slows down steeply once
  that convolution's im2col buffer outgrows the core's 2 MiB L2 cache: for the 3x3
  64 -> 64 convolutions of stage 1 (batch 64, 16x16 px) 40-56 ms against 13-22 ms as a
  sum over 8 or 16 chunks, and 44-50 against 21-24 ms for the 7x7 stem in 16 chunks
  (2 shared CPU cores, JAX 0.10.2; docs/conv_profile_notes.md). The forward pass and the
  input gradient are lax's (splitting them into chunks only slowed them).
  """
  del chunks
  return _lax_conv_nhwc(lhs, rhs, strides, padding, precision)


def _conv_chunked_fwd(lhs, rhs, strides, padding, precision, chunks):
  del chunks
  return _lax_conv_nhwc(lhs, rhs, strides, padding, precision), (lhs, rhs)


def _conv_chunked_bwd(strides, padding, precision, chunks, residuals, dy):
  lhs, rhs = residuals
  conv = lambda x, w: _lax_conv_nhwc(x, w, strides, padding, precision)
  dlhs, = jax.vjp(lambda x: conv(x, rhs), lhs)[1](dy)
  n = lhs.shape[0] // chunks
  drhs = None
  for i in range(chunks):
    part, = jax.vjp(lambda w, i=i: conv(lhs[i * n:(i + 1) * n], w), rhs)[1](
        dy[i * n:(i + 1) * n])
    drhs = part if drhs is None else drhs + part
  return dlhs, drhs


_conv_chunked_kernel_grad.defvjp(_conv_chunked_fwd, _conv_chunked_bwd)


def _kernel_grad_chunks(lhs, rhs, out_h, out_w):
  """The most chunks of the batch (dividing it) such that each chunk's kernel-gradient
  im2col buffer stays within _KERNEL_GRAD_CHUNK_BYTES; 1 where the whole batch does."""
  batch = lhs.shape[0]
  per_example = rhs.shape[0] * rhs.shape[1] * rhs.shape[2] * out_h * out_w * lhs.dtype.itemsize
  for size in range(batch, 0, -1):
    if batch % size == 0 and (size * per_example <= _KERNEL_GRAD_CHUNK_BYTES or size == 1):
      return batch // size
  return 1


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, *, chunk_kernel_grad=False):
  """`lax.conv_general_dilated`, computed differently on XLA:CPU where that is faster.

  For an NHWC input and HWIO kernel on XLA:CPU:
  - 1x1 kernels and outputs of at most 2x2 pixels are patches x kernel matrix
    products. XLA:CPU's convolution is pathologically slow at such sizes: a 3x3
    512 -> 512 conv of a 64 x 2 x 2 batch took 340 ms against 12 ms for this product
    (2 CPU cores, JAX 0.10.2), and stage 4 of a 64 px crop is exactly that; the 1x1
    stride-2 shortcut convolutions (and their gradients) take 1.3-2x as long as the
    product.
  - With `chunk_kernel_grad` (float32 only), the kernel gradient of the other
    convolutions is summed over slices of the batch (`_conv_chunked_kernel_grad`).
  Elsewhere, on other backends, and for dilated or grouped convolutions or other
  layouts, it is lax's convolution unchanged. Every variant has lax's values and
  gradients up to float rounding (tests/test_resnet_speedups.py).
  """
  lax_conv = lambda: jax.lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count, precision=precision)
  if (not _on_cpu() or isinstance(padding, str) or lhs.ndim != 4 or feature_group_count != 1
      or any(d != 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
      or jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) !=
      jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC'))):
    return lax_conv()
  kh, kw = rhs.shape[:2]
  padding = tuple(tuple(p) for p in padding)
  window_strides = tuple(window_strides)
  out_h = (lhs.shape[1] + sum(padding[0]) - kh) // window_strides[0] + 1
  out_w = (lhs.shape[2] + sum(padding[1]) - kw) // window_strides[1] + 1
  if (kh, kw) == (1, 1) or out_h * out_w <= 4:
    patches = _patches(lhs, (kh, kw), window_strides, padding)
    return jnp.dot(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision)
  chunks = _kernel_grad_chunks(lhs, rhs, out_h, out_w)
  if (chunk_kernel_grad and chunks > 1 and lhs.dtype == jnp.float32
      and rhs.dtype == jnp.float32):
    return _conv_chunked_kernel_grad(lhs, rhs, window_strides, padding, precision, chunks)
  return lax_conv()


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _max_pool_first_max(x, window, strides, padding, size):
  del size  # x's (H, W), for the gradient
  return functools.reduce(jnp.maximum, _window_views(x, window, strides, padding, -jnp.inf))


def _max_pool_fwd(x, window, strides, padding, size):
  del size
  views = _window_views(x, window, strides, padding, -jnp.inf)
  y = functools.reduce(jnp.maximum, views)
  # The first window position (row-major) holding the maximum: where select_and_scatter,
  # lax's gradient of the pool, sends the gradient.
  first = jnp.full(y.shape, len(views) - 1, jnp.int8)
  for k in reversed(range(len(views) - 1)):
    first = jnp.where(views[k] == y, jnp.int8(k), first)
  return y, first


def _max_pool_bwd(window, strides, padding, size, first, dy):
  h, w = size
  # Left to itself, XLA fuses the computation of `first` (9 comparisons) into the sum
  # below once per window position, 81 comparisons an element: 8x slower than this pass.
  first = jax.lax.optimization_barrier(first)
  (pt, pb), (pl, pr) = padding
  out_h, out_w = dy.shape[1:3]
  dx = None
  for k in range(window[0] * window[1]):
    i, j = divmod(k, window[1])
    # Window position k of output (u, v) is input (u * sh + i, v * sw + j) of the padded x.
    part = jax.lax.pad(jnp.where(first == k, dy, jnp.zeros_like(dy)), jnp.zeros((), dy.dtype),
                       ((0, 0, 0),
                        (i - pt, h + pt - i - strides[0] * (out_h - 1) - 1, strides[0] - 1),
                        (j - pl, w + pl - j - strides[1] * (out_w - 1) - 1, strides[1] - 1),
                        (0, 0, 0)))
    dx = part if dx is None else dx + part
  return (dx,)


_max_pool_first_max.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x, window, strides, padding):
  """`nn.max_pool` of NHWC `x` (`padding` as ((top, bottom), (left, right))), with the same
  values and the same gradient: all of it to the first maximum of each window.

  On XLA:CPU, the gradient of `nn.max_pool` (lax's select-and-scatter, after a variadic
  reduce-window that tracks the argmax of every window in four int32 index arrays of the
  padded input) took about a tenth of the ResNet-18 train step of 64 px crops (250 of
  2,560 ms of thread time, batch 64, 2 CPU cores). Here the forward pass also records
  which window position held the maximum (int8), and the gradient is a sum of strided
  pads of the output gradient, one fused loop: for a 64 x 32 x 32 x 64 batch, 6 ms
  forward and 3.6 ms gradient, against 137 ms for both of nn.max_pool (2 shared CPU
  cores). Other backends keep nn.max_pool.
  """
  padding = tuple(tuple(p) for p in padding)
  if not _on_cpu() or window[0] * window[1] > 127:  # window positions are int8 here
    return nn.max_pool(x, window, strides=strides, padding=padding)
  return _max_pool_first_max(x, tuple(window), tuple(strides), padding, x.shape[1:3])
