"""ResNet-18 image encoder, image decoder, and torchvision weight conversion."""

import functools
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from hpe_jax.models import image_decoder
from hpe_jax.models import pretrained
from hpe_jax.models import resnet
from hpe_jax.models import xla_cpu

KEY = jax.random.PRNGKey(0)
# For initialising under jit: XLA compiles 'rbg' random bits much faster than threefry on CPU.
INIT_KEY = jax.random.key(0, impl='rbg')


def _torch_resnet18(torch):
  """torchvision's resnet18 (benchmarks/torch_resnet.py: the same state-dict keys) with
  random BatchNorm statistics, in eval mode."""
  from benchmarks import torch_resnet  # pylint: disable=g-import-not-at-top  # needs torch
  nn = torch.nn
  torch.manual_seed(0)
  model = torch_resnet.ResNet18()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0.0, 0.2)
        module.running_mean.normal_(0.0, 0.2)
        module.running_var.uniform_(0.5, 2.0)
  return model.eval()


@pytest.fixture(scope='module')
def torch_reference(tmp_path_factory):
  """(torch model, its .pth file, the same weights as .safetensors, an NCHW input, logits)."""
  torch = pytest.importorskip('torch')
  model = _torch_resnet18(torch)
  folder = tmp_path_factory.mktemp('weights')
  pth, safe = folder / 'resnet18.pth', folder / 'resnet18.safetensors'
  torch.save(model.state_dict(), pth)
  safetensors.numpy.save_file({k: v.numpy() for k, v in model.state_dict().items()}, str(safe))
  x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
  with torch.no_grad():
    logits = model(x).numpy()
  return model, pth, safe, x.numpy(), logits


