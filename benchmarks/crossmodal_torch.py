"""The rgb->3d train step of the cross-modal VAE in PyTorch (CPU), as a speed reference,
and a side-by-side comparison with the JAX step in one process.

The same model and step as hpe_jax's rgb->3d pair, sized from the same config: a
torchvision-layout ResNet-18 trunk (written here: torchvision is not a dependency),
global average pool, two Linear heads (mean, log-variance) of `model.latent_dim`,
log-variance clipped to +-`model.logvar_clip`, the reparameterised latent, the 3D pose
decoder of hpe_jax.models.pose_mlp (Linear - BatchNorm - ReLU - Dropout, residual
blocks of two, a Linear to 16 x 3), the loss MSE + beta * KL / 48 of hpe_jax.losses,
and Adam after clipping the gradients' global norm, as hpe_jax.optim. The image
encoder and pose decoder have exactly the parameters of the JAX model's (--compare
checks the counts before timing). Random uint8 crops (normalised with the ImageNet statistics inside the step,
as the JAX step does) and random poses.

Not a dependency of the project: `pip install torch==2.13.0` first.

  python -m benchmarks.crossmodal_torch --image_size=64 --batch_sizes=64 --seconds=20
  python -m benchmarks.crossmodal_torch --image_size=64 --batch_sizes=64 --compare \\
      --rounds=5 --window_s=5 --max_other_cpu=0.25 [--also_resnet_from=/tmp/resnet_head.py]

Without --compare it prints one JSON line per batch size with the torch step's
images/s. With --compare it alternates timing windows of the JAX step (the step
benchmarks/crossmodal.py times: train.make_group_steps' rgb->3d step, jitted with the
state donated) and of the torch step, JAX, torch, JAX, torch, ..., and prints each
window and then the medians and their ratio, so both see the same load on the machine.
On a shared machine add --max_other_cpu (e.g. 0.25): only rounds in which the rest of the
machine stayed that idle count (PyTorch's OpenMP threads slowed down ~10x when another
process took a core, the JAX step about 2x, so busy rounds flatter JAX).
--also_resnet_from adds a third contender: the JAX step with the image encoder of
another hpe_jax/models/resnet.py (e.g. `git show HEAD:hpe_jax/models/resnet.py`), for
before/after comparisons in the same run.

Flags --config, --image_size, --batch_sizes, --seconds and --dtype are those of
benchmarks/crossmodal.py.
"""

import importlib.util
import json
import math
import os
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np
import torch
from torch import nn

from benchmarks import crossmodal  # the JAX benchmark's flags and helpers
from benchmarks import torch_resnet
from hpe_jax import modalities
from hpe_jax import parallel
from hpe_jax.models import factory

_COMPARE = flags.DEFINE_bool('compare', False,
                             'Alternate timing windows of the JAX and the torch step.')
_ROUNDS = flags.DEFINE_integer('rounds', 7, 'With --compare: windows of each contender.')
_WINDOW_S = flags.DEFINE_float('window_s', 8.0, 'With --compare: seconds per window.')
_THREADS = flags.DEFINE_integer('threads', None, 'torch threads (default: the core count).')
_CHANNELS_LAST = flags.DEFINE_bool('channels_last', False,
                                   'torch: channels-last (NHWC) memory format.')
_MAX_OTHER_CPU = flags.DEFINE_float(
    'max_other_cpu', None,
    'With --compare: a round counts only if, in each of its windows, other processes used at '
    'most this many cores on average (Linux /proc); rounds run until --rounds such rounds '
    'or --max_rounds in all. Default: every round counts.')
_MAX_ROUNDS = flags.DEFINE_integer('max_rounds', 30, 'With --max_other_cpu: most rounds run.')
_ALSO_RESNET_FROM = flags.DEFINE_string(
    'also_resnet_from', None,
    'With --compare: also time the JAX step with the ResNet of this resnet.py file.')

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _dense_layer(d_in, d_out, dropout):
  # No Linear bias: BatchNorm's offset makes it redundant (hpe_jax's DenseLayer drops it too).
  return [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(),
          nn.Dropout(dropout)]


