"""Config and flag validation: one `Error: ` line, exit status 2, nothing in the workdir."""

import errno
import json
import math
import os
import subprocess
import sys

from absl import app
from absl import flags
import numpy as np
import pytest

from conftest import load_config, ROOT, tiny_config
from hpe_jax import checkpointing
from hpe_jax import cli
from hpe_jax import config_lib
from hpe_jax import export
from hpe_jax import files
from hpe_jax import input_pipeline
from hpe_jax import normalization
from hpe_jax import train
from hpe_jax.evaluation import report
from hpe_jax.evaluation import summary
from hpe_jax.inference import keypoints
from hpe_jax.inference import packaged
from tfds_h36m import builders


def _set(config, name, value):
  """Sets the leaf `name` ('model.dropout', 'pairs.0.beta') of a config."""
  *path, last = name.split('.')
  node = config
  for part in path:
    node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
  node[int(last) if isinstance(node, (list, tuple)) else last] = value


def _refused(config, match):
  with pytest.raises(config_lib.ConfigError, match=match) as error:
    config_lib.check(config)
  assert '\n' not in str(error.value)
  return str(error.value)


@pytest.mark.parametrize('name, value, message', [
    ('model.latent_dim', 0, r'model.latent_dim must be positive, got 0\.'),
    ('model.hidden', -8, 'model.hidden must be positive, got -8'),
    ('model.graph_hidden', -1, 'model.graph_hidden must be positive'),
    ('model.num_blocks', -1, 'model.num_blocks must be at least 0'),
    ('model.dropout', 1.5, r'model.dropout must be in \[0, 1\), got 1.5'),
    ('model.dropout', 1.0, r'model.dropout must be in \[0, 1\)'),
    ('batch_size', -4, 'batch_size must be at least 1, got -4'),
    ('eval_batch_size', 0, 'eval_batch_size must be at least 1'),
    ('num_epochs', -1, 'num_epochs must be at least 0'),
    ('image_size', 0, 'image_size must be positive'),
    ('seed', -1, 'seed must be at least 0'),
    ('optimizer.learning_rate', math.nan, 'optimizer.learning_rate must be a finite number, '
     'got nan'),
    ('optimizer.learning_rate', 0.0, 'optimizer.learning_rate must be positive'),
    ('optimizer.weight_decay', -0.1, 'optimizer.weight_decay must be at least 0'),
    ('optimizer.lr_decay_rate', math.inf, 'optimizer.lr_decay_rate must be a finite number'),
    ('pairs.0.beta', -1.0, 'pairs.0.beta must be at least 0'),
    ('pairs.0.beta', 'x', "pairs.0.beta must be a number, got 'x'"),
    ('model.dropout', None, 'model.dropout must be a number, got None'),
    ('beta_schedule.ratio', 0.0, r'beta_schedule.ratio must be in \(0, 1\]'),
    ('augment.scale', 1.5, r'Augmentation scale=1.5 is outside \[0, 0.99\]'),
    ('optimizer.name', 'adamm', "Unknown optimizer.name 'adamm' \\(did you mean 'adam'"),
    ('model.activation', 'silu', "Unknown model.activation 'silu'; known: relu"),
    ('model.dtype', 'float16', "Unknown model.dtype 'float16'"),
])
def test_out_of_range_fields_are_one_line(name, value, message):
  config = load_config('lifting', 'tiny')
  _set(config, name, value)
  _refused(config, message)


@pytest.mark.parametrize('name', ['lifting', 'crossmodal', 'weakly_supervised'])
def test_every_float_field_must_be_finite(name):
  config = load_config(name, 'tiny')
  floats = [n for n, v in config_lib.leaves(config) if isinstance(v, float)]
  assert 'optimizer.learning_rate' in floats and 'pairs.0.weight' in floats
  for field in floats:
    for value in (math.nan, -math.inf):
      bad = load_config(name, 'tiny')
      _set(bad, field, value)
      _refused(bad, f'{field} must be a finite number, got {value}')


