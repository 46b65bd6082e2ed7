"""ImageNet ResNet-18 weights from torchvision checkpoints, and which encoder parts train.

torchvision's `resnet18` state dict (.pth / .pt through PyTorch, or .safetensors with
no PyTorch) is converted to the Flax layout of `resnet.ResNet18`: conv OIHW -> HWIO,
linear (out, in) -> (in, out), BatchNorm weight/bias/running_mean/running_var ->
params scale/bias and batch_stats mean/var.
"""

import functools
import os
import re
from typing import Mapping

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from hpe_jax.models import resnet

STAGES = ('stem', 'stage1', 'stage2', 'stage3', 'stage4', 'heads')

_TORCH_MODULES = {'conv_init': 'conv1', 'bn_init': 'bn1',
                  'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}
_TORCH_LEAVES = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias',
                 'mean': 'running_mean', 'var': 'running_var'}
_BLOCK = re.compile(r'stage(\d)_block(\d)')
_SHOWN = 5  # keys named in an error message


def _torch_key(path):
  """Flax path in ResNet18, e.g. ('stage2_block0', 'downsample_bn', 'var') ->
  torchvision key 'layer2.0.downsample.1.running_var'."""
  modules = []
  for name in path[:-1]:
    block = _BLOCK.fullmatch(name)
    modules.append(f'layer{block[1]}.{block[2]}' if block else _TORCH_MODULES.get(name, name))
  return '.'.join(modules + [_TORCH_LEAVES[path[-1]]])


def _torch_shape(flax_shape):
  """Shape of a Flax variable in torch's layout (HWIO -> OIHW, (in, out) -> (out, in))."""
  if len(flax_shape) == 4:
    return tuple(flax_shape[i] for i in (3, 2, 0, 1))
  return tuple(reversed(flax_shape))


def _to_flax(value):
  """torch layout -> Flax layout (inverse of `_torch_shape`); vectors are unchanged."""
  if value.ndim == 4:
    return value.transpose(2, 3, 1, 0)
  return value.T


