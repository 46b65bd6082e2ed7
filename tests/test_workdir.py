"""The workdir's lock and its record of the configs each run used."""

import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_config
from hpe_jax import train
from hpe_jax import workdir


def test_lock_stops_a_second_training_and_names_the_process(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    (tmp_path / workdir.LOCK_FILE).write_text(json.dumps(
        {'pid': holder.pid, 'host': os.uname().nodename, 'started': 'now'}))
    with pytest.raises(workdir.WorkdirBusy, match=f'process {holder.pid} on '):
      workdir.Lock(str(tmp_path)).acquire()
    with pytest.raises(workdir.WorkdirBusy, match='Another training is running'):
      train.train_and_evaluate(tiny_config(str(tmp_path / 'no_data')), str(tmp_path))
    assert not (tmp_path / 'config.json').exists()
  finally:
    holder.kill()
    holder.wait()
  # The holder is gone: its lock is stale and taken over.
  with workdir.Lock(str(tmp_path)) as lock:
    assert json.loads(open(lock.path).read())['pid'] == os.getpid()
  assert not (tmp_path / workdir.LOCK_FILE).exists()


def test_config_json_keeps_the_first_run_and_runs_record_changes(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir, num_epochs=1)
  train.train_and_evaluate(config, str(tmp_path))
  first = (tmp_path / 'config.json').read_text()
  config.num_epochs = 2
  config.optimizer.learning_rate = 5e-4
  train.train_and_evaluate(config, str(tmp_path))
  assert (tmp_path / 'config.json').read_text() == first
  records = [json.loads((tmp_path / 'runs' / name).read_text())
             for name in sorted(os.listdir(tmp_path / 'runs'))]
  assert len(records) == 2 and records[0]['changed_from_config_json'] == {}
  assert records[1]['changed_from_config_json'] == {'num_epochs': [1, 2],
                                                    'optimizer.learning_rate': [1e-3, 5e-4]}
  # The config the checkpoints were last trained with: config.json with the newest changes.
  latest = workdir.read_config(str(tmp_path))
  assert latest.num_epochs == 2 and latest.optimizer.learning_rate == 5e-4