@pytest.mark.parametrize('change, message', [
    (dict(model=dict(latent_dim=0)), 'model.latent_dim must be positive'),
    (dict(model=dict(hidden=-8)), 'model.hidden must be positive'),
    (dict(model=dict(dropout=1.5)), r'model.dropout must be in \[0, 1\)'),
    (dict(optimizer=dict(learning_rate=math.nan)), 'learning_rate must be a finite number'),
    (dict(batch_size=512), r'batch_size 512 is larger than the training split \(480 poses\)'),
    (dict(eval_split='validation'), "No split 'validation' in h36m_synthetic/tiny.*: its "
     'splits are test, train'),
    (dict(beta_schedule=dict(kind='cyclical', num_cycles=40)), "'cyclical' needs"),
])
def test_training_refuses_before_writing_anything(tiny_data_dir, tmp_path, change, message):
  config = tiny_config(tiny_data_dir)
  config.update(change)
  workdir = tmp_path / 'run'
  with pytest.raises(config_lib.ConfigError, match=message) as error:
    train.train_and_evaluate(config, str(workdir))
  assert '\n' not in str(error.value)
  assert not workdir.exists()  # not even the folder


def test_splits_are_checked_by_name(tiny_data_dir):
  builder = input_pipeline.get_builder('h36m_synthetic/tiny', tiny_data_dir)
  for split in ('test', 'train[:10%]', 'train+test'):
    input_pipeline.check_split(builder, split)
  with pytest.raises(config_lib.ConfigError, match=r"No split 'test\[:x\]'.*test, train"):
    input_pipeline.load_pose_arrays(builder, 'test[:x]')