@functools.cache
def _resnet18_variables():
  """torchvision key -> (collection, Flax path, torch shape) of every ResNet18 variable."""
  shapes = jax.eval_shape(functools.partial(resnet.ResNet18().init, train=False),
                          jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  table = {}
  for collection, tree in shapes.items():
    for path, leaf in traverse_util.flatten_dict(tree).items():
      table[_torch_key(path)] = (collection, path, _torch_shape(leaf.shape))
  return table


class WeightsError(ValueError):
  """A weights file that cannot be read (damaged, foreign, or holding code): one line."""


def _read(reader, path):
  """reader(path), with any failure of the file's format as one WeightsError line."""
  try:
    return reader(path)
  except Exception as e:  # pylint: disable=broad-except  # the readers raise many kinds
    reason = ' '.join(str(e).split())[:160] or type(e).__name__
    raise WeightsError(f'{path} cannot be read as a state dict ({type(e).__name__}: '
                       f'{reason})') from None


def _read_state_dict(path):
  """{key: float32 numpy array} from a .pth / .pt / .safetensors file."""
  suffix = os.path.splitext(path)[1]
  if suffix == '.safetensors':
    state = _read(safetensors.numpy.load_file, path)
  elif suffix in ('.pth', '.pt'):
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise WeightsError(f'Reading {path} needs PyTorch: `pip install torch`, or convert the '
                         'file to .safetensors, which loads without it') from None
    # weights_only: PyTorch's restricted unpickler, which refuses to run code from the file.
    state = _read(functools.partial(torch.load, map_location='cpu', weights_only=True), path)
    if isinstance(state, Mapping) and 'state_dict' in state:
      state = state['state_dict']
    if not isinstance(state, Mapping):
      raise WeightsError(f'{path} holds a {type(state).__name__}, not a state dict')
    state = {key: value.detach().float().numpy() for key, value in state.items()}
  else:
    raise WeightsError(f'{path}: unknown extension {suffix!r}; expected .pth, .pt or .safetensors')
  return {key.removeprefix('module.'): np.asarray(value, np.float32)
          for key, value in state.items() if not key.endswith('num_batches_tracked')}


def load_resnet18(path):
  """torchvision resnet18 state dict file -> {'params', 'batch_stats'} of `resnet.ResNet18`.

  A state dict wrapped under 'state_dict' or saved from DataParallel ('module.'
  prefixes) is accepted. When the file has fc.weight and fc.bias, the result also
  holds 'fc': {'kernel': (512, classes), 'bias': (classes,)}. Arrays are float32 numpy.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No ResNet-18 weights file at {path}')
  state = _read_state_dict(path)
  table = _resnet18_variables()
  fc_keys = {'fc.weight', 'fc.bias'} & set(state)
  missing = sorted(set(table) - set(state))
  extra = sorted(set(state) - set(table) - fc_keys)
  if missing or extra:
    raise WeightsError(f'{path} is not a torchvision ResNet-18 state dict: '
                     f'missing keys ({len(missing)}) {missing[:_SHOWN]}, '
                     f'unexpected keys ({len(extra)}) {extra[:_SHOWN]}')
  loaded = {'params': {}, 'batch_stats': {}}
  for key, (collection, flax_path, shape) in table.items():
    if state[key].shape != shape:
      raise WeightsError(f'{path}: {key} has shape {state[key].shape}, ResNet-18 has {shape}')
    loaded[collection][flax_path] = _to_flax(state[key])
  loaded = {collection: traverse_util.unflatten_dict(flat) for collection, flat in loaded.items()}
  if fc_keys:
    weight, bias = state.get('fc.weight'), state.get('fc.bias')
    features = resnet.STAGE_WIDTHS[-1]
    if (weight is None or bias is None or weight.shape[1:] != (features,)
        or bias.shape != weight.shape[:1]):
      got = [getattr(array, 'shape', 'missing') for array in (weight, bias)]
      raise WeightsError(f'{path}: fc.weight and fc.bias must be (classes, {features}) and '
                       f'(classes,); got {got[0]} and {got[1]}')
    loaded['fc'] = {'kernel': _to_flax(weight), 'bias': bias}
  return loaded


def apply_pretrained(encoder_variables, loaded):
  """Variables of an ImageEncoder (or anything with a ResNet18 named 'backbone') with the
  backbone's params and batch_stats replaced by `loaded` (from `load_resnet18`), cast to
  the existing dtypes; the heads are untouched."""
  new = dict(encoder_variables)
  for collection in ('params', 'batch_stats'):
    current = traverse_util.flatten_dict(encoder_variables[collection]['backbone'])
    source = traverse_util.flatten_dict(loaded[collection])
    if set(current) != set(source):
      raise ValueError(f'Loaded {collection} do not match the backbone: '
                       f'{sorted("/".join(p) for p in set(current) ^ set(source))[:_SHOWN]}')
    for key, value in source.items():
      if value.shape != current[key].shape:
        raise ValueError(f'backbone/{"/".join(key)} is {current[key].shape}, '
                         f'loaded {collection} has {value.shape}')
    backbone = traverse_util.unflatten_dict(
        {key: jnp.asarray(value, current[key].dtype) for key, value in source.items()})
    new[collection] = {**encoder_variables[collection], 'backbone': backbone}
  return new


def _stage(path):
  """Stage name (see STAGES) of an ImageEncoder parameter path."""
  if path[0] in ('mean', 'logvar'):
    return 'heads'
  if path[0] == 'backbone':
    if path[1] in ('conv_init', 'bn_init'):
      return 'stem'
    block = _BLOCK.fullmatch(path[1])
    if block:
      return f'stage{block[1]}'
  raise ValueError(f'Not an ImageEncoder parameter: {"/".join(path)}')


def freeze_labels(encoder_params, trainable_stages):
  """Pytree like an ImageEncoder's params with 'trainable' or 'frozen' leaves, for
  `optax.multi_transform`.

  trainable_stages: 'all', one stage name or a sequence of them, out of STAGES
  ('stem' = conv_init + bn_init, 'stage1'..'stage4', 'heads' = mean + logvar).
  """
  if trainable_stages == 'all':
    trainable = set(STAGES)
  else:
    trainable = {trainable_stages} if isinstance(trainable_stages, str) else set(trainable_stages)
    unknown = trainable - set(STAGES)
    if unknown:
      raise ValueError(f'Unknown stages {sorted(unknown)}; valid: {list(STAGES)} or "all"')
  return jax.tree_util.tree_map_with_path(
      lambda path, _: 'trainable' if _stage([k.key for k in path]) in trainable else 'frozen',
      encoder_params)
