"""Configs: loading a `get_config(preset)` file by path, checking a config against the schema.

The schema is `configs/common.py`; every hpe_jax config has exactly its fields. A
workdir's `config.json` is read back over the schema's defaults, so a config
written by an older version still fills every field. No TensorFlow here: the
lifter of a trained workdir reads its config through this module.
"""

import difflib
import fnmatch
import importlib.machinery
import importlib.util
import json
import math
import numbers
import os

import ml_collections

from configs import common

MODALITIES = ('image', 'pose_2d', 'pose_3d')
PAIR_KEYS = ('source', 'target', 'weight', 'beta')
PAIR_SCHEDULES = ('sum', 'round_robin', 'per_epoch')
PRIOR_KINDS = ('standard', 'conditional')
SUPERVISIONS = ('3d', 'weak')
INPUT_LAYOUTS = ('h36m', 'detector')
INPUT_SPACES = ('pixels', 'camera', 'perspective_crop')
POSE_NETS = ('mlp', 'graph', 'temporal')
OPTIMIZERS = ('adam', 'adamw', 'sgd')
LR_SCHEDULES = ('constant', 'exponential', 'cosine')
BETA_SCHEDULES = ('constant', 'linear', 'cyclical')
DTYPES = ('float32', 'bfloat16', 'auto')

# The range of every numeric field, by dotted name (fnmatch pattern; a list's items are
# 'pairs.0.beta'); the first pattern that matches applies. Every number must also be finite.
# Fields no pattern names are checked elsewhere (augment.*: `augment.check_config`;
# model.window: `sequences.check_window`).
_POSITIVE = (lambda v: v > 0, 'positive')
_AT_LEAST_0 = (lambda v: v >= 0, 'at least 0')
_AT_LEAST_1 = (lambda v: v >= 1, 'at least 1')
RANGES = (
    # Sizes and counts.
    (('image_size', 'model.latent_dim', 'model.hidden', 'model.graph_hidden',
      'model.image_decoder_channels'), _POSITIVE),
    (('batch_size', 'eval_batch_size', 'steps_per_call', 'keep_checkpoints',
      'eval_every_epochs', 'checkpoint_every_epochs', 'log_every_steps',
      'beta_schedule.num_cycles'), _AT_LEAST_1),
    (('seed', 'num_epochs', 'model.num_blocks', 'train_exclude_subjects.*'), _AT_LEAST_0),
    (('input_workers',), (lambda v: v >= -1, 'at least -1')),
    # Fractions.
    (('model.dropout',), (lambda v: 0 <= v < 1, 'in [0, 1)')),
    (('prior.gsnn_weight',), (lambda v: 0 <= v <= 1, 'in [0, 1]')),
    (('beta_schedule.ratio',), (lambda v: 0 < v <= 1, 'in (0, 1]')),
    (('eval_pose_2d_noise',), (lambda v: 0 <= v <= 0.2,
                               'in [0, 0.2] (a fraction of the pose size)')),
    # Rates, scales and weights.
    (('optimizer.learning_rate', 'optimizer.lr_decay_rate', 'optimizer.lr_decay_epochs',
      'model.logvar_clip', 'weak.pose_3d_std_mm'), _POSITIVE),
    (('optimizer.*', 'beta_schedule.warmup_epochs', 'prior.gsnn_temperature', 'pairs.*',
      'weak.*', 'log_every_secs'), _AT_LEAST_0),
)


class ConfigError(ValueError):
  """A config that cannot be loaded or does not fit the schema (its message is one line)."""


def near_matches(name, known):
  """' (did you mean ...?)' with the known names closest to `name`, or ''.

  A dotted name is also compared by its last part, so 'latnt_dim' finds 'model.latent_dim'.
  """
  def score(candidate):
    return max(difflib.SequenceMatcher(None, name, candidate).ratio(),
               difflib.SequenceMatcher(None, name.rsplit('.', 1)[-1],
                                       candidate.rsplit('.', 1)[-1]).ratio())
  scored = sorted(((score(k), k) for k in known), reverse=True)
  best = scored[0][0] if scored else 0.0
  close = [k for s, k in scored[:3] if s >= 0.7 and s >= best - 0.1]
  return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ''