@pytest.mark.parametrize('fmt', ['pth', 'safetensors'])
def test_torchvision_weights_give_torch_logits(torch_reference, fmt):
  _, pth, safe, x, expected = torch_reference
  loaded = pretrained.load_resnet18(pth if fmt == 'pth' else safe)
  assert loaded['fc']['kernel'].shape == (512, 1000)
  variables = {'params': {'backbone': loaded['params'], 'fc': loaded['fc']},
               'batch_stats': {'backbone': loaded['batch_stats']}}
  with jax.default_matmul_precision('float32'):
    logits = jax.jit(functools.partial(resnet.ResNet18Classifier().apply, train=False))(
        variables, x.transpose(0, 2, 3, 1))
  assert np.std(expected) > 0.1  # a meaningful comparison, not near-zero logits
  np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_wrapped_state_dict_with_module_prefix(torch_reference, tmp_path):
  torch = pytest.importorskip('torch')
  model, pth, *_ = torch_reference
  wrapped = tmp_path / 'wrapped.pt'
  torch.save({'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, wrapped)
  a, b = pretrained.load_resnet18(wrapped), pretrained.load_resnet18(pth)
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _save(tmp_path, state):
  path = tmp_path / 'weights.safetensors'
  safetensors.numpy.save_file(state, str(path))
  return path


@functools.cache
def _random_state_dict():
  """A complete torchvision-layout ResNet-18 state dict of random numpy arrays."""
  rng = np.random.default_rng(0)
  state = {key: rng.normal(size=shape).astype(np.float32)
           for key, (_, _, shape) in pretrained._resnet18_variables().items()}
  state['fc.weight'] = rng.normal(size=(10, 512)).astype(np.float32)
  state['fc.bias'] = np.zeros(10, np.float32)
  return state


def test_loader_layouts(tmp_path):
  state = _random_state_dict()
  loaded = pretrained.load_resnet18(_save(tmp_path, state))
  np.testing.assert_array_equal(loaded['params']['conv_init']['kernel'],
                                state['conv1.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(loaded['params']['stage3_block0']['downsample_bn']['scale'],
                                state['layer3.0.downsample.1.weight'])
  np.testing.assert_array_equal(loaded['batch_stats']['stage4_block1']['bn2']['var'],
                                state['layer4.1.bn2.running_var'])
  np.testing.assert_array_equal(loaded['fc']['kernel'], state['fc.weight'].T)
  headless = {k: v for k, v in state.items() if not k.startswith('fc.')}
  assert 'fc' not in pretrained.load_resnet18(_save(tmp_path, headless))


def test_loader_errors(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match='nowhere.pth'):
    pretrained.load_resnet18(tmp_path / 'nowhere.pth')
  npz = tmp_path / 'weights.npz'
  npz.write_bytes(b'')
  with pytest.raises(ValueError, match=r'weights\.npz.*unknown extension'):
    pretrained.load_resnet18(npz)
  state = dict(_random_state_dict())
  del state['layer2.0.downsample.0.weight']
  state['layer5.0.conv1.weight'] = np.zeros(3, np.float32)
  with pytest.raises(ValueError, match=r"weights\.safetensors is not a torchvision ResNet-18 state "
                     r"dict: missing keys \(1\) \['layer2\.0\.downsample\.0\.weight'\], "
                     r"unexpected keys \(1\) \['layer5"):
    pretrained.load_resnet18(_save(tmp_path, state))
  state = dict(_random_state_dict())
  state['layer1.1.conv2.weight'] = np.zeros((64, 64, 1, 1), np.float32)
  with pytest.raises(ValueError, match=r'weights\.safetensors: layer1\.1\.conv2\.weight has shape '
                                       r'\(64, 64, 1, 1\), ResNet-18 has \(64, 64, 3, 3\)'):
    pretrained.load_resnet18(_save(tmp_path, state))
  pth = tmp_path / 'weights.pth'
  pth.write_bytes(b'')
  monkeypatch.setitem(sys.modules, 'torch', None)  # as if PyTorch were not installed
  with pytest.raises(pretrained.WeightsError,
                     match=r'weights\.pth needs PyTorch: `pip install torch`'):
    pretrained.load_resnet18(pth)


@functools.cache
def _encoder_variables():
  init = functools.partial(resnet.ImageEncoder(latent_dim=8).init, train=False)
  return jax.jit(init)(INIT_KEY, jnp.zeros((1, 32, 32, 3)))


def test_apply_pretrained_changes_only_the_backbone(tmp_path):
  variables = _encoder_variables()
  loaded = pretrained.load_resnet18(_save(tmp_path, _random_state_dict()))
  new = pretrained.apply_pretrained(variables, loaded)
  assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(variables)
  for name in ('mean', 'logvar'):
    assert new['params'][name] is variables['params'][name]
  for collection in ('params', 'batch_stats'):
    jax.tree_util.tree_map(np.testing.assert_array_equal, new[collection]['backbone'],
                           loaded[collection])
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(new))
  bad = jax.tree_util.tree_map(lambda a: a, loaded)
  bad['params']['stage2_block1']['conv1']['kernel'] = np.zeros((3, 3, 128, 64), np.float32)
  with pytest.raises(ValueError,
                     match=r'backbone/stage2_block1/conv1/kernel is \(3, 3, 128, 128\), loaded'):
    pretrained.apply_pretrained(variables, bad)


def _labels_by_path(labels):
  return {'/'.join(k.key for k in path): label
          for path, label in jax.tree_util.tree_leaves_with_path(labels)}


def test_freeze_labels():
  params = _encoder_variables()['params']
  labels = pretrained.freeze_labels(params, ['stage4', 'heads'])
  assert jax.tree_util.tree_structure(labels) == jax.tree_util.tree_structure(params)
  flat = _labels_by_path(labels)
  assert len(flat) == 20 + 2 * 20 + 2 * 2  # trunk: 20 convs, 20 BatchNorms; 2 Dense heads
  trainable = {p for p, label in flat.items() if label == 'trainable'}
  assert trainable == {p for p in flat if p.startswith(('backbone/stage4_', 'mean/', 'logvar/'))}
  assert 'backbone/stage4_block0/downsample_bn/scale' in trainable
  assert set(flat.values()) == {'trainable', 'frozen'}
  stem = _labels_by_path(pretrained.freeze_labels(params, 'stem'))
  assert {p for p, label in stem.items() if label == 'trainable'} == {
      'backbone/conv_init/kernel', 'backbone/bn_init/scale', 'backbone/bn_init/bias'}
  assert set(jax.tree_util.tree_leaves(pretrained.freeze_labels(params, 'all'))) == {'trainable'}
  with pytest.raises(ValueError, match=r"Unknown stages \['stage5'\]; valid: \['stem', 'stage1'"):
    pretrained.freeze_labels(params, ['stage1', 'stage5'])


def test_encoder_shapes_and_dtypes():
  image = jax.random.normal(KEY, (2, 64, 64, 3))
  encoder = resnet.ImageEncoder(latent_dim=8, dtype=jnp.bfloat16)
  shapes = jax.eval_shape(functools.partial(encoder.init, train=False), KEY, image)
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(shapes)} == {jnp.dtype(jnp.float32)}
  variables = _encoder_variables()  # the same variables as the bf16 encoder's
  assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(shapes)
  apply = functools.partial(encoder.apply, train=True, mutable=['batch_stats'])
  (mean, logvar), updates = jax.jit(apply)(variables, image)
  assert mean.shape == logvar.shape == (2, 8)
  assert mean.dtype == logvar.dtype == jnp.float32
  assert np.all(np.isfinite(mean)) and np.all(np.isfinite(logvar))
  assert updates['batch_stats']['backbone']['bn_init']['mean'].dtype == jnp.float32
  trunk = functools.partial(resnet.ResNet18(dtype=jnp.bfloat16).apply, train=False)
  features = jax.eval_shape(trunk, {k: v['backbone'] for k, v in variables.items()}, image)
  assert features.shape == (2, 512) and features.dtype == jnp.bfloat16  # bf16 compute
  out = jax.eval_shape(lambda v, x: resnet.ImageEncoder().apply(v, x, train=False),
                       jax.eval_shape(functools.partial(resnet.ImageEncoder().init, train=False),
                                      KEY, jnp.zeros((1, 256, 256, 3))),
                       jax.ShapeDtypeStruct((4, 256, 256, 3), jnp.float32))
  assert [(o.shape, o.dtype) for o in out] == [((4, 100), jnp.float32)] * 2


def _upsamplings(variables):
  return sorted(k for k in variables['params'] if k.startswith('Upsample2x') or k == 'out')


def test_decoder_shapes_and_dtypes():
  z = jax.random.normal(KEY, (2, 8))
  decoder = image_decoder.ImageDecoder(image_size=64, base_channels=16, dtype=jnp.bfloat16)
  variables = jax.jit(functools.partial(decoder.init, train=False))(INIT_KEY, z)
  assert _upsamplings(variables) == ['Upsample2x_0', 'Upsample2x_1', 'out']
  assert variables['params']['out']['kernel'].shape == (4, 4, 4, 3)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(variables))
  image, _ = jax.jit(functools.partial(decoder.apply, train=True, mutable=['batch_stats']))(
      variables, z)
  assert image.shape == (2, 64, 64, 3) and image.dtype == jnp.float32
  assert np.all(np.isfinite(image))

  thesis = image_decoder.ImageDecoder(activation='leaky_relu')
  shapes = jax.eval_shape(functools.partial(thesis.init, train=False), KEY, jnp.zeros((1, 100)))
  assert _upsamplings(shapes) == [f'Upsample2x_{i}' for i in range(4)] + ['out']
  assert [shapes['params'][k]['kernel'].shape[-1] for k in _upsamplings(shapes)] == [
      128, 64, 32, 16, 3]
  out = jax.eval_shape(lambda v, x: thesis.apply(v, x, train=False), shapes,
                       jax.ShapeDtypeStruct((4, 100), jnp.float32))
  assert (out.shape, out.dtype) == ((4, 256, 256, 3), jnp.float32)


