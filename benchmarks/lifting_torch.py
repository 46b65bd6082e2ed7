"""The same lifting VAE training loop in PyTorch (CPU), as a speed reference.

Not a dependency of the project: `pip install torch==2.13.0` first. Prints one
JSON line per batch size with train samples/s, measured like benchmarks/lifting.py.

  python -m benchmarks.lifting_torch --batch_sizes=256,4096
"""

import json
import os
import time

from absl import app
from absl import flags
import torch
from torch import nn

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['256', '4096'], 'Global batch sizes.')
_SECONDS = flags.DEFINE_float('seconds', 20.0, 'Measurement time per batch size.')
_HIDDEN = flags.DEFINE_integer('hidden', 512, 'Hidden width.')
_LATENT = flags.DEFINE_integer('latent', 100, 'Latent dimension.')


def _layer(d_in, d_out, dropout):
  # No Linear bias: BatchNorm's offset makes it redundant (hpe_jax's DenseLayer drops it too).
  return [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(),
          nn.Dropout(dropout)]


class Block(nn.Module):
  """Two Linear-BatchNorm-ReLU-Dropout layers with a skip connection."""

  def __init__(self, hidden, dropout):
    super().__init__()
    self.body = nn.Sequential(*_layer(hidden, hidden, dropout), *_layer(hidden, hidden, dropout))

  def forward(self, x):
    return x + self.body(x)


def mlp(d_in, hidden, num_blocks, dropout):
  return nn.Sequential(*_layer(d_in, hidden, dropout),
                       *[Block(hidden, dropout) for _ in range(num_blocks)])


class LiftingVAE(nn.Module):
  """2D (16x2) -> latent -> 3D (16x3), as hpe_jax's PoseEncoder/PoseDecoder."""

  def __init__(self, hidden, latent, num_blocks=2, dropout=0.2):
    super().__init__()
    self.encoder = mlp(32, hidden, num_blocks, dropout)
    self.gaussian = nn.Linear(hidden, 2 * latent)  # mean and log-variance heads in one
    self.decoder = nn.Sequential(mlp(latent, hidden, num_blocks, dropout), nn.Linear(hidden, 48))

  def forward(self, x):
    h = self.encoder(x)
    mean, logvar = self.gaussian(h).chunk(2, dim=1)
    logvar = logvar.clamp(-10, 10)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    return self.decoder(z), mean, logvar


def main(argv):
  del argv
  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count())
  for batch_size in map(int, _BATCH_SIZES.value):
    model = LiftingVAE(_HIDDEN.value, _LATENT.value)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch_size, 32), torch.randn(batch_size, 48)

    def step():
      recon, mean, logvar = model(x)
      kl = -0.5 * torch.sum(1 + logvar - mean**2 - logvar.exp(), dim=1).mean() / 48
      loss = nn.functional.mse_loss(recon, y) + 0.001 * kl
      opt.zero_grad(set_to_none=True)
      loss.backward()
      nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      opt.step()

    for _ in range(5):
      step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < _SECONDS.value:
      step()
      steps += 1
    seconds = time.perf_counter() - start
    print(json.dumps({
        'benchmark': 'lifting_train_torch', 'framework': f'torch {torch.__version__}',
        'batch_size': batch_size, 'samples_per_s': round(steps * batch_size / seconds, 1),
        'params': sum(p.numel() for p in model.parameters()),
        'threads': torch.get_num_threads()}), flush=True)


if __name__ == '__main__':
  app.run(main)