def load(spec):
  """The config of 'path/to/file.py' or 'path/to/file.py:preset', as `--config` reads it."""
  path, _, preset = spec.partition(':')
  if not os.path.isfile(path):
    raise ConfigError(f'No config file {path}.')
  name = 'hpe_jax_config_' + os.path.splitext(os.path.basename(path))[0]
  # Python whatever the file's extension, as --config's own parser reads it
  module_spec = importlib.util.spec_from_loader(
      name, importlib.machinery.SourceFileLoader(name, path))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  try:
    return module.get_config(preset) if preset else module.get_config()
  except ValueError as e:
    raise ConfigError(f'{spec}: {e}') from None


def field_names(config, prefix=''):
  """Every field of a ConfigDict as a dotted name ('model.latent_dim'); lists are leaves."""
  names = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      names += field_names(value, f'{prefix}{key}.')
    else:
      names.append(prefix + key)
  return names


def check_fields(config):
  """Raises ConfigError naming the first field the schema lacks, with the nearest known ones."""
  known = field_names(common.get_config())
  for name in field_names(config):
    if name not in known:
      raise ConfigError(f'Unknown config field {name!r}{near_matches(name, known)}.')


def check_pairs(config):
  """Raises ConfigError on a pair with an unknown modality or key, or an unknown schedule."""
  if not config.pairs:
    raise ConfigError('config.pairs is empty: give at least one encoder -> decoder pair.')
  for pair in config.pairs:
    unknown = sorted(set(pair) - set(PAIR_KEYS))
    if unknown:
      raise ConfigError(f'Unknown pair key {unknown[0]!r}{near_matches(unknown[0], PAIR_KEYS)};'
                        f' a pair has {", ".join(PAIR_KEYS)}.')
    for key in ('source', 'target'):
      if pair.get(key) not in MODALITIES:
        raise ConfigError(f'Unknown {key} modality {pair.get(key)!r}'
                          f'{near_matches(str(pair.get(key)), MODALITIES)}; known: '
                          f'{", ".join(MODALITIES)}.')
  if config.pair_schedule not in PAIR_SCHEDULES:
    raise ConfigError(f'Unknown pair_schedule {config.pair_schedule!r}'
                      f'{near_matches(config.pair_schedule, PAIR_SCHEDULES)}; known: '
                      f'{", ".join(PAIR_SCHEDULES)}.')


def check_input_space(config, streams_images):
  """The 2D input space: known; the normalised image plane for pose configs only; a
  perspective crop's 3D poses live in turned cameras' frames, which the weak losses'
  reprojection cannot use, and new bodies and bent legs (augment.bone_scale, leg_bend) are
  filmed from its camera."""
  if config.input_space not in INPUT_SPACES:
    raise ConfigError(f'Unknown input_space {config.input_space!r}; known: '
                      f'{", ".join(INPUT_SPACES)}.')
  if config.input_space != 'pixels' and streams_images:
    raise ConfigError(f'input_space {config.input_space!r} is for pose configs (no image '
                      'pairs).')
  if config.input_space == 'perspective_crop' and config.supervision == 'weak':
    raise ConfigError("input_space 'perspective_crop' is for 3D labels: weak supervision "
                      "reprojects camera-frame poses; use input_space 'camera'.")
  if config.ray_refinement and config.input_space not in ('camera', 'perspective_crop'):
    raise ConfigError("ray_refinement moves answers toward the rays of keypoints on the "
                      "normalised image plane: it needs input_space 'camera' or "
                      "'perspective_crop'.")
  for name in ('bone_scale', 'leg_bend'):
    if config.augment.get(name, 0.0) > 0 and config.input_space != 'perspective_crop':
      raise ConfigError(f"augment.{name} films new poses from the perspective crop's "
                        "camera: it needs input_space 'perspective_crop'.")


