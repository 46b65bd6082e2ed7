"""Command line lifting of 2D keypoints (px) in a file to 3D poses (mm) with a trained workdir.

  python -m hpe_jax.predict --workdir=workdirs/lifting --input=keypoints.npz --output=poses.npz
  python -m hpe_jax.predict --workdir=workdirs/lifting --input=det.json --format=coco \
      --focal_length=1500 --center=960,540 --num_hypotheses=20 --output=poses.json --plot=poses.gif

Input (--input, N frames of 17 keypoints in px, H36M-17 or COCO-17 order per --format):
  .npz  `keypoints` (N, 17, 2) or (N, 17, 3) with confidences as the last
        column; optional `confidences` (N, 17), `focal_length` (scalar, (2,) or
        (N, 2)) and `center` ((2,) or (N, 2)) in px.
  .json {"keypoints": [[[x, y], ... 17 joints], ... N frames], optional
        "confidences": [[c, ... 17], ... N], "focal_length": [fx, fy] or f,
        "center": [cx, cy]}; a keypoint may be [x, y, confidence].
  .csv  a header row, one row per frame: x0, y0, ..., x16, y16; optional
        c0 ... c16 (confidences) and fx, fy, cx, cy (px); other columns ignored.

Camera: --focal_length/--center (or the file's intrinsics; the flags win) move
the keypoints into the reference camera (mean of the 4 Human3.6M cameras);
without intrinsics the keypoints are taken to come from such a camera (logged).

Output (--output, written to a temporary file and renamed: never partial):
  poses_3d_mm (N, 17, 3): root-relative 3D poses in the reference camera's
    frame (x right, y down, z forward), H36M-17 order (joint_names);
  hypotheses_3d_mm (N, K, 17, 3) with --num_hypotheses=K > 0;
  keypoints_2d_px (N, 17, 2): the model's input (H36M order, reference camera);
  confidences (N, 17) (H36M order) and low_confidence (N,) bool (mean
    confidence below --min_confidence) when confidences were given;
  joint_names, checkpoint_step. .npz holds arrays; .json the same keys as lists.
--plot=out.png draws the first poses (with their hypotheses); out.gif animates
every frame.
"""

import contextlib
import json
import os
import uuid

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from hpe_jax import logs
from hpe_jax.evaluation import figures
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import lifter as lifter_lib
from hpe_jax.inference import restore as restore_lib
from tfds_h36m import skeleton

OUTPUT_EXTENSIONS = ('.npz', '.json')
PLOT_EXTENSIONS = ('.png', '.gif')
PLOT_POSES = 4
GIF_MAX_FRAMES = 500

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training workdir (config.json, checkpoints/).')
_INPUT = flags.DEFINE_string('input', None, 'Keypoints file: .npz, .json or .csv.')
_OUTPUT = flags.DEFINE_string('output', None, 'Poses file to write: .npz or .json.')
_FORMAT = flags.DEFINE_enum('format', 'h36m', keypoints_lib.FORMATS,
                            'Joint order of the input: H36M-17 or COCO-17.')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "'best' (lowest saved test MPJPE), 'last' or a step number.")
_NUM_HYPOTHESES = flags.DEFINE_integer(
    'num_hypotheses', 0, 'Posterior samples per frame (0: only the posterior mean).',
    lower_bound=0)
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Scales the posterior std of the samples.',
                                  lower_bound=0.0)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the samples.')
_FOCAL_LENGTH = flags.DEFINE_list('focal_length', None, 'Camera focal length in px: f or fx,fy.')
_CENTER = flags.DEFINE_list('center', None, 'Camera principal point in px: cx,cy.')
_MIN_CONFIDENCE = flags.DEFINE_float(
    'min_confidence', 0.3, 'Frames whose mean keypoint confidence is below this are flagged.')
_PLOT = flags.DEFINE_string('plot', None, 'Optional picture: .png (first poses) or .gif (all).')
flags.mark_flags_as_required(['workdir', 'input', 'output'])


