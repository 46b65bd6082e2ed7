"""Lifters that ship with the package (`hpe_jax/lifters/<name>/`), loaded with no workdir.

  lifter = hpe_jax.load_lifter()          # the default, DEFAULT
  python -m hpe_jax.predict --input=keypoints.json --format=coco --output=poses.json

A packaged lifter is the 2D -> 3D pair of a trained workdir, without its optimiser or its
other pairs: `config.json` (the training config, that pair alone), `normalization.json`,
`variables.safetensors` (the encoder's and decoder's params and batch_stats, float32, read
with safetensors' NumPy API) and `card.json` (the checkpoint step, the training dataset,
the 2D input space and layout, and the licence its training data imposes on it). `python -m hpe_jax.export --format=package --workdir=W
--output=DIR` writes one; docs/model_card.md describes the shipped one.
"""

import json
import os
import shutil
import uuid

from flax import traverse_util
import numpy as np

from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import workdir as workdir_lib
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import restore as restore_lib

DEFAULT = 'cmu'
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'lifters')
VARIABLES_FILE = 'variables.safetensors'
CARD_FILE = 'card.json'
PAIR = modalities.Pair('pose_2d', 'pose_3d')


def path_of(name=DEFAULT):
  """The folder of a packaged lifter by name, or a folder path as it is."""
  return name if os.sep in name or os.path.isdir(name) else os.path.join(ROOT, name)


def names():
  """The lifters that ship with the package, by name (folders of ROOT)."""
  return sorted(n for n in os.listdir(ROOT) if is_packaged(os.path.join(ROOT, n)))


def shipped(name):
  """The folder of the shipped lifter `name`; a UsageError naming the shipped ones when there
  is none of that name."""
  if name not in names():
    raise keypoints_lib.UsageError(f'No lifter named {name!r} ships with hpe_jax; shipped: '
                                   f'{", ".join(names())}.')
  return os.path.join(ROOT, name)


def is_packaged(directory):
  return os.path.isfile(os.path.join(directory, VARIABLES_FILE))


def restore(name=DEFAULT):
  """A packaged lifter as a `restore.Restored` (its 2D -> 3D pair), its normalisation stats
  and its licence (the terms of its training data on its card, or None); CheckpointError
  (one line) when its files are missing or do not fit its config."""
  import safetensors  # pylint: disable=g-import-not-at-top
  from safetensors import numpy as safetensors_numpy  # pylint: disable=g-import-not-at-top
  directory = os.path.abspath(path_of(name))
  if not is_packaged(directory):
    raise restore_lib.WorkdirError(f'{directory} holds no packaged lifter ({VARIABLES_FILE}).')
  config, model, abstract = restore_lib.model_of(directory, PAIR)
  try:
    flat = safetensors_numpy.load_file(os.path.join(directory, VARIABLES_FILE))
    with open(os.path.join(directory, CARD_FILE)) as f:
      card_ = json.load(f)
    step, licence = int(card_['step']), card_.get('licence')
  except (OSError, ValueError, KeyError, TypeError, safetensors.SafetensorError) as e:
    raise restore_lib.CheckpointError(f'The packaged lifter {directory} cannot be read '
                                      f'({type(e).__name__}: {e}).') from None
  expected = traverse_util.flatten_dict(abstract, sep='/')
  if sorted(flat) != sorted(expected) or any(
      flat[k].shape != tuple(v.shape) for k, v in expected.items()):
    raise restore_lib.CheckpointError(f'The variables of {directory} do not fit its config.')
  variables = traverse_util.unflatten_dict({k: np.asarray(v, np.float32) for k, v in
                                            flat.items()}, sep='/')
  restored = restore_lib.Restored(workdir=directory, config=config, model=model,
                                  variables=variables, step=step,
                                  checkpoint_path=os.path.join(directory, VARIABLES_FILE))
  try:
    stats = normalization.load(directory)
  except ValueError as e:
    raise restore_lib.CheckpointError(str(e)) from None
  if stats is None:
    raise restore_lib.CheckpointError(f'The packaged lifter {directory} has no '
                                      f'{normalization.NORMALIZATION_FILE}.')
  return restored, stats, licence


def check_output(output):
  """UsageError unless `output` is free for a packaged lifter: a new name, an empty folder or
  a packaged lifter folder (replaced). Never a file, nor a folder of anything else (a workdir,
  the current folder): saving replaces the folder whole."""
  if not os.path.lexists(output):
    return
  if os.path.islink(output) or not os.path.isdir(output):
    raise keypoints_lib.UsageError(f'The output {output} exists and is not a folder; give a '
                                   'new folder name for the packaged lifter.')
  if os.listdir(output) and not is_packaged(output):
    raise keypoints_lib.UsageError(
        f'The output folder {output} holds files that are not a packaged lifter, and saving '
        'would replace it whole; give a new folder name.')


def save(workdir, output, checkpoint='best', licence=None):
  """Writes the 2D -> 3D pair of `workdir`'s checkpoint as a packaged lifter in `output` (a
  new folder, renamed into place whole; an existing one must be empty or a packaged lifter,
  `check_output`), with the terms of its training data (`licence`) on its card when given;
  returns its card."""
  from safetensors import numpy as safetensors_numpy  # pylint: disable=g-import-not-at-top
  check_output(output)
  restored = restore_lib.restore(workdir, checkpoint, pair=PAIR)
  stats = restore_lib.load_stats(workdir, restored.config)
  flat = traverse_util.flatten_dict(restored.variables, sep='/')
  restored.config.data_dir = None  # where it was trained: nothing a copy elsewhere can read
  card_ = {'step': restored.step, 'dataset': restored.config.dataset,
           'input_space': restored.config.input_space,
           'input_layout': restored.config.input_layout}
  if licence:
    card_['licence'] = licence
  output = os.path.abspath(output)
  tmp = f'{output}.tmp-{uuid.uuid4().hex}'
  os.makedirs(tmp)
  try:
    safetensors_numpy.save_file({k: np.asarray(v, np.float32) for k, v in flat.items()},
                                os.path.join(tmp, VARIABLES_FILE))
    normalization.save(tmp, stats)
    with open(os.path.join(tmp, workdir_lib.CONFIG_FILE), 'w') as f:
      f.write(restored.config.to_json_best_effort(indent=2))
    with open(os.path.join(tmp, CARD_FILE), 'w') as f:
      json.dump(card_, f, indent=1)
    for name in os.listdir(tmp):
      os.chmod(os.path.join(tmp, name), 0o644)
    if os.path.isdir(output):
      shutil.rmtree(output)
    os.replace(tmp, output)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return card_