def check(config):
  """Every check that needs no dataset and no device: fields, values, pairs, schedules."""
  check_fields(config)
  check_values(config)
  check_pairs(config)
  streams_images = any('image' in (p['source'], p['target']) for p in config.pairs)
  check_pose_net(config, streams_images)
  if config.input_layout not in INPUT_LAYOUTS:
    raise ConfigError(f'Unknown input_layout {config.input_layout!r}; known: '
                      f'{", ".join(INPUT_LAYOUTS)}.')
  if streams_images and config.input_layout != 'h36m':
    raise ConfigError("input_layout 'detector' is for pose configs; image configs read the "
                      "dataset's 2D joints ('h36m').")
  check_input_space(config, streams_images)
  if streams_images and config.train_exclude_subjects:
    raise ConfigError('train_exclude_subjects is for pose configs; image configs stream the '
                      "dataset's training split whole.")
  if streams_images and config.steps_per_call != 1:
    raise ConfigError(f'steps_per_call is {config.steps_per_call}, but image configs stream '
                      'one step per jitted call: leave it at 1.')
  if not streams_images and config.pair_schedule != 'sum':
    raise ConfigError("Pose-only configs train every pair in one step: set pair_schedule "
                      f"'sum' (got {config.pair_schedule!r}).")
  check_prior(config)
  check_supervision(config)


def leaves(value, prefix=''):
  """(dotted name, value) of every leaf of a config, its dicts and its lists ('pairs.0.beta')."""
  if isinstance(value, (dict, ml_collections.ConfigDict)):
    for key, item in value.items():
      yield from leaves(item, f'{prefix}{key}.')
  elif isinstance(value, (list, tuple)):
    for i, item in enumerate(value):
      yield from leaves(item, f'{prefix}{i}.')
  else:
    yield prefix[:-1], value


def check_values(config):
  """Raises ConfigError on the first number that is not finite or out of its `RANGES` rule,
  a non-number where the schema has one, or a name outside its known set (optimizer,
  schedules, dtype, activation)."""
  def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  schema = dict(leaves(common.get_config()))
  for name, value in leaves(config):
    if not is_number(value):
      if name in schema and is_number(schema[name]):
        raise ConfigError(f'{name} must be a number, got {value!r}.')
      continue
    if not math.isfinite(value):
      raise ConfigError(f'{name} must be a finite number, got {value}.')
    rule = next((r for patterns, r in RANGES
                 if any(fnmatch.fnmatchcase(name, p) for p in patterns)), None)
    if rule is not None and not rule[0](value):
      raise ConfigError(f'{name} must be {rule[1]}, got {value}.')
  from hpe_jax import augment  # pylint: disable=g-import-not-at-top  # JAX: not for config loading
  from hpe_jax.models import pose_mlp  # pylint: disable=g-import-not-at-top
  try:
    augment.check_config(config.augment)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  for name, known in (('optimizer.name', OPTIMIZERS), ('optimizer.lr_schedule', LR_SCHEDULES),
                      ('beta_schedule.kind', BETA_SCHEDULES), ('model.dtype', DTYPES),
                      ('model.activation', tuple(pose_mlp.ACTIVATIONS))):
    group, field = name.split('.')
    value = config[group][field]
    if value not in known:
      raise ConfigError(f'Unknown {name} {value!r}{near_matches(str(value), known)}; known: '
                        f'{", ".join(known)}.')
  if config.beta_schedule.kind == 'linear' and config.beta_schedule.warmup_epochs <= 0:
    raise ConfigError("beta_schedule.kind 'linear' anneals over warmup_epochs: make it positive.")


