"""The vocabulary of modalities and pairs: names, shapes, groups and their schedule.

A pair encodes its `source` modality and decodes its `target` one through the
shared latent space. It has one display name ('2d->3d'), one metric key
('pose_2d_to_pose_3d', for train losses) and one file tag ('2d_to_3d'), all
defined here.
"""

from typing import NamedTuple

IMAGE, POSE_2D, POSE_3D = 'image', 'pose_2d', 'pose_3d'
SHORT_NAMES = {IMAGE: 'rgb', POSE_2D: '2d', POSE_3D: '3d'}
# Model inputs/outputs of the pose modalities: the 16 non-root joints, normalised.
POSE_SHAPES = {POSE_2D: (16, 2), POSE_3D: (16, 3)}


class Pair(NamedTuple):
  """An encoder -> decoder pair with its loss weight and KL weight beta."""
  source: str
  target: str
  weight: float = 1.0
  beta: float = 0.001

  @property
  def name(self):
    """Display name: 'rgb->3d', '2d->3d'."""
    return f'{SHORT_NAMES[self.source]}->{SHORT_NAMES[self.target]}'

  @property
  def tag(self):
    """File-name-safe name: 'rgb_to_3d'."""
    return f'{SHORT_NAMES[self.source]}_to_{SHORT_NAMES[self.target]}'

  def metric_key(self, metric):
    """Train-loss key: 'pose_2d_to_pose_3d_kl'."""
    return f'{self.source}_to_{self.target}_{metric}'


def pairs(config):
  """The config's pairs, in config order."""
  return [Pair(p['source'], p['target'], p['weight'], p['beta']) for p in config.pairs]


def pairs_to_3d(config):
  """The pairs that end in a 3D pose (those with MPJPE tables), in config order."""
  return [p for p in pairs(config) if p.target == POSE_3D]


def conditional_pairs(config):
  """The pairs trained as a CVAE under `config.prior.kind == 'conditional'`: those ending in
  3D from another modality (their source encoder is the prior p(z | source))."""
  if config.prior.kind != 'conditional':
    return []
  return [p for p in pairs_to_3d(config) if p.source != POSE_3D]


def encoder_modalities(config):
  """The modalities with an encoder: every source, and 3D for a conditional prior's posterior."""
  sources = {p.source for p in pairs(config)}
  return sorted(sources | ({POSE_3D} if conditional_pairs(config) else set()))


def modality_shape(config, modality):
  """Per-example shape of a modality as the model sees it (and a decoder gives it)."""
  if modality == IMAGE:
    return (config.image_size, config.image_size, 3)
  return POSE_SHAPES[modality]


def is_temporal(config):
  """Whether the 2D pose encoder reads windows of frames (model.pose_net 'temporal')."""
  return config.model.pose_net == 'temporal'


def input_shape(config, modality):
  """Per-example shape of a modality as its encoder reads it: a window of 2D poses
  (model.window, 16, 2) for the temporal net, else `modality_shape`."""
  if modality == POSE_2D and is_temporal(config):
    return (config.model.window,) + POSE_SHAPES[POSE_2D]
  return modality_shape(config, modality)


def modalities(config):
  """Every modality that some configured pair encodes or decodes, sorted."""
  return sorted({m for p in pairs(config) for m in (p.source, p.target)})


def uses_images(config):
  return IMAGE in modalities(config)


def groups(config):
  """Groups of pairs that share one jitted train step: all pairs ('sum') or one each."""
  if config.pair_schedule == 'sum':
    return [pairs(config)]
  return [[pair] for pair in pairs(config)]


def scheduled_group(config, step, steps_per_epoch):
  """Index (into `groups(config)`) of the group trained at global `step`.

  'sum': always the one group; 'round_robin': the pairs in turn, one per step;
  'per_epoch': the pairs in turn, one per epoch.
  """
  num_groups = len(groups(config))
  if config.pair_schedule == 'round_robin':
    return step % num_groups
  if config.pair_schedule == 'per_epoch':
    return (step // steps_per_epoch) % num_groups
  return 0