def test_an_unbuilt_synthetic_dataset_needs_no_manual_dir(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    input_pipeline.get_builder('h36m_synthetic/tiny', str(tmp_path), build_synthetic=False)
  message = str(error.value)
  assert 'needs no download' in message and '--manual_dir' not in message
  assert f'--dataset=h36m_synthetic/tiny --data_dir={tmp_path}' in message
  assert '\n' not in message


def test_float_flags_must_be_finite():
  values = flags.FlagValues()
  flags.DEFINE_float('fps', None, 'Frames per second.', flag_values=values)
  flags.DEFINE_float('temperature', 1.0, 'Spread.', lower_bound=0.0, flag_values=values)
  flags.DEFINE_multi_float('scales', [1.0], 'Scales.', flag_values=values)
  values(['prog'])
  assert cli.non_finite_flag(values) is None
  for arg, message in (('--fps=inf', '--fps must be a finite number, got inf.'),
                       ('--temperature=nan', '--temperature must be a finite number, got nan.'),
                       ('--scales=-inf', '--scales must be a finite number, got -inf.')):
    values.unparse_flags()
    values(['prog', arg])
    assert cli.non_finite_flag(values) == message


def _error_lines(stderr):
  return [line for line in stderr.splitlines() if line.startswith('Error:')]


def test_commands_refuse_bad_flags_in_one_line(tiny_data_dir, tmp_path):
  """Each command in its own process (the flags are global), all at once."""
  workdir, trained = tmp_path / 'run', tmp_path / 'trained'
  train.train_and_evaluate(tiny_config(tiny_data_dir, num_epochs=1), str(trained))
  before = sorted(os.listdir(trained))
  commands = {
      'main': (['hpe_jax.main', '--config=configs/lifting.py:tiny',
                '--config.optimizer.learning_rate=nan', f'--workdir={workdir}'],
               'Error: --config.optimizer.learning_rate must be a finite number, got nan.'),
      'predict': (['hpe_jax.predict', f'--workdir={workdir}', '--input=x.json',
                   f'--output={tmp_path}/out.json', '--fps=inf'],
                  'Error: --fps must be a finite number, got inf.'),
      'export': (['hpe_jax.export', f'--workdir={workdir}', f'--output={tmp_path}/x.shlo',
                  '--platforms=cpu,gpu'],
                 "Error: flag --platforms=['cpu', 'gpu']: must be one or more of cpu, cuda, "
                 'rocm, tpu, comma-separated.'),
      'evaluate': (['hpe_jax.evaluate', f'--workdir={workdir}', '--umap_neighbors=15,abc'],
                   "Error: flag --umap_neighbors=['15', 'abc']: must be whole numbers of at "
                   'least 2, comma-separated (empty: no UMAP).'),
      'split': (['hpe_jax.evaluate', f'--workdir={trained}', '--split=validation'],
                "Error: No split 'validation' in h36m_synthetic/tiny/1.0.0: its splits are "
                "test, train (TFDS split syntax: 'test', 'test[:10%]', 'train+test')."),
      'config': (['hpe_jax.main', f'--config={tmp_path}/missing.py', f'--workdir={workdir}'],
                 f'Error: No config file {tmp_path}/missing.py.'),
      'checkpoint': (['hpe_jax.evaluate', f'--workdir={trained}', '--checkpoint=abc'],
                     "Error: flag --checkpoint=abc: must be 'best', 'last' or a step number."),
      'manual_dir': (['tfds_h36m.prepare', '--dataset=h36m/poses', f'--data_dir={workdir}'],
                     'Error: h36m is built from your own copy of its files (Human3.6M is '
                     'licence-gated; the layouts: MANUAL_DOWNLOAD_INSTRUCTIONS in '
                     f'{ROOT}/tfds_h36m/h36m/h36m_dataset_builder.py): give --manual_dir=DIR.'),
  }
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  procs = {k: subprocess.Popen([sys.executable, '-m', *args], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for k, (args, _) in commands.items()}
  for name, proc in procs.items():
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, (name, stderr[-2000:])
    assert _error_lines(stderr) == [commands[name][1]], (name, stderr[-2000:])
    assert 'Traceback' not in stderr
  assert os.listdir(tmp_path) == ['trained']  # no workdir, no output
  assert sorted(os.listdir(trained)) == before  # no eval folder


def test_a_checkpoint_argument_is_best_last_or_a_step_number():
  values = flags.FlagValues()
  flags.DEFINE_string('checkpoint', 'best', 'Checkpoint.', flag_values=values)
  cli.check_checkpoint_flag(values)
  values(['prog', '--checkpoint=30'])
  for bad in ('abc', '-1', '', '\u00b3'):
    values.unparse_flags()
    with pytest.raises(flags.IllegalFlagValueError, match="'best', 'last' or a step number"):
      values(['prog', f'--checkpoint={bad}'])

  class Manager:  # what choose_step reads of an Orbax manager
    def all_steps(self):
      return [15, 30]

  assert checkpointing.choose_step(Manager(), '15', 'ckpts') == 15
  with pytest.raises(checkpointing.CheckpointError, match="got 'abc'.$") as error:
    checkpointing.choose_step(Manager(), 'abc', 'ckpts')
  assert error.value.__context__ is None  # restore adds no '(ValueError: ...)' to the line


def test_damaged_normalisation_and_summary_files_are_one_line(tmp_path):
  path = tmp_path / normalization.NORMALIZATION_FILE
  good = {k: np.ones((16, 2 if '2d' in k else 3)).tolist() for k in normalization.STATS_KEYS}
  for text, message in ((b'\xff\xfe', 'is not a readable normalisation file'),
                        (b'[' * 100000 + b']' * 100000, 'is not a readable normalisation file'),
                        (json.dumps(dict(good, pose_2d_mean=[[1, 2]])).encode(),
                         'pose_2d_mean is not 16 x 2 finite numbers.$'),
                        (json.dumps(dict(good, pose_3d_std=[[0, 1, 1]] * 16)).encode(),
                         'pose_3d_std is not 16 x 3 finite numbers above 0')):
    path.write_bytes(text)
    with pytest.raises(ValueError, match=message):
      normalization.load(str(tmp_path))
  (tmp_path / report.EVAL_DIR).mkdir()
  for text in (b'\x92\x00', b'{"header": 3, "tables": []}'):
    (tmp_path / report.EVAL_DIR / report.SUMMARY_FILE).write_bytes(text)
    with pytest.raises(summary.SummaryError, match='is not a summary of hpe_jax.evaluate'):
      summary.summary_text(str(tmp_path))


def test_export_refuses_an_output_it_would_replace_before_any_work(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'config.json').write_text('{}')
  (tmp_path / 'file').write_text('x')
  for output, fmt, message in ((workdir, 'package', 'holds files that are not a packaged'),
                               (tmp_path / 'file', 'package', 'exists and is not a folder'),
                               (tmp_path, 'stablehlo', 'is a directory; give a file name')):
    with pytest.raises(keypoints.UsageError, match=message):
      export.export_file(str(workdir), str(output), fmt)
  with pytest.raises(keypoints.UsageError, match='--licence .* needs --format=package'):
    export.export_file(str(workdir), str(tmp_path / 'lifter.onnx'), 'onnx', licence='CC BY')
  assert os.listdir(workdir) == ['config.json']
  (tmp_path / 'empty').mkdir()
  packaged.check_output(str(tmp_path / 'empty'))  # an empty folder or a new name: fine
  packaged.check_output(str(tmp_path / 'new'))


def test_a_failed_write_names_the_file_asked_for(tmp_path):
  path = str(tmp_path / 'poses.json')
  with pytest.raises(OSError) as error:
    with files.staged([path]) as tmps:
      raise OSError(errno.ENOSPC, 'No space left on device', tmps[path])
  assert cli.one_line(error.value) == f'No space left on device: {path}'
  assert not os.listdir(tmp_path)


def test_evaluate_refuses_an_unknown_dataset_before_reading_the_checkpoint(tmp_path):
  (tmp_path / 'config.json').write_text(load_config('lifting', 'tiny').to_json())
  with pytest.raises(config_lib.ConfigError, match="Unknown dataset 'h36m_synthetic/bogus'"):
    report.run_evaluation(str(tmp_path), dataset='h36m_synthetic/bogus')


def test_prepare_refuses_unknown_names_bad_configs_and_missing_manual_dirs(tmp_path):
  from tfds_h36m import prepare  # pylint: disable=g-import-not-at-top  # its flags: here only
  with pytest.raises(app.UsageError, match="Unknown dataset 'bogus': the builders are h36m,"):
    prepare._builder_cls('bogus')  # pylint: disable=protected-access
  with pytest.raises(app.UsageError, match="Unknown config 'bogus' of h36m_synthetic"):
    prepare._builder_cls('h36m_synthetic/bogus', str(tmp_path))  # pylint: disable=protected-access
  typed = prepare._typed_fields  # pylint: disable=protected-access
  for values, message in (([1], 'expected a JSON object'),
                          ({'name': 'x', 'seed': 1.5}, "'seed' must be int, got 1.5"),
                          ({'name': 'x', 'frame_stride': 0}, "'frame_stride' must be a finite "
                           'number, positive'),
                          ({'name': 'x', 'crop_margin': math.inf}, "'crop_margin' must be"),
                          ({'name': 'x', 'train_subjects': []}, 'names no subject')):
    with pytest.raises(ValueError, match=message):
      typed(builders.SyntheticConfig, values)
  assert typed(builders.SyntheticConfig, {'name': 'x', 'train_subjects': ['S1']}) == {
      'name': 'x', 'train_subjects': ('S1',)}
  check_mocap = prepare._check_mocap  # pylint: disable=protected-access
  for fields, message in ((dict(subjects='bogus'), 'unknown subjects rule'),
                          (dict(rig='bogus'), "unknown rig 'bogus'"),
                          (dict(rig=str(tmp_path / 'rig.json')), 'cannot read the mapping')):
    with pytest.raises(app.UsageError, match=message):
      check_mocap(builders.MocapConfig(name='x', **fields))
  check_manual_dir = prepare._check_manual_dir  # pylint: disable=protected-access
  builder = builders.load('h36m/poses', str(tmp_path))
  (tmp_path / 'empty').mkdir()
  for manual, message in ((None, 'give --manual_dir=DIR'), ('missing', 'is not a folder'),
                          ('empty', 'is empty')):
    with pytest.raises(app.UsageError, match=message):
      check_manual_dir(builder, manual and str(tmp_path / manual), str(tmp_path))


def test_training_refuses_a_damaged_config_json_before_writing(tiny_data_dir, tmp_path):
  (tmp_path / 'config.json').write_bytes(b'\xff')  # the first run's config, damaged
  with pytest.raises(checkpointing.CheckpointError, match='config.json is not a readable JSON '
                     r'config.*put it back, or train in a new --workdir\)\.$'):
    train.train_and_evaluate(tiny_config(tiny_data_dir), str(tmp_path))
  assert os.listdir(tmp_path) == ['config.json']  # no lock, stats, events or run record
