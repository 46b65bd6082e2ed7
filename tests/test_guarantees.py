"""What the commands promise under foreign files, symlinks, faults and kills (docs/guarantees.md).

Each test hands a command or the function under it one class of hostile input and checks the
promise: no code runs, nothing is written outside the workdir, nothing is half-written, the
error is one line, the last good checkpoint stays.
"""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from hpe_jax import checkpointing
from hpe_jax import cli
from hpe_jax import files
from hpe_jax import input_pipeline
from hpe_jax import logs
from hpe_jax import ray_spread
from hpe_jax import workdir as workdir_lib
from hpe_jax.evaluation import report
from hpe_jax.models import pretrained
from tfds_h36m import builders
from tfds_h36m import pose_arrays
from tfds_h36m import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = 'code_ran.txt'


def _copy_workdir(run, tmp_path, name='workdir'):
  workdir = str(tmp_path / name)
  shutil.copytree(run['workdir'], workdir, symlinks=True)
  return workdir


def _one_error_line(stderr):
  """The stderr of a command that failed as promised: one `Error:` line, no traceback."""
  assert 'Traceback' not in stderr, stderr[-3000:]
  errors = [line for line in stderr.splitlines() if line.startswith('Error: ')]
  assert len(errors) == 1, stderr[-3000:]
  return errors[0]


def _craft_dataset(tiny_data_dir, tmp_path):
  """A built dataset whose features.json names a module shipped beside it, which would write
  MARKER when imported: data dir and the folder holding the module."""
  data_dir = tmp_path / 'data'
  shutil.copytree(os.path.join(tiny_data_dir, 'h36m_synthetic', 'tiny'),
                  data_dir / 'h36m_synthetic' / 'crafted')
  (tmp_path / 'crafted_features.py').write_text(
      f'open({str(tmp_path / MARKER)!r}, "w").write("ran")\n')
  for path in (data_dir / 'h36m_synthetic' / 'crafted').glob('*/features.json'):
    features = json.loads(path.read_text())
    features['pythonClassName'] = 'crafted_features.Feature'
    path.write_text(json.dumps(features))
  return str(data_dir)


def test_a_crafted_dataset_or_workdir_runs_no_code_from_any_directory(
    tiny_lifting_run, tiny_data_dir, tmp_path, monkeypatch):
  data_dir = _craft_dataset(tiny_data_dir, tmp_path)
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(builders.ForeignCode, match='crafted_features.Feature'):
    input_pipeline.check_dataset('h36m_synthetic/crafted', data_dir)
  assert not (tmp_path / MARKER).exists()
  # A workdir without its stats names the crafted dataset: predict, run from the folder that
  # holds the module (first on the import path), refuses in one line.
  workdir = _copy_workdir(tiny_lifting_run, tmp_path)
  os.remove(os.path.join(workdir, 'normalization.json'))
  config = json.loads(open(os.path.join(workdir, 'config.json')).read())
  config.update(dataset='h36m_synthetic/crafted', data_dir=data_dir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(config, f)
  np.savez(tmp_path / 'keypoints.npz', keypoints=np.full((2, 17, 2), 500.0, np.float32))
  done = subprocess.run(
      [sys.executable, '-m', 'hpe_jax.predict', f'--workdir={workdir}',
       '--input=keypoints.npz', '--output=poses.json'],
      cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
      timeout=300)
  assert done.returncode == cli.EXIT_DATA
  assert 'names Python code (crafted_features.Feature)' in _one_error_line(done.stderr)
  assert not (tmp_path / MARKER).exists() and not (tmp_path / 'poses.json').exists()


def test_foreign_weight_and_table_files_run_nothing_and_fail_in_one_line(tmp_path):
  class RunsCode:  # what a malicious pickle does: call a function while it is read
    def __reduce__(self):
      return (open, (str(tmp_path / MARKER), 'w'))

  (tmp_path / 'weights.pth').write_bytes(pickle.dumps({'conv1.weight': RunsCode()}, protocol=2))
  with pytest.raises(pretrained.WeightsError, match='weights.pth cannot be read'):
    pretrained.load_resnet18(tmp_path / 'weights.pth')
  assert not (tmp_path / MARKER).exists()
  np.savez(tmp_path / ray_spread.SPREAD_FILE, table=np.array([{'a': 1}], dtype=object))
  with pytest.raises(ray_spread.SpreadFileError, match='not a table written by'):
    ray_spread.load(str(tmp_path))
  (tmp_path / ray_spread.SPREAD_FILE).write_bytes(b'PK\x03\x04 cut short')
  with pytest.raises(ray_spread.SpreadFileError, match='fit it again'):
    ray_spread.load(str(tmp_path))


def _tree(path):
  """{relative path: bytes} of every file below `path` (links not followed)."""
  out = {}
  for folder, _, names in os.walk(path):
    for name in names:
      full = os.path.join(folder, name)
      with open(full, 'rb') as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


def test_writes_never_leave_the_workdir_through_a_symlink(tiny_lifting_run, tmp_path):
  workdir = _copy_workdir(tiny_lifting_run, tmp_path)
  outside = tmp_path / 'outside'
  outside.mkdir()
  (outside / 'precious.md').write_text('keep me')
  before = _tree(outside)
  shutil.rmtree(os.path.join(workdir, report.EVAL_DIR), ignore_errors=True)
  os.symlink(outside, os.path.join(workdir, report.EVAL_DIR))
  os.remove(os.path.join(workdir, 'results.md'))
  os.symlink(outside / 'precious.md', os.path.join(workdir, 'results.md'))
  os.symlink(outside, os.path.join(workdir, checkpointing.DAMAGED_DIR))
  report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[])
  assert not os.path.islink(os.path.join(workdir, report.EVAL_DIR))
  assert os.path.isfile(os.path.join(workdir, report.EVAL_DIR, report.SUMMARY_FILE))
  from hpe_jax import train  # pylint: disable=g-import-not-at-top
  train.train_and_evaluate(tiny_lifting_run['config'], workdir)  # complete: evaluates, writes
  assert not os.path.islink(os.path.join(workdir, 'results.md'))
  with pytest.raises(files.UnsafePath, match='damaged_checkpoints is a symbolic link'):
    checkpointing.move_aside(workdir, 60, 'a test')
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '60'))
  assert _tree(outside) == before


