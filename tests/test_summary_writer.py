"""TensorBoard events written without TensorFlow read back by TensorBoard's own reader."""

import subprocess
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from conftest import ROOT
from hpe_jax import summary_writer


def _events(logdir):
  events = event_accumulator.EventAccumulator(
      str(logdir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0})
  events.Reload()
  return events


def test_scalars_and_images_read_back(tmp_path):
  writer = summary_writer.SummaryWriter(str(tmp_path))
  writer.write_scalars(3, {'train/loss': 1.25, 'eval/2d->3d/mpjpe': np.float32(87.5)})
  writer.write_scalars(7, {'train/loss': 0.5})
  grid = np.zeros((1, 6, 10, 3), np.uint8)
  grid[0, 2, 4] = (255, 0, 0)
  writer.write_images(7, {'eval/images': grid, 'float': np.full((1, 4, 5, 1), 0.5)})
  writer.close()

  events = _events(tmp_path)
  loss = events.Tensors('train/loss')
  assert [e.step for e in loss] == [3, 7]
  assert [float(e.tensor_proto.float_val[0]) for e in loss] == [1.25, 0.5]
  assert events.Tensors('eval/2d->3d/mpjpe')[0].tensor_proto.float_val[0] == 87.5
  assert events.summary_metadata['train/loss'].plugin_data.plugin_name == 'scalars'
  image = events.Images('eval/images')[0]
  assert (image.step, image.width, image.height) == (7, 10, 6)
  assert events.Images('float')[0].width == 5


def test_just_logging_writes_no_file(tmp_path):
  writer = summary_writer.SummaryWriter(str(tmp_path / 'run'), just_logging=True)
  writer.write_scalars(1, {'a': 1.0})
  writer.close()
  assert not (tmp_path / 'run').exists()


def test_progress_report_writes_rate_at_the_last_step(tmp_path):
  writer = summary_writer.SummaryWriter(str(tmp_path))
  report = summary_writer.ProgressReport(num_train_steps=10, writer=writer, every_secs=3600)
  report(0)
  with report.timed('eval'):
    pass
  report(5)  # not due: under every_secs since the last report
  report(10)  # the last step is always reported
  writer.close()
  rates = _events(tmp_path).Tensors('steps_per_sec')
  assert [e.step for e in rates] == [10] and rates[0].tensor_proto.float_val[0] > 0


def test_trainer_imports_no_tensorflow():
  code = ('import sys; from hpe_jax import train; from hpe_jax.evaluation import report; '
          'print(sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().splitlines()[-1] == '[]', out.stdout
