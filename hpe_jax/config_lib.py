"""Configs: loading a `get_config(preset)` file by path, checking a config against the schema.

The schema is `configs/common.py`; every hpe_jax config has exactly its fields. A
workdir's `config.json` is read back over the schema's defaults, so a config
written by an older version still fills every field. No TensorFlow here: the
lifter of a trained workdir reads its config through this module.
"""

import difflib
import importlib.util
import json
import os

import ml_collections

from configs import common

MODALITIES = ('image', 'pose_2d', 'pose_3d')
PAIR_KEYS = ('source', 'target', 'weight', 'beta')
PAIR_SCHEDULES = ('sum', 'round_robin', 'per_epoch')
PRIOR_KINDS = ('standard', 'conditional')
SUPERVISIONS = ('3d', 'weak')
INPUT_LAYOUTS = ('h36m', 'detector')
INPUT_SPACES = ('pixels', 'camera')
POSE_NETS = ('mlp', 'graph', 'temporal')


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
  module_spec = importlib.util.spec_from_file_location(name, path)
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


def check(config):
  """Every check that needs no dataset and no device: fields, pairs, schedules, step counts."""
  check_fields(config)
  check_pairs(config)
  streams_images = any('image' in (p['source'], p['target']) for p in config.pairs)
  check_pose_net(config, streams_images)
  if config.input_layout not in INPUT_LAYOUTS:
    raise ConfigError(f'Unknown input_layout {config.input_layout!r}; known: '
                      f'{", ".join(INPUT_LAYOUTS)}.')
  if streams_images and config.input_layout != 'h36m':
    raise ConfigError("input_layout 'detector' is for pose configs; image configs read the "
                      "dataset's 2D joints ('h36m').")
  if config.input_space not in INPUT_SPACES:
    raise ConfigError(f'Unknown input_space {config.input_space!r}; known: '
                      f'{", ".join(INPUT_SPACES)}.')
  if config.input_space == 'camera' and (streams_images or config.supervision == 'weak'):
    raise ConfigError("input_space 'camera' is for pose configs with 3D labels (supervision "
                      "'3d', no image pairs).")
  if config.supervision == 'weak' and config.dataset.split('/')[0] == 'mocap':
    raise ConfigError("supervision 'weak' reads Human3.6M's calibrated cameras by index; the "
                      'mocap datasets (a camera per take) train with 3D labels.')
  if not 0.0 <= config.eval_pose_2d_noise <= 0.2:  # also refuses NaN
    raise ConfigError(f'eval_pose_2d_noise must be in [0, 0.2] (a fraction of the pose size), '
                      f'got {config.eval_pose_2d_noise}.')
  if streams_images and config.train_exclude_subjects:
    raise ConfigError('train_exclude_subjects is for pose configs; image configs stream the '
                      "dataset's training split whole.")
  if streams_images and config.steps_per_call != 1:
    raise ConfigError(f'steps_per_call is {config.steps_per_call}, but image configs stream '
                      'one step per jitted call: leave it at 1.')
  if not streams_images and config.pair_schedule != 'sum':
    raise ConfigError("Pose-only configs train every pair in one step: set pair_schedule "
                      f"'sum' (got {config.pair_schedule!r}).")
  for name in ('batch_size', 'eval_batch_size', 'steps_per_call', 'keep_checkpoints',
               'eval_every_epochs', 'checkpoint_every_epochs'):
    if config[name] < 1:
      raise ConfigError(f'{name} must be at least 1, got {config[name]}.')
  if config.num_epochs < 0:
    raise ConfigError(f'num_epochs must be at least 0, got {config.num_epochs}.')
  check_prior(config)
  check_supervision(config)


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
  for term in weak_supervision.TERMS:
    if weak[term] < 0:
      raise ConfigError(f'weak.{term} must be at least 0, got {weak[term]}.')
  if weak.pose_3d_std_mm <= 0:
    raise ConfigError(f'weak.pose_3d_std_mm must be positive, got {weak.pose_3d_std_mm}.')
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
  if not 0.0 <= config.prior.gsnn_weight <= 1.0:
    raise ConfigError(f'prior.gsnn_weight must be in [0, 1], got {config.prior.gsnn_weight}.')
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
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
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