def test_a_failed_evaluation_keeps_the_previous_results_whole(tiny_lifting_run, tmp_path,
                                                              monkeypatch):
  workdir = _copy_workdir(tiny_lifting_run, tmp_path)
  report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[])
  eval_dir = os.path.join(workdir, report.EVAL_DIR)
  os.makedirs(os.path.join(eval_dir, 'pw3d_test'))  # another command's results: kept
  before = _tree(eval_dir)

  def disk_full(*args, **kwargs):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(report, '_write_pictures', disk_full)
  with pytest.raises(OSError, match='No space left'):
    report.run_evaluation(workdir, checkpoint='best', umap_neighbors=[])
  assert _tree(eval_dir) == before
  assert not [n for n in os.listdir(workdir) if n.startswith('.') or n.endswith('.lock')]
  monkeypatch.undo()
  with workdir_lib.eval_lock(workdir):  # a second evaluation waits for none: it stops
    with pytest.raises(workdir_lib.WorkdirBusy, match='Another evaluation is running'):
      report.run_evaluation(workdir, checkpoint='last', umap_neighbors=[])
  report.run_evaluation(workdir, checkpoint='best', umap_neighbors=[])
  assert os.path.isdir(os.path.join(eval_dir, 'pw3d_test'))
  assert json.loads(open(os.path.join(eval_dir, report.SUMMARY_FILE)).read())[
      'checkpoint'] == 'best'


def test_the_lock_appears_whole_and_an_unreadable_one_is_taken_over(tmp_path, monkeypatch):
  (tmp_path / workdir_lib.LOCK_FILE).write_text('')  # left by a disk that filled up
  with workdir_lib.Lock(str(tmp_path)) as lock:
    assert json.loads(open(lock.path).read())['pid'] == os.getpid()
  assert os.listdir(tmp_path) == []

  def disk_full(*args, **kwargs):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(workdir_lib.json, 'dump', disk_full)
  with pytest.raises(OSError, match='No space left'):
    workdir_lib.Lock(str(tmp_path)).acquire()
  assert os.listdir(tmp_path) == []


def test_sigterm_removes_the_files_being_written(tmp_path):
  path = str(tmp_path / 'poses.json')
  previous = signal.getsignal(signal.SIGTERM)
  cli.stop_cleanly_on_sigterm()
  try:
    with pytest.raises(cli.Terminated):
      with files.staged([path]) as tmps:
        with open(tmps[path], 'w') as f:
          f.write('half')
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert os.listdir(tmp_path) == []