class ResidualBlock(nn.Module):

  def __init__(self, hidden, dropout):
    super().__init__()
    self.body = nn.Sequential(*_dense_layer(hidden, hidden, dropout),
                              *_dense_layer(hidden, hidden, dropout))

  def forward(self, x):
    return x + self.body(x)


class ImageTo3dVAE(nn.Module):
  """uint8 image (N, H, W, 3) -> (3D pose (N, 16, 3), mean, logvar), as hpe_jax's
  ImageEncoder + PoseDecoder in the CrossModalVAE."""

  def __init__(self, latent_dim, hidden, num_blocks, dropout, logvar_clip, channels_last):
    super().__init__()
    self.backbone = torch_resnet.ResNet18Trunk()
    self.mean = nn.Linear(512, latent_dim)
    self.logvar = nn.Linear(512, latent_dim)
    num_joints, joint_dim = modalities.POSE_SHAPES[modalities.POSE_3D]
    self.decoder = nn.Sequential(
        *_dense_layer(latent_dim, hidden, dropout),
        *[ResidualBlock(hidden, dropout) for _ in range(num_blocks)],
        nn.Linear(hidden, num_joints * joint_dim))
    self.logvar_clip = logvar_clip
    self.channels_last = channels_last
    self.register_buffer('pixel_mean', 255.0 * torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
    self.register_buffer('pixel_std', 255.0 * torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

  def forward(self, image):
    x = image.permute(0, 3, 1, 2).float()  # NHWC uint8 -> NCHW f32 (a view, then a copy)
    x = (x - self.pixel_mean) / self.pixel_std
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    h = self.backbone(x)
    mean = self.mean(h)
    logvar = self.logvar(h).clamp(-self.logvar_clip, self.logvar_clip)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    return self.decoder(z).view(image.shape[0], -1, 3), mean, logvar


def _pair(config):
  return next(p for p in modalities.pairs(config)
              if (p.source, p.target) == (modalities.IMAGE, modalities.POSE_3D))


def make_torch_step(config, batch_size, seed=0):
  """(step function, model) of the torch rgb->3d step on a fixed random batch."""
  m, opt_config = config.model, config.optimizer
  if opt_config.name != 'adam':
    raise app.UsageError(f'Only the adam optimiser is mirrored in torch, not {opt_config.name}.')
  torch.manual_seed(seed)
  model = ImageTo3dVAE(m.latent_dim, m.hidden, m.num_blocks, m.dropout, m.logvar_clip,
                       _CHANNELS_LAST.value)
  if _CHANNELS_LAST.value:
    model = model.to(memory_format=torch.channels_last)
  model.train()
  opt = torch.optim.Adam(model.parameters(), lr=opt_config.learning_rate)
  rng = np.random.default_rng(seed)
  s = config.image_size
  image = torch.from_numpy(rng.integers(0, 256, (batch_size, s, s, 3), dtype=np.uint8))
  pose = torch.from_numpy(rng.standard_normal((batch_size, 16, 3), dtype=np.float32))
  pair = _pair(config)
  beta = 0.0 if config.deterministic else pair.beta  # the constant beta schedule
  num_elements = pose[0].numel()

  def step():
    recon, mean, logvar = model(image)
    kl = 0.5 * torch.sum(logvar.exp() + mean**2 - 1.0 - logvar, dim=1).mean() / num_elements
    loss = pair.weight * (nn.functional.mse_loss(recon, pose) + beta * kl)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if opt_config.grad_clip_norm:
      nn.utils.clip_grad_norm_(model.parameters(), opt_config.grad_clip_norm)
    opt.step()
    return loss

  return step, model


def _jax_param_counts(params):
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  image = params[f'encoders_{modalities.IMAGE}']
  return {'backbone': count(image['backbone']),
          'heads': count({k: v for k, v in image.items() if k != 'backbone'}),
          'decoder': count(params[f'decoders_{modalities.POSE_3D}']),
          'all_of_state': count(params)}


def _torch_param_counts(model):
  count = lambda module: sum(p.numel() for p in module.parameters())
  return {'backbone': count(model.backbone),
          'heads': count(model.mean) + count(model.logvar),
          'decoder': count(model.decoder)}


def _load_resnet(path):
  spec = importlib.util.spec_from_file_location('resnet_alternative', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def make_jax_step(config, batch_size, resnet_module=None):
  """(step, state, batch, gflops per step) of the rgb->3d step as benchmarks/crossmodal.py
  builds it; `resnet_module` replaces hpe_jax.models.resnet in the model."""
  config = crossmodal._with_schedule(config, 'round_robin')  # pylint: disable=protected-access
  saved = factory.resnet
  if resnet_module is not None:
    factory.resnet = resnet_module
  try:
    model = factory.create_model(config)
  finally:
    factory.resnet = saved
  step, state, batch = crossmodal.jitted_group_step(config, model, [_pair(config)], batch_size,
                                                    parallel.make_data_mesh())
  compiled = step.lower(state, batch).compile()
  flops = crossmodal._flops_per_step(compiled)  # pylint: disable=protected-access
  return step, state, batch, (flops / 1e9 if flops else None)


def _other_cpu_seconds():
  """CPU seconds the whole machine has been busy (Linux /proc/stat: all but idle and
  iowait), less this process's own user and system time; None without /proc/stat."""
  try:
    with open('/proc/stat') as f:
      fields = [int(v) for v in f.readline().split()[1:]]
  except (OSError, ValueError):
    return None
  busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
  own = os.times()
  return busy / os.sysconf('SC_CLK_TCK') - own.user - own.system


def _wait_until_quiet(max_other, timeout_s=900.0):
  """Waits (at most timeout_s) for a second in which other processes use <= max_other cores."""
  deadline = time.time() + timeout_s
  while time.time() < deadline:
    before = _other_cpu_seconds()
    if before is None:
      return
    time.sleep(1.0)
    if _other_cpu_seconds() - before <= max_other:
      return


class _JaxContender:
  """Times windows of the jitted JAX step; the donated state is carried between windows."""

  def __init__(self, name, step, state, batch):
    self.name, self.step, self.state, self.batch = name, step, state, batch

  def run(self, num_steps):
    start = time.perf_counter()
    for _ in range(num_steps):
      self.state, _, _ = self.step(self.state, self.batch)
    jax.block_until_ready(self.state)
    return time.perf_counter() - start


class _TorchContender:

  def __init__(self, name, step):
    self.name, self.step = name, step

  def run(self, num_steps):
    start = time.perf_counter()
    for _ in range(num_steps):
      self.step()
    return time.perf_counter() - start


def _calibrate(contender, window_s):
  """Steps per window of about `window_s` seconds (after two warm-up steps)."""
  contender.run(2)
  seconds = contender.run(2) / 2
  return max(1, math.ceil(window_s / seconds))


def compare(config, batch_size):
  """Alternating windows of each contender; one JSON line per window, then the summary."""
  contenders = []
  jax_step = make_jax_step(config, batch_size)
  contenders.append(_JaxContender('jax', *jax_step[:3]))
  gflops = {'jax': jax_step[3]}
  if _ALSO_RESNET_FROM.value:
    other = make_jax_step(config, batch_size, _load_resnet(_ALSO_RESNET_FROM.value))
    contenders.append(_JaxContender('jax_other_resnet', *other[:3]))
    gflops['jax_other_resnet'] = other[3]
  torch_step, model = make_torch_step(config, batch_size)
  contenders.append(_TorchContender('torch', torch_step))
  _check_param_counts(jax_step[1].params, model)
  max_other = _MAX_OTHER_CPU.value
  if max_other is not None:
    _wait_until_quiet(max_other)  # so that the windows' lengths are not set under load
  steps = {c.name: _calibrate(c, _WINDOW_S.value) for c in contenders}
  rates = {c.name: [] for c in contenders}
  round_, skipped = 0, 0
  while len(rates['jax']) < _ROUNDS.value and (max_other is None or round_ < _MAX_ROUNDS.value):
    round_rates, clean = {}, True
    for c in contenders:
      before = _other_cpu_seconds()
      seconds = c.run(steps[c.name])
      after = _other_cpu_seconds()
      other = (after - before) / seconds if before is not None and after is not None else None
      clean = clean and (max_other is None or (other is not None and other <= max_other))
      round_rates[c.name] = batch_size * steps[c.name] / seconds
      print(json.dumps({'round': round_, 'contender': c.name, 'steps': steps[c.name],
                        'seconds': round(seconds, 2),
                        'images_per_s': round(round_rates[c.name], 1),
                        'other_processes_cores': None if other is None else round(other, 2)}),
            flush=True)
    if clean:
      for name, rate in round_rates.items():
        rates[name].append(rate)
    else:
      skipped += 1
    round_ += 1
  if not rates['jax']:
    raise RuntimeError(f'No round had other processes under {max_other} cores.')
  medians = {name: statistics.median(r) for name, r in rates.items()}
  record = {
      'benchmark': 'crossmodal_rgb_3d_jax_vs_torch', 'image_size': config.image_size,
      'batch_size': batch_size, 'dtype': factory.compute_dtype(config).name,
      'jax_version': jax.__version__, 'torch_version': torch.__version__,
      'torch_threads': torch.get_num_threads(), 'torch_channels_last': _CHANNELS_LAST.value,
      'rounds_counted': len(rates['jax']), 'rounds_skipped_busy': skipped,
      'max_other_cpu': max_other, 'window_s': _WINDOW_S.value,
      'median_images_per_s': {k: round(v, 1) for k, v in medians.items()},
      'all_images_per_s': {k: [round(x, 1) for x in v] for k, v in rates.items()},
      'jax_gflops_per_step': {k: round(v, 2) if v else None for k, v in gflops.items()},
      'ratio_jax_to_torch': round(medians['jax'] / medians['torch'], 3),
  }
  if _ALSO_RESNET_FROM.value:
    record['ratio_jax_to_other_resnet'] = round(medians['jax'] / medians['jax_other_resnet'], 3)
  print(json.dumps(record), flush=True)


def _check_param_counts(jax_params, model):
  jax_counts, torch_counts = _jax_param_counts(jax_params), _torch_param_counts(model)
  print(json.dumps({'params_jax': jax_counts, 'params_torch': torch_counts}), flush=True)
  for key, value in torch_counts.items():
    if jax_counts[key] != value:
      raise AssertionError(f'{key}: {jax_counts[key]} JAX parameters, {value} torch ones.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  torch.set_num_threads(_THREADS.value or os.cpu_count())
  config = flags.FLAGS.config
  if crossmodal._IMAGE_SIZE.value is not None:  # pylint: disable=protected-access
    config.image_size = crossmodal._IMAGE_SIZE.value  # pylint: disable=protected-access
  if crossmodal._DTYPE.value is not None:  # pylint: disable=protected-access
    config.model.dtype = crossmodal._DTYPE.value  # pylint: disable=protected-access
  for batch_size in map(int, crossmodal._BATCH_SIZES.value):  # pylint: disable=protected-access
    if _COMPARE.value:
      compare(config, batch_size)
      continue
    step, model = make_torch_step(config, batch_size)
    for _ in range(3):
      step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < crossmodal._SECONDS.value:  # pylint: disable=protected-access
      step()
      steps += 1
    seconds = time.perf_counter() - start
    print(json.dumps({
        'benchmark': 'crossmodal_rgb_3d_train_torch', 'framework': f'torch {torch.__version__}',
        'image_size': config.image_size, 'batch_size': batch_size, 'steps': steps,
        'seconds': round(seconds, 2), 'images_per_s': round(steps * batch_size / seconds, 1),
        'ms_per_step': round(1e3 * seconds / steps, 2), 'params': _torch_param_counts(model),
        'threads': torch.get_num_threads(), 'channels_last': _CHANNELS_LAST.value}),
          flush=True)


if __name__ == '__main__':
  app.run(main)