def check_pose_net(config, streams_images):
  """Raises ConfigError on an unknown pose net, or a temporal one that cannot apply."""
  model = config.model
  if model.pose_net not in POSE_NETS:
    raise ConfigError(f'Unknown model.pose_net {model.pose_net!r}'
                      f'{near_matches(str(model.pose_net), POSE_NETS)}; known: '
                      f'{", ".join(POSE_NETS)}.')
  if model.pose_net != 'temporal':
    return
  from hpe_jax import sequences  # pylint: disable=g-import-not-at-top  # JAX: not for config loading
  try:
    sequences.check_window(model.window)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if streams_images or config.supervision != '3d':
    raise ConfigError("pose_net 'temporal' is for pose configs with 3D labels (no image "
                      "pairs, supervision '3d').")


def check_supervision(config):
  """Raises ConfigError on weak supervision that cannot apply to the config."""
  from hpe_jax import weak_supervision  # pylint: disable=g-import-not-at-top  # JAX: not for config loading
  if config.supervision not in SUPERVISIONS:
    raise ConfigError(f'Unknown supervision {config.supervision!r}; known: '
                      f'{", ".join(SUPERVISIONS)}.')
  if config.supervision != 'weak':
    return
  weak = config.weak
  for name, value, known in (('root', weak.root, weak_supervision.ROOTS),
                             ('multiview_kind', weak.multiview_kind,
                              weak_supervision.MULTIVIEW_KINDS)):
    if value not in known:
      raise ConfigError(f'Unknown weak.{name} {value!r}; known: {", ".join(known)}.')
  modalities_used = {m for p in config.pairs for m in (p['source'], p['target'])}
  if 'image' in modalities_used or any(
      p['source'] == 'pose_3d' or (p['target'] == 'pose_3d' and p['source'] != 'pose_2d')
      for p in config.pairs):
    raise ConfigError("supervision 'weak' trains pairs from 2D poses alone (pose_2d -> "
                      'pose_3d, pose_2d -> pose_2d): no images, no 3D inputs.')
  if config.augment.flip_prob > 0 or config.prior.kind != 'standard':
    raise ConfigError("supervision 'weak' takes neither pose flips (augment.flip_prob 0) nor "
                      "a conditional prior (prior.kind 'standard').")


def check_prior(config):
  """Raises ConfigError on a latent prior that cannot apply to the config's pairs."""
  kind = config.prior.kind
  if kind not in PRIOR_KINDS:
    raise ConfigError(f'Unknown prior.kind {kind!r}{near_matches(str(kind), PRIOR_KINDS)}; '
                      f'known: {", ".join(PRIOR_KINDS)}.')
  if kind == 'conditional':
    if config.deterministic:
      raise ConfigError("prior.kind 'conditional' samples latents: it cannot be deterministic.")
    if not any(p['target'] == 'pose_3d' and p['source'] != 'pose_3d' for p in config.pairs):
      raise ConfigError("prior.kind 'conditional' needs a pair from 2D or images to 3D.")


def with_defaults(values):
  """The schema's defaults overwritten by `values` (a dict, e.g. a workdir's config.json)."""
  config = common.get_config()
  config.unlock()
  config.update(values)
  return config


def read_json(path):
  """A config written as JSON (a workdir's config.json), over the schema's defaults."""
  try:
    with open(path) as f:
      values = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
    raise ConfigError(f'{path} is not a readable JSON config: {e}') from None
  if not isinstance(values, dict):
    raise ConfigError(f'{path} does not hold a JSON object.')
  return with_defaults(values)


def diff(old, new):
  """{'model.latent_dim': [old, new], ...}: the fields whose values differ."""
  old_flat, new_flat = _flat(old), _flat(new)
  return {k: [old_flat.get(k), new_flat.get(k)] for k in sorted(set(old_flat) | set(new_flat))
          if old_flat.get(k) != new_flat.get(k)}


def _flat(config):
  values = json.loads(config.to_json_best_effort())

  def walk(value, prefix):
    if isinstance(value, dict):
      for k, v in value.items():
        yield from walk(v, f'{prefix}{k}.')
    else:
      yield prefix[:-1], value
  return dict(walk(values, ''))
