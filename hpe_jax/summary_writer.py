"""TensorBoard event files without TensorFlow, and the run's progress line.

clu's writers write through `tf.summary`, and importing TensorFlow costs about 4 s
of every start (a third of the time to the first step of a pose run); tensorboardX
imports PyTorch wherever it is installed. This module builds the events with
TensorBoard's own protos and record framing (the `tensorboard` package, no
TensorFlow import): scalars as the scalars plugin's tensors (what `tf.summary.scalar`
writes), images as PNG image summaries. Every value written is logged too, as clu's
logging writer does.
"""

import contextlib
import io
import os
import socket
import time

from absl import logging
import jax
import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.proto import tensor_pb2
from tensorboard.compat.proto import tensor_shape_pb2
from tensorboard.compat.proto import types_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.record_writer import RecordWriter

from hpe_jax import files
from hpe_jax import logs
from hpe_jax import parallel

# Intervals that spent more of their time compiling are the warm-up: they give no ETA.
COMPILING_SHARE = 0.1


def _scalar_value(tag, value):
  tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[float(value)],
                                  tensor_shape=tensor_shape_pb2.TensorShapeProto())
  return summary_pb2.Summary.Value(tag=tag, tensor=tensor,
                                   metadata=scalar_metadata.create_summary_metadata('', ''))


def _image_value(tag, image):
  """A PNG image summary of one [H, W, C] image (uint8, or floats in [0, 1])."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, 'PNG')
  height, width, channels = image.shape
  return summary_pb2.Summary.Value(tag=tag, image=summary_pb2.Summary.Image(
      height=height, width=width, colorspace=channels, encoded_image_string=buffer.getvalue()))


class SummaryWriter:
  """Scalars and images of a run: logged, and written as TensorBoard events in `logdir`
  (logged only when `just_logging`, as on every process but the first)."""

  def __init__(self, logdir: str, *, just_logging: bool = False):
    self._records = None
    if not just_logging:
      os.makedirs(logdir, exist_ok=True)
      name = f'events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}'
      self._records = RecordWriter(files.open_new(os.path.join(logdir, name)))
      self._write(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event):
    if self._records is not None:
      self._records.write(event.SerializeToString())

  def _write_values(self, step, values):
    self._write(event_pb2.Event(wall_time=time.time(), step=int(step),
                                summary=summary_pb2.Summary(value=values)))

  def write_scalars(self, step: int, scalars: dict, *, log: bool = True):
    """Scalars {tag: number} at `step`; logged too unless `log` is False (the caller
    says them in its own words)."""
    if log:
      logs.info_wrapped(f'[{step}] ', [f'{k}={float(v):.6g}' for k, v in scalars.items()])
    self._write_values(step, [_scalar_value(k, v) for k, v in scalars.items()])

  def write_images(self, step: int, images: dict):
    """Images {tag: [N, H, W, C]} at `step`; the first of each batch is written."""
    logs.info_wrapped(f'[{step}] Images: ',
                      [f'{k} {tuple(np.shape(v))}' for k, v in images.items()])
    self._write_values(step, [_image_value(k, np.asarray(v)[0]) for k, v in images.items()])

  def flush(self):
    if self._records is not None:
      self._records.flush()

  def close(self):
    if self._records is not None:
      self._records.close()
      self._records = None


class ProgressReport:
  """One progress line every `every_secs`: steps/s, progress, ETA, and the share of the
  run's time spent in named parts (`timed`); `steps_per_sec` goes to TensorBoard.

  The ETA counts only steps after the warm-up: an interval spent compiling for more than
  COMPILING_SHARE of its time (the first call of each train step, the first evaluation)
  gives none, and the estimate starts anew after it. Call `close` at the end of the run.
  """

  def __init__(self, num_train_steps: int, writer: SummaryWriter, every_secs: float):
    self._num_train_steps, self._writer, self._every_secs = num_train_steps, writer, every_secs
    self._start = self._last_time = time.monotonic()
    self._last_step = self._warm_step = self._warm_time = None
    self._time_per_part = {}
    self._compiles = parallel.CompileCounter()
    self._compiles.start()
    self._compile_secs_seen = 0.0

  def __call__(self, step: int):
    now = time.monotonic()
    if self._last_step is None:  # after the run's first call, which compiled
      self._last_step = self._warm_step = step
      self._last_time = self._warm_time = now
      self._compile_secs_seen = self._compiles.seconds
      return
    if step == self._last_step or (now - self._last_time < self._every_secs
                                   and step != self._num_train_steps):
      return
    steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    compiling = self._compiles.seconds - self._compile_secs_seen
    self._compile_secs_seen = self._compiles.seconds
    if compiling > COMPILING_SHARE * (now - self._last_time):  # warm-up
      self._warm_step, self._warm_time = step, now
      eta = f'no ETA yet ({compiling:.0f} s compiling)'
    else:
      rate = (step - self._warm_step) / max(now - self._warm_time, 1e-9)
      eta = f'ETA {(self._num_train_steps - step) / max(rate, 1e-9):.0f} s'
    total = now - self._start
    parts = ''.join(f', {100 * t / total:.1f}% {name}'
                    for name, t in sorted(self._time_per_part.items()))
    rate_text = f'{steps_per_sec:.1f}' if steps_per_sec >= 1 else f'{steps_per_sec:.2g}'
    logging.info('%s steps/s, %.1f%% (%d/%d), %s (%.0f s so far%s)', rate_text,
                 100 * step / self._num_train_steps, step, self._num_train_steps, eta, total,
                 parts)
    self._writer.write_scalars(step, {'steps_per_sec': steps_per_sec, 'uptime': total},
                               log=False)
    self._last_step, self._last_time = step, now

  def close(self):
    """Stops listening to XLA's compilations."""
    self._compiles.stop()

  @contextlib.contextmanager
  def timed(self, name: str):
    """Adds the wall time of the block to the part `name`."""
    start = time.monotonic()
    try:
      yield
    finally:
      self._time_per_part[name] = self._time_per_part.get(name, 0.0) + time.monotonic() - start


class StepTrace:
  """A `jax.profiler` trace in `logdir` of the steps from `first_step` until
  `num_steps` more have run (TensorBoard's profile plugin reads it)."""

  def __init__(self, logdir: str, first_step: int, num_steps: int):
    self._logdir, self._first, self._num = logdir, first_step, num_steps
    self._running = False

  def __call__(self, step: int):
    if not self._running and step == self._first:
      jax.profiler.start_trace(self._logdir)
      self._running = True
    elif self._running and step >= self._first + self._num:
      jax.profiler.stop_trace()
      self._running = False
      self._first = -1