@pytest.mark.parametrize('size', [8, 24, 100, 250.0])
def test_decoder_rejects_bad_sizes(size):
  decoder = image_decoder.ImageDecoder(image_size=size)
  with pytest.raises(ValueError, match=f'got {size}'):
    decoder.init(KEY, jnp.zeros((1, 4)), train=False)


def test_decoder_needs_enough_channels_to_halve():
  with pytest.raises(ValueError, match='base_channels=8 cannot be halved 4 times'):
    image_decoder.ImageDecoder(base_channels=8).init(KEY, jnp.zeros((1, 4)), train=False)


def test_image_normalisation_round_trip():
  pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
  normalised = resnet.normalize_image(pixels)
  assert normalised.dtype == jnp.float32
  np.testing.assert_allclose(normalised[..., 0], (pixels[..., 0] / 255 - 0.485) / 0.229,
                             atol=1e-6)
  np.testing.assert_array_equal(resnet.denormalize_image(normalised), pixels)
  assert resnet.denormalize_image(jnp.full((1, 3), 1e3)).tolist() == [[255, 255, 255]]


def test_upsample2x_is_the_transposed_convolution_it_replaces():
  """Same parameters -> same outputs and gradients as nn.ConvTranspose(k=4, s=2, padding=2)."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5, 6, 7)), jnp.float32)
  reference = nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding=2)
  variables = reference.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(
      lambda a: a + jax.random.normal(jax.random.PRNGKey(2), a.shape), variables)
  ours = image_decoder.Upsample2x(4)
  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), atol=1e-5)
  assert ours.apply(variables, x).shape == (3, 10, 12, 4)
  loss = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
  for a, b in zip(jax.tree.leaves(jax.grad(loss(ours), argnums=(0, 1))(variables, x)),
                  jax.tree.leaves(jax.grad(loss(reference), argnums=(0, 1))(variables, x))):
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_small_output_convolution_equals_lax():
  """The patches x kernel path (outputs <= 2x2 px) equals lax's convolution, strided or not."""
  rng = np.random.default_rng(0)
  dn = jax.lax.conv_dimension_numbers((1, 4, 4, 8), (3, 3, 8, 5), ('NHWC', 'HWIO', 'NHWC'))
  for size, strides, padding in ((2, (1, 1), ((1, 1), (1, 1))), (4, (2, 2), ((1, 1), (1, 1))),
                                 (1, (1, 1), ((1, 1), (1, 1))), (4, (2, 2), ((0, 0), (0, 0)))):
    x = jnp.asarray(rng.normal(size=(2, size, size, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 8, 5) if padding[0][0] else (1, 1, 8, 5)),
                    jnp.float32)
    expected = jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
    got = xla_cpu.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
    assert got.shape == expected.shape and got.shape[1] * got.shape[2] <= 4
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