def check_paths(input_path, output_path, plot_path=None):
  """Fails before any work on an unknown input, output or plot extension."""
  keypoints_lib.check_input_path(input_path)
  for path, allowed, what in ((output_path, OUTPUT_EXTENSIONS, 'output'),
                              (plot_path, PLOT_EXTENSIONS, 'plot')):
    if path is not None:
      ext = os.path.splitext(path)[1].lower()
      if ext not in allowed:
        raise keypoints_lib.KeypointError(
            f'Unsupported {what} file {path}: extension {ext or "(none)"!r}; '
            f'use {", ".join(allowed)}.')


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path` (same extension), renamed to `path` on success only."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  base, ext = os.path.splitext(os.path.basename(path))
  tmp = os.path.join(directory, f'.{base}.{uuid.uuid4().hex}.tmp{ext}')
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_output(path, outputs):
  """Writes the outputs as .npz arrays or .json lists, atomically."""
  with atomic_path(path) as tmp:
    if path.lower().endswith('.npz'):
      with open(tmp, 'wb') as f:
        np.savez(f, **outputs)
    else:
      serial = {k: np.asarray(v).tolist() for k, v in outputs.items()}
      with open(tmp, 'w') as f:
        json.dump(serial, f)


def _intrinsics(kp, focal_length, center):
  """Flag intrinsics override the file's; returns (focal_length, center) or (None, None)."""
  if focal_length is not None or center is not None:
    if focal_length is None or center is None:
      raise keypoints_lib.KeypointError('Give both --focal_length and --center, or neither.')
    focal_length = np.asarray([float(v) for v in focal_length])
    center = np.asarray([float(v) for v in center])
    if focal_length.size not in (1, 2) or center.size != 2:
      raise keypoints_lib.KeypointError('--focal_length takes f or fx,fy and --center cx,cy.')
    if not np.all(focal_length > 0) or not np.all(np.isfinite(center)):
      raise keypoints_lib.KeypointError('--focal_length must be positive and --center finite.')
    if kp.focal_length is not None:
      logging.info('Using the flags\' intrinsics instead of the input file\'s.')
    return focal_length if focal_length.size == 2 else focal_length[0], center
  if (kp.focal_length is None) != (kp.center is None):
    raise keypoints_lib.KeypointError('The input gives only one of focal_length and center; '
                                      'give both, or neither.')
  return kp.focal_length, kp.center


def predict_file(lifter, input_path, output_path, *, fmt='h36m', num_hypotheses=0,
                 temperature=1.0, seed=0, focal_length=None, center=None, min_confidence=0.3,
                 plot=None):
  """Reads keypoints, lifts them, writes the poses (and the optional plot); returns the outputs."""
  check_paths(input_path, output_path, plot)
  if fmt not in keypoints_lib.FORMATS:
    raise keypoints_lib.KeypointError(f'Unknown keypoint format {fmt!r}; use one of '
                                      f'{keypoints_lib.FORMATS}.')
  kp = keypoints_lib.read_keypoints(input_path)
  focal_length, center = _intrinsics(kp, focal_length, center)
  points, confidences = kp.keypoints, kp.confidences
  if fmt == 'coco':
    points, confidences = keypoints_lib.coco_to_h36m(points, confidences)
  if focal_length is not None:
    points = keypoints_lib.to_reference_camera(points, focal_length, center)
    logging.info('Moved the keypoints from the camera f = %s, c = %s px into the reference '
                 'camera.', np.round(focal_length, 1).tolist(), np.round(center, 1).tolist())
  logging.info('Lifting %d frames (%s keypoints) with step %d of %s.', len(points), fmt,
               lifter.step, lifter.workdir)
  lifted = lifter.lift(points, num_hypotheses, temperature, seed=seed)
  outputs = {'poses_3d_mm': lifted.poses_mm.astype(np.float32),
             'keypoints_2d_px': points.astype(np.float32),
             'joint_names': np.asarray(skeleton.JOINT_NAMES),
             'checkpoint_step': np.asarray(lifter.step)}
  if lifted.hypotheses_mm is not None:
    outputs['hypotheses_3d_mm'] = lifted.hypotheses_mm.astype(np.float32)
  flagged = None
  if confidences is not None:
    flagged = keypoints_lib.low_confidence(confidences, min_confidence)
    outputs['confidences'] = confidences.astype(np.float32)
    outputs['low_confidence'] = flagged
    if flagged.any():
      logging.warning('%d of %d frames have a mean confidence below %g (flagged in '
                      'low_confidence).', flagged.sum(), len(flagged), min_confidence)
  write_output(output_path, outputs)
  logging.info('Wrote %s.', output_path)
  if plot:
    _plot(plot, lifted, flagged)
    logging.info('Wrote %s.', plot)
  return outputs


def _plot(path, lifted, flagged):
  def title(i):
    return f'frame {i}' + (' (low confidence)' if flagged is not None and flagged[i] else '')

  with atomic_path(path) as tmp:
    if path.lower().endswith('.gif'):
      n = len(lifted.poses_mm)
      frames = np.linspace(0, n - 1, min(n, GIF_MAX_FRAMES)).round().astype(int)
      if len(frames) < n:
        logging.info('Animating %d of the %d frames (evenly spaced).', len(frames), n)
      figures.save_animation(lifted.poses_mm[frames], tmp, titles=[title(i) for i in frames])
    else:
      k = min(PLOT_POSES, len(lifted.poses_mm))
      hyps = lifted.hypotheses_mm[:k] if lifted.hypotheses_mm is not None else None
      fig = figures.pose_panels(lifted.poses_mm[:k], [title(i) for i in range(k)],
                                hypotheses_mm=hyps)
      figures.save_png(fig, tmp)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  logs.quiet_library_logs()
  try:
    check_paths(_INPUT.value, _OUTPUT.value, _PLOT.value)
    lifter = lifter_lib.load_lifter(_WORKDIR.value, _CHECKPOINT.value)
    predict_file(lifter, _INPUT.value, _OUTPUT.value, fmt=_FORMAT.value,
                 num_hypotheses=_NUM_HYPOTHESES.value, temperature=_TEMPERATURE.value,
                 seed=_SEED.value, focal_length=_FOCAL_LENGTH.value, center=_CENTER.value,
                 min_confidence=_MIN_CONFIDENCE.value, plot=_PLOT.value)
  except (keypoints_lib.KeypointError, restore_lib.CheckpointError) as e:
    raise SystemExit(f'Error: {e}') from e


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main)
