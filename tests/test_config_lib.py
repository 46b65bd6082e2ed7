"""Configs: one schema, presets after the path, checks with one-line errors."""

import os

import pytest

from conftest import load_config, pair, ROOT, tiny_config
from hpe_jax import config_lib
from hpe_jax import input_pipeline
from hpe_jax import modalities
from hpe_jax import train

CONFIGS = ('lifting', 'baseline', 'cvae', 'crossmodal', 'image')


@pytest.mark.parametrize('name', CONFIGS)
@pytest.mark.parametrize('preset', ['', 'quick', 'tiny'])
def test_every_config_has_exactly_the_schema_fields(name, preset):
  config = load_config(name, preset)
  config_lib.check(config)
  schema = config_lib.field_names(config_lib.with_defaults({}))
  assert sorted(config_lib.field_names(config)) == sorted(schema)


def test_presets_and_refinements():
  assert load_config('lifting', 'quick').num_epochs == 20
  assert load_config('lifting', '').steps_per_call == 1000
  baseline = load_config('baseline', 'tiny')
  assert baseline.deterministic and all(p['beta'] == 0.0 for p in baseline.pairs)
  full = load_config('crossmodal', '')
  assert full.image_size == 256 and full.dataset == 'h36m_synthetic/default'
  assert [p.name for p in modalities.pairs(full)] == [
      'rgb->3d', 'rgb->rgb', '2d->3d', '3d->3d', '2d->2d']
  assert [p.name for p in modalities.pairs(load_config('image', 'tiny'))] == ['rgb->3d']
  with pytest.raises(config_lib.ConfigError, match="Unknown preset 'huge'"):
    load_config('lifting', 'huge')
  # Options after the preset, big_vision style.
  quick = config_lib.load(f'{ROOT}/configs/lifting.py:quick,beta=0.01')
  assert quick.num_epochs == 20 and [p['beta'] for p in quick.pairs] == [0.01]
  assert [p['beta'] for p in config_lib.load(f'{ROOT}/configs/image.py:beta=0.1').pairs] == [0.1]
  with pytest.raises(config_lib.ConfigError, match="Unknown config option 'bet'; known: beta"):
    config_lib.load(f'{ROOT}/configs/lifting.py:bet=1')
  with pytest.raises(config_lib.ConfigError, match="beta='x' is not a float"):
    config_lib.load(f'{ROOT}/configs/lifting.py:tiny,beta=x')
  cvae = load_config('cvae', 'tiny')
  assert cvae.prior.kind == 'conditional'
  assert modalities.encoder_modalities(cvae) == ['pose_2d', 'pose_3d']
  # Loading does not depend on the working directory.
  cwd = os.getcwd()
  try:
    os.chdir('/')
    assert config_lib.load(f'{ROOT}/configs/baseline.py:tiny').deterministic
  finally:
    os.chdir(cwd)


@pytest.mark.parametrize('change, message', [
    (lambda c: c.unlock().update(latnt_dim=3), "Unknown config field 'latnt_dim' \\(did you "
     "mean 'model.latent_dim'\\?\\)"),
    (lambda c: c.update(pairs=[dict(pair('pose_2d', 'pose3d'))]),
     "Unknown target modality 'pose3d' \\(did you mean 'pose_3d'\\?\\)"),
    (lambda c: c.update(pair_schedule='alternate'), "Unknown pair_schedule 'alternate'"),
    (lambda c: c.update(pairs=[pair('pose_2d', 'pose_3d'), pair('pose_3d', 'pose_3d')],
                        pair_schedule='round_robin'),
     'Pose-only configs train every pair in one step'),
    (lambda c: c.update(pairs=[pair('image', 'pose_3d')], steps_per_call=10),
     'image configs stream one step per jitted call'),
    (lambda c: c.update(batch_size=0), 'batch_size must be at least 1'),
    (lambda c: c.prior.update(kind='cvae'), "Unknown prior.kind 'cvae'"),
    (lambda c: c.prior.update(kind='conditional', gsnn_weight=2.0),
     r'prior.gsnn_weight must be in \[0, 1\]'),
    (lambda c: c.update(deterministic=True) or c.prior.update(kind='conditional'),
     'cannot be deterministic'),
    (lambda c: c.update(pairs=[pair('pose_3d', 'pose_3d')]) or c.prior.update(kind='conditional'),
     'needs a pair from 2D or images to 3D'),
    (lambda c: c.update(input_space='perspective_crop', supervision='weak'),
     "'perspective_crop' is for 3D labels"),
    (lambda c: c.update(input_space='perspective_crop', pairs=[pair('image', 'pose_3d')]),
     "'perspective_crop' is for pose configs"),
])
def test_config_errors_are_one_line(tmp_path, change, message):
  config = tiny_config(str(tmp_path / 'no_data'))
  change(config)
  with pytest.raises(config_lib.ConfigError, match=message) as error:
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert '\n' not in str(error.value)
  assert not (tmp_path / 'run').exists()  # nothing written


def test_unknown_dataset_names_the_nearest(tiny_data_dir, tmp_path):
  input_pipeline.check_dataset('h36m_synthetic/tiny', tiny_data_dir)
  with pytest.raises(config_lib.ConfigError, match="'h36m/pose' \\(did you mean 'h36m/poses'"):
    input_pipeline.check_dataset('h36m/pose', tiny_data_dir)
  with pytest.raises(config_lib.ConfigError, match="Unknown dataset 'mnist'; known: h36m/"):
    train.train_and_evaluate(tiny_config(tiny_data_dir, dataset='mnist'), str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_workdir_config_json_fills_fields_it_lacks(tmp_path):
  path = tmp_path / 'config.json'
  path.write_text('{"num_epochs": 7, "model": {"latent_dim": 5}}')
  config = config_lib.read_json(str(path))
  assert config.num_epochs == 7 and config.model.latent_dim == 5 and config.model.hidden == 512
  path.write_text('{not json')
  with pytest.raises(config_lib.ConfigError, match='not a readable JSON config'):
    config_lib.read_json(str(path))


def test_an_unbuilt_human36m_dataset_names_the_build_command(tmp_path):
  config = tiny_config(str(tmp_path / 'data'), dataset='h36m/poses')
  with pytest.raises(FileNotFoundError, match='python -m tfds_h36m.prepare --dataset=h36m/poses'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
