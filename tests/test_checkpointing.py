"""Checkpoints: choosing and restoring, damaged checkpoints moved aside, models that do not fit."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import latest_state
from hpe_jax import checkpointing
from hpe_jax import train
from hpe_jax.inference import restore


def _copy(tiny_lifting_run, tmp_path, name='copy'):
  workdir = tmp_path / name
  shutil.copytree(tiny_lifting_run['workdir'], workdir)
  return workdir


def test_restore_chooses_checkpoints(tiny_lifting_run):
  workdir = tiny_lifting_run['workdir']
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')))
  assert steps[-1] == 60 and len(steps) == 3
  last = restore.restore(workdir, 'last')
  assert last.step == 60 and last.checkpoint_path == os.path.join(workdir, 'checkpoints', '60')
  assert restore.restore(workdir, 'best').step in steps
  earlier = restore.restore(workdir, str(min(steps)))
  assert earlier.step == min(steps)
  assert not np.allclose(jax.tree.leaves(earlier.variables)[0], jax.tree.leaves(last.variables)[0])
  assert last.config.model.latent_dim == 8 and last.config.pairs[0]['source'] == 'pose_2d'
  # The parameters alone equal those of the full training state.
  full = latest_state(workdir, tiny_lifting_run['config'])
  for a, b in zip(jax.tree.leaves((full.params, full.batch_stats)),
                  jax.tree.leaves((last.variables['params'], last.variables['batch_stats']))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_restore_errors_name_the_path(tiny_lifting_run, tmp_path):
  workdir = tiny_lifting_run['workdir']
  checkpoints = os.path.join(workdir, 'checkpoints')
  with pytest.raises(checkpointing.CheckpointError, match=rf'step 7 in {checkpoints}.*available'):
    restore.restore(workdir, 7)
  with pytest.raises(checkpointing.CheckpointError, match="'best', 'last' or a step"):
    restore.restore(workdir, 'first')
  missing = str(tmp_path / 'missing')
  with pytest.raises(checkpointing.CheckpointError, match=f'Workdir {missing} does not exist'):
    restore.restore(missing)
  os.makedirs(tmp_path / 'empty')
  with pytest.raises(checkpointing.CheckpointError, match=f'No config.json in {tmp_path}/empty'):
    restore.restore(str(tmp_path / 'empty'))
  shutil.copy(os.path.join(workdir, 'config.json'), tmp_path / 'empty')
  with pytest.raises(checkpointing.CheckpointError,
                     match=f'No checkpoint directory {tmp_path}/empty/checkpoints'):
    restore.restore(str(tmp_path / 'empty'))
  os.makedirs(tmp_path / 'empty' / 'checkpoints')
  with pytest.raises(checkpointing.CheckpointError,
                     match=f'No checkpoint in {tmp_path}/empty/checkpoints'):
    restore.restore(str(tmp_path / 'empty'))


def test_a_changed_model_does_not_fit_and_names_the_parameter(tiny_lifting_run, tmp_path):
  changed = _copy(tiny_lifting_run, tmp_path, 'changed')
  config = json.loads((changed / 'config.json').read_text())
  config['model']['latent_dim'] = 9
  (changed / 'config.json').write_text(json.dumps(config))
  with pytest.raises(checkpointing.CheckpointError,
                     match=rf'{changed}/checkpoints/60 does not fit.*decoders_pose_3d.*kernel has '
                     r'shape \(8, 32\).*\(9, 32\)'):
    restore.restore(str(changed), 'last')
  # Training with the changed model stops the same way, and leaves every checkpoint in place.
  resume = tiny_lifting_run['config'].copy_and_resolve_references()
  resume.model.latent_dim = 9
  with pytest.raises(checkpointing.CheckpointError, match='does not fit the model of this config'):
    train.train_and_evaluate(resume, str(changed))
  assert sorted(os.listdir(changed / 'checkpoints')) == sorted(
      os.listdir(os.path.join(tiny_lifting_run['workdir'], 'checkpoints')))
  assert not (changed / checkpointing.DAMAGED_DIR).exists()


def _truncate_arrays(step_dir):
  for root, _, files in os.walk(step_dir / 'default'):
    for name in files:
      if os.sep + 'd' in root:
        path = os.path.join(root, name)
        with open(path, 'r+b') as f:
          f.truncate(os.path.getsize(path) // 2)


def _delete_metadata(step_dir):
  os.remove(step_dir / 'default' / '_METADATA')
  shutil.rmtree(step_dir / 'default' / 'ocdbt.process_0')


@pytest.mark.parametrize('damage', [_truncate_arrays, _delete_metadata])
def test_damaged_newest_checkpoint_is_moved_aside_and_training_resumes(
    tiny_lifting_run, tmp_path, damage):
  workdir = _copy(tiny_lifting_run, tmp_path)
  damage(workdir / 'checkpoints' / '60')
  config = tiny_lifting_run['config'].copy_and_resolve_references()
  config.num_epochs = 5
  summary = train.train_and_evaluate(config, str(workdir))
  moved = os.listdir(workdir / checkpointing.DAMAGED_DIR)
  assert len(moved) == 1 and moved[0].startswith('60-')
  assert os.listdir(workdir / checkpointing.DAMAGED_DIR / moved[0])  # kept, not deleted
  steps = sorted(int(s) for s in os.listdir(workdir / 'checkpoints'))
  assert steps[-1] == 75 and 60 in steps  # resumed from 45: epochs 4 and 5 trained again
  assert summary['2d->3d/mpjpe']['mean_over_actions'] > 0