def test_a_failed_checkpoint_write_is_one_line_naming_the_last_good_one(tmp_path, capsys):
  directory = tmp_path / 'checkpoints'
  for name in ('15', '30', '45.orbax-checkpoint-tmp'):
    (directory / name).mkdir(parents=True)

  class Manager:
    pass

  manager = Manager()
  manager.directory = directory
  error = ValueError('OUT_OF_RANGE: Error writing "opt_state" in OCDBT database ... Failed '
                     "to write 45778 bytes to file 15: [os_error_code='28']")
  with pytest.raises(checkpointing.CheckpointError) as raised:
    with checkpointing.writing(manager):
      raise error
  assert str(raised.value) == (
      'Could not write a checkpoint (No space left on device). The last good checkpoint is '
      f'step 30 in {directory}: free space and run the same command to resume.')
  late = RuntimeError('Event loop is closed')  # what TensorStore's threads report afterwards
  logs._drop_late_save_errors(RuntimeError, late, None)  # pylint: disable=protected-access
  logs._drop_late_unraisable(types.SimpleNamespace(exc_value=late))  # pylint: disable=protected-access
  assert capsys.readouterr().err == ''


def test_the_other_failed_writes_of_a_save_are_not_reported():
  """A full disk fails each of an Orbax save's concurrent writes: one error reaches the caller
  (one line), and asyncio's 'Task exception was never retrieved' for the others is dropped;
  the same report for a task outside Orbax still goes through."""
  import logging as logging_lib  # pylint: disable=g-import-not-at-top

  def record_of(filename, kind='Task'):
    scope = {}
    exec(compile('def write():\n  raise ValueError("OUT_OF_RANGE: Error writing")', filename,
                 'exec'), scope)
    try:
      scope['write']()
    except ValueError:
      exc_info = sys.exc_info()
    return logging_lib.LogRecord('asyncio', logging_lib.ERROR, '/usr/lib/asyncio/base_events.py',
                                 1771, f'{kind} exception was never retrieved\nfuture: <{kind}>',
                                 (), exc_info)

  quiet = logs._QuietLibraries()  # pylint: disable=protected-access
  for kind in ('Task', '_GatheringFuture', 'Future'):  # a save's gathered writes fail too
    assert not quiet.filter(record_of('/site-packages/orbax/checkpoint/serialization.py', kind))
    assert quiet.filter(record_of('/home/me/my_code.py', kind))


def test_a_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(tiny_data_dir,
                                                                               tmp_path):
  """The training's files exceed a file size limit (RLIMIT_FSIZE, 40 KiB) as on a full disk:
  the checkpoint write fails, the run stops in one line and nothing is half-written."""
  workdir = tmp_path / 'workdir'
  done = subprocess.run(
      ['bash', '-c', f'ulimit -f 40; exec {sys.executable} -m hpe_jax.main '
       f'--config=configs/lifting.py:tiny --workdir={workdir} '
       f'--config.data_dir={tiny_data_dir}'],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert done.returncode == 1, done.stderr[-3000:]
  line = _one_error_line(done.stderr)
  assert line.startswith('Error: Could not write a checkpoint (File too large)'), line
  assert not os.path.exists(workdir / workdir_lib.LOCK_FILE)
  committed = [n for n in os.listdir(workdir / 'checkpoints') if n.isdigit()]
  assert all(os.path.isfile(workdir / 'checkpoints' / n / 'commit_success.txt')
             for n in committed)


def test_damaged_records_name_the_file_and_the_rebuild_command(tiny_data_dir, tmp_path):
  data_dir = str(tmp_path / 'data')
  shutil.copytree(tiny_data_dir, data_dir)
  builder = builders.load('h36m_synthetic/tiny', data_dir)
  shard = str(builder.info.splits['train'].filepaths[0])
  with open(shard, 'r+b') as f:
    f.seek(os.path.getsize(shard) // 2)
    f.write(b'\xff' * 4096)
  shutil.rmtree(pose_arrays.side_dir(builder))
  with pytest.raises(records.DamagedRecords) as raised:
    pose_arrays.load(builder, 'train')
  message = str(raised.value)
  assert '\n' not in message and message.startswith(f'{shard}: damaged record file')
  assert 'python -m tfds_h36m.prepare --dataset=h36m_synthetic/tiny' in message
