"""Command line lifting of 2D keypoints (px) to 3D poses (mm), with the packaged lifter or a
trained workdir.

  python -m hpe_jax.predict --input=results.json --format=coco_results --output=poses.json
  python -m hpe_jax.predict --workdir=WORKDIR --input=keypoints.npz --output=poses.npz
  python -m hpe_jax.predict --workdir=WORKDIR --input=results.json --format=coco_results
      --fps=30 --smooth=both --output=poses.csv,poses.json --plot=poses.mp4
  python -m hpe_jax.predict --workdir=WORKDIR --input=openpose_json/ --format=openpose25
      --focal_length=1500 --center=960,540 --output=poses.npz
  python -m hpe_jax.predict --lifter=cmu_temporal --input=results.json
      --format=coco_results --fps=30 --resample --output=poses.npz

Input (--input, --format): array files of one person (.npz/.json/.csv, `keypoints.py`),
detectors' lists of detections (COCO results / AlphaPose JSON) and OpenPose's per-frame
JSON files (`detections.py`), mmpose's JSON (--format=mmpose, its layout the file's:
`mmpose.py`), in the layouts of `layouts.py`: H36M-17, COCO-17, Halpe-26, OpenPose BODY_25
and COCO-18, BlazePose-33 (fractions of --image_size). Every layout is mapped to H36M-17 by
one derivation (`layouts.to_h36m`). Coordinates beyond 1e5 px are refused (--clip_input
clips them). Keypoint scores become confidences in [0, 1]: negative ones 0, and all divided
by the input's highest where some are above 1 (`detections.scores_as_confidences`). In every
format a keypoint with a NaN, inf or null number is missing, as a detector's (0, 0, 0) is:
confidence 0, interpolated in time (the count is logged; `keypoints.mark_missing`). An
input with nobody in it is one line, '<path>: no people/keypoints in the file'.
Keypoints that do not look like people in the --format's layout (`layout_check`: COCO-17
read as H36M-17 or the reverse, normalised coordinates, bodies upside down in most frames)
are refused in one line naming the likely cause (exit status 1); --skip_layout_check
lifts them as they are.

People and time (`tracks.py`): one track per person (the input's track ids, else
`tracks.link`'s: each frame's detections matched to the tracks so far by their keypoints;
logged); a joint missing in some frames of a track is interpolated in time;
frames with nobody are fine. --fps gives times (time_s) and is needed for --smooth.

Temporal lifters (model.pose_net 'temporal', window of T frames): each track is lifted as a
sequence of its own, its rows as consecutive frames (a window never crosses into another
track; its ends repeat the track's edge frames). They were trained at 50 fps: a --fps more
than 1% off logs a warning, as the windows then span T frames at the input's rate.
--resample (needs --fps) interpolates each track's keypoints linearly onto a 50 fps grid
spanning it (filling frame gaps), lifts that, and interpolates the poses back to the
track's frames (`resample.py`); it does not take --num_hypotheses (interpolated samples
would narrow their spread), and a single-frame lifter ignores it (logged).

Smoothing (--smooth=2d|3d|both, off by default; `smoothing.py`): the One-Euro filter on
the 2D keypoints and/or the 3D poses of each track; the jitter (mean joint acceleration)
before and after is logged (px/frame^2 in 2D, mm/frame^2 in 3D).

Lifter: without --workdir, a lifter that ships with hpe_jax (trained on motion capture for
any camera; docs/model_card.md): --lifter=cmu (the default, `packaged.DEFAULT`) lifts each
frame alone, --lifter=cmu_temporal reads 27 frames of each track (steadier, for video), both
trained on CMU's capture (free for commercial use); --lifter=cmu_bandai lifts each frame
alone, trained on CMU's and Bandai Namco's (better on motion unlike CMU's; non-commercial use
only, CC BY-NC 4.0); its licence is logged. Or --workdir, a workdir or a packaged lifter's
folder.

Camera: --focal_length/--center (or the file's intrinsics; the flags win); without them, one
estimate for every lifter from --image_size, else from the smallest common frame holding the
keypoints (`camera.estimate`); stated in one line, and in the output's camera_source.
--distortion: a calibrated camera's lens distortion (OpenCV's k1,k2,p1,p2[,k3]), undone
before lifting (`camera.undistort`). A lifter for any camera (the packaged one) reads the
keypoints on their camera's normalised image plane; a pixel lifter (configs trained on
Human3.6M's pixels) reads them moved into its reference camera (mean of the 4 Human3.6M
cameras). The packaged lifters then move their answer toward the keypoints' rays
(`ray_refinement`), as far as --keypoint_noise (the keypoints' expected error, a fraction of
the person's size; default 0.01, detector-like; 0 for exact keypoints) allows.

Height (--height_mm): a lifter guesses a person's size from the body's proportions (the 2D
pose of a body scaled about the camera is the same); where the person's height (floor to
head top) is known, the poses are scaled to it and the root placed to match
(`body_height.py`), and the output holds height_mm.

Engine (--engine, `lifter.ENGINES`): JAX by default; 'onnx' and 'onnx_int8' run the
lifter's ONNX graph (float32, or its int8 form: the fastest on a CPU, about 1 mm from
JAX's poses) under onnxruntime, which needs the export extra; hypotheses come from JAX.

Outputs (--output, --plot: comma-separated lists; `writers.py`), one row per (frame,
person), sorted by person then frame:
  poses_3d_mm (M, 17, 3): root-relative 3D poses in the camera's frame (x right, y down, z
    forward; a pixel lifter's reference camera), H36M-17 order (joint_names);
  root_3d_mm (M, 3): the root's (pelvis's) position in that camera, fitted to the keypoints
    (least squares on the pinhole projection): the trajectory;
  camera_focal_length_px, camera_center_px (M, 2) and camera_source: the intrinsics used and
    where they come from ('given', or how they were estimated); camera_distortion (5,) with
    --distortion (OpenCV's k1, k2, p1, p2, k3);
  hypotheses_3d_mm (M, K, 17, 3) with --num_hypotheses=K > 0 (never smoothed);
  keypoints_2d_px (M, 17, 2): the 2D input (H36M order; a pixel lifter's, in its reference
    camera; missing limb joints NaN, placed at their parents by the lifter);
  frame (M,), person_id (M,), num_frames; time_s (M,) and fps with --fps; height_mm with
    --height_mm; image_id (M,) where the input names its frames;
  confidences (M, 17) and low_confidence (M,) (mean confidence below --min_confidence)
    when the input has confidences; checkpoint_step.
.npz holds arrays, .json the same keys as lists (strict JSON, null for missing), .csv one
line per row; --plot .png (first poses), .gif or .mp4 (the longest track). Every file is
written under a temporary name and renamed when all are written: a failed run leaves none.

Memory: the hypotheses (M, K, 17, 3) float32, their sampling and the writing of a .json of
them, and --resample's grids are estimated before they are made; what exceeds the budget
(`hpe_jax.memory`: 2 GB, --memory_budget_gb) is refused in one line, exit status 2.

Exit status: 0 done; 1 the data cannot be lifted (file contents, a damaged checkpoint,
non-finite results); 2 the arguments do not fit (flags, paths, --format for the file, a
workdir without a 2d->3d pair, work over the memory budget). Each error is one line,
`Error: ...`.
"""

import dataclasses
import os
import re
from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from hpe_jax import cli
from hpe_jax import files
from hpe_jax import logs
from hpe_jax import memory
from hpe_jax import pose_noise
from hpe_jax import ray_refinement
from hpe_jax.inference import body_height
from hpe_jax.inference import camera as camera_lib
from hpe_jax.inference import detections
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import layout_check
from hpe_jax.inference import layouts
from hpe_jax.inference import lifter as lifter_lib
from hpe_jax.inference import onnx_model
from hpe_jax.inference import packaged
from hpe_jax.inference import resample as resample_lib
from hpe_jax.inference import restore as restore_lib
from hpe_jax.inference import smoothing
from hpe_jax.inference import tracks
from hpe_jax.inference import writers
from tfds_h36m import skeleton

SMOOTH_CHOICES = ('none', '2d', '3d', 'both')
EXIT_DATA, EXIT_USAGE = cli.EXIT_DATA, cli.EXIT_USAGE
DEFAULT_ANIMATION_FPS = 10.0
UsageError = keypoints_lib.UsageError

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Training workdir (config.json, checkpoints/) or packaged lifter folder; '
    'default: a lifter that ships with hpe_jax (--lifter).')
_LIFTER = flags.DEFINE_string(
    'lifter', None, "A lifter that ships with hpe_jax (motion capture, any camera): 'cmu' "
    "(the default; one frame at a time) or 'cmu_temporal' (27 frames of each track: steadier, "
    "for video), both free for commercial use; 'cmu_bandai' (one frame at a time, trained on "
    'CMU and Bandai Namco: better on motion unlike CMU\'s; non-commercial use only, CC BY-NC '
    '4.0). Not with --workdir.')
_INPUT = flags.DEFINE_string(
    'input', None, 'Keypoints: a .npz, .json or .csv file; OpenPose: a folder of per-frame '
    '.json files, a glob or a comma-separated list.')
_OUTPUT = flags.DEFINE_list('output', None, 'Poses file(s) to write: .npz, .json, .csv.')
_FORMAT = flags.DEFINE_enum('format', 'h36m', layouts.FORMATS,
                            'Keypoint layout of the input (README: "Lifting your own keypoints").')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "'best' (lowest saved test MPJPE), 'last' or a step number.")
cli.check_checkpoint_flag()
_NUM_HYPOTHESES = flags.DEFINE_integer(
    'num_hypotheses', 0, 'Posterior samples per pose (0: only the posterior mean).',
    lower_bound=0)
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Scales the posterior std of the samples.',
                                  lower_bound=0.0)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the samples.')
_FOCAL_LENGTH = flags.DEFINE_list('focal_length', None, 'Camera focal length in px: f or fx,fy.')
_CENTER = flags.DEFINE_list('center', None, 'Camera principal point in px: cx,cy.')
_DISTORTION = flags.DEFINE_list(
    'distortion', None, 'The calibrated camera\'s lens distortion, OpenCV\'s coefficients '
    'k1,k2,p1,p2[,k3] (with --focal_length/--center or the file\'s intrinsics): undone before '
    'lifting.')
_IMAGE_SIZE = flags.DEFINE_list(
    'image_size', None, 'Image width,height in px: --format=blazepose33\'s fractions, and the '
    'camera estimate of a lifter for any camera when no intrinsics are given.')
_MIN_CONFIDENCE = flags.DEFINE_float(
    'min_confidence', 0.3, 'Poses whose mean keypoint confidence is below this are flagged.',
    lower_bound=0.0, upper_bound=1.0)
_FPS = flags.DEFINE_float('fps', None, 'Frames per second of the input (times, smoothing, '
                          'a temporal lifter\'s rate check).')
_RESAMPLE = flags.DEFINE_bool(
    'resample', False, 'Temporal lifters: lift each track resampled to the training data\'s '
    'frame rate (50 fps), the poses interpolated back to its frames; needs --fps.')
_SMOOTH = flags.DEFINE_enum('smooth', 'none', SMOOTH_CHOICES,
                            'One-Euro smoothing of the 2D input, the 3D output, or both.')
_SMOOTH_MIN_CUTOFF = flags.DEFINE_float('smooth_min_cutoff', smoothing.MIN_CUTOFF_HZ,
                                        'One-Euro minimum cutoff frequency (Hz).')
_SMOOTH_BETA_2D = flags.DEFINE_float('smooth_beta_2d', smoothing.BETA_2D_PER_PX,
                                     'One-Euro speed coefficient in 2D (1/px).')
_SMOOTH_BETA_3D = flags.DEFINE_float('smooth_beta_3d', smoothing.BETA_3D_PER_MM,
                                     'One-Euro speed coefficient in 3D (1/mm).')
_CLIP_INPUT = flags.DEFINE_bool(
    'clip_input', False, 'Clip coordinates beyond 1e5 px (with a warning) instead of '
    'refusing them.')
_SKIP_LAYOUT_CHECK = flags.DEFINE_bool(
    'skip_layout_check', False, 'Lift keypoints that do not look like people in the '
    '--format\'s layout (e.g. COCO-17 read as H36M-17, normalised, upside down) as they are.')
_KEYPOINT_NOISE = flags.DEFINE_float(
    'keypoint_noise', ray_refinement.DEFAULT_KEYPOINT_NOISE, 'The keypoints\' expected error, '
    'a fraction of the person\'s size (0: exact, e.g. projected motion capture); how far a '
    'lifter with ray refinement (the packaged ones) moves its answer onto their rays.')
_HEIGHT_MM = flags.DEFINE_float(
    'height_mm', None, 'The person\'s height in mm (floor to head top), where known: the 3D '
    'poses and the root\'s distance are scaled to it (otherwise the lifter guesses the size '
    'from the body\'s proportions). One height for every person of the input.')
_PLOT = flags.DEFINE_list('plot', None, 'Optional picture(s): .png, .gif or .mp4.')
_ENGINE = flags.DEFINE_enum(
    'engine', 'jax', lifter_lib.ENGINES, "What lifts the poses: 'jax', or onnxruntime "
    "('onnx', within 0.01 mm; 'onnx_int8', faster and about 1 mm off; the export extra).")
flags.mark_flags_as_required(['input', 'output'])


@dataclasses.dataclass
class Options:
  """What to read and how to lift it (the flags of the same names; `fmt` is --format)."""
  fmt: str = 'h36m'
  num_hypotheses: int = 0
  temperature: float = 1.0
  seed: int = 0
  focal_length: Optional[Sequence] = None
  center: Optional[Sequence] = None
  distortion: Optional[Sequence] = None
  image_size: Optional[Sequence] = None
  min_confidence: float = 0.3
  fps: Optional[float] = None
  smooth: str = 'none'
  smooth_min_cutoff: float = smoothing.MIN_CUTOFF_HZ
  smooth_beta_2d: float = smoothing.BETA_2D_PER_PX
  smooth_beta_3d: float = smoothing.BETA_3D_PER_MM
  clip_input: bool = False
  resample: bool = False
  skip_layout_check: bool = False
  keypoint_noise: float = ray_refinement.DEFAULT_KEYPOINT_NOISE
  height_mm: Optional[float] = None
  memory_budget_gb: Optional[float] = None  # None: --memory_budget_gb, or its default


def _as_list(paths):
  if paths is None:
    return []
  return [paths] if isinstance(paths, str) else list(paths)


def _is_file_set(path):
  """Whether --input names several files (a folder, a glob or a comma-separated list)."""
  return os.path.isdir(path) or bool(re.search(r'[*?[]', path)) or (
      ',' in path and not os.path.exists(path))


def check_paths(input_path, output_paths, plot_paths=None):
  """Fails before any work on an unknown input, output or plot extension, or an output path
  that is a directory or given twice."""
  if not _is_file_set(input_path):
    keypoints_lib.check_input_path(input_path)
  outputs, plots = _as_list(output_paths), _as_list(plot_paths)
  if not outputs:
    raise UsageError('Give at least one --output file (.npz, .json or .csv).')
  for path in outputs:
    writers.check_path(path, writers.POSE_EXTENSIONS, 'output')
  for path in plots:
    writers.check_path(path, writers.PICTURE_EXTENSIONS, 'plot')
  everything = [os.path.abspath(p) for p in outputs + plots]
  if len(set(everything)) < len(everything):
    raise UsageError('An output or plot path is given twice.')


def _numbers(values, flag, count):
  """Flag values (strings) as floats, `count` of them (a tuple of allowed counts)."""
  values = [values] if np.ndim(values) == 0 else list(values)
  text = ','.join(str(v) for v in values)
  try:
    numbers = np.asarray([float(v) for v in values], np.float64)
  except (TypeError, ValueError):
    raise UsageError(f'--{flag} takes numbers, got {text!r}.') from None
  if numbers.size not in count or not np.all(np.isfinite(numbers)):
    raise UsageError(f'--{flag} takes {" or ".join(str(c) for c in count)} finite numbers, '
                     f'got {text!r}.')
  return numbers


def _flag_intrinsics(options):
  """(focal_length f or (2,), center (2,)) px of --focal_length/--center, or (None, None)."""
  if options.focal_length is None and options.center is None:
    return None, None
  if options.focal_length is None or options.center is None:
    raise UsageError('Give both --focal_length and --center, or neither.')
  focal_length = _numbers(options.focal_length, 'focal_length', (1, 2))
  center = _numbers(options.center, 'center', (2,))
  if not np.all(focal_length > 0):
    raise UsageError('--focal_length must be positive.')
  return focal_length if focal_length.size == 2 else focal_length[0], center


def _flag_distortion(options):
  """OpenCV's (k1, k2, p1, p2, k3) of --distortion, or None."""
  if options.distortion is None:
    return None
  return camera_lib.distortion_coefficients(_numbers(options.distortion, 'distortion', (4, 5)))


def check_options(options):
  """UsageError for options that do not fit; returns the image size (2,) px or None."""
  if options.fmt not in layouts.FORMATS:
    raise UsageError(f'Unknown keypoint format {options.fmt!r}; use one of '
                     f'{", ".join(layouts.FORMATS)}.')
  if options.smooth not in SMOOTH_CHOICES:
    raise UsageError(f'--smooth takes one of {", ".join(SMOOTH_CHOICES)}, '
                     f'got {options.smooth!r}.')
  if options.fps is not None and not options.fps > 0:
    raise UsageError(f'--fps must be positive, got {options.fps:g}.')
  if not 0 <= options.keypoint_noise < np.inf:
    raise UsageError(f'--keypoint_noise must be a number >= 0, got {options.keypoint_noise:g}.')
  if options.height_mm is not None:
    try:
      body_height.check_height(options.height_mm, 1)
    except ValueError as e:
      raise UsageError(f'--{e}') from None
  if not 0 <= options.min_confidence <= 1:
    raise UsageError(f'--min_confidence must be in [0, 1], got {options.min_confidence:g}.')
  if options.smooth != 'none' and options.fps is None:
    raise UsageError(f'--smooth={options.smooth} needs --fps (the filter works in seconds).')
  if options.resample and options.fps is None:
    raise UsageError('--resample needs --fps (the input\'s frame rate).')
  if options.resample and options.num_hypotheses:
    raise UsageError('--resample does not take --num_hypotheses (interpolated samples would '
                     'narrow their spread); lift the hypotheses without --resample.')
  if not options.smooth_min_cutoff > 0 or min(options.smooth_beta_2d,
                                              options.smooth_beta_3d) < 0:
    raise UsageError('--smooth_min_cutoff must be positive and --smooth_beta_2d/3d not '
                     'negative.')
  _flag_intrinsics(options)
  _flag_distortion(options)
  if options.image_size is None:
    return None
  size = _numbers(options.image_size, 'image_size', (2,))
  if not np.all(size > 0):
    raise UsageError(f'--image_size must be positive, got {size.tolist()}.')
  return size


def read_input(input_path, options):
  """The input's rows in H36M-17 px (`tracks.Rows`, sorted by person, frame), missing joints
  interpolated per track; tracks with a joint never seen are left out (warning)."""
  image_size = check_options(options)
  rows = detections.read(input_path, options.fmt, image_size=image_size)
  layout = rows.layout  # the --format's, or the one an mmpose file names
  kp, conf = keypoints_lib.check_plausible(rows.keypoints, rows.confidences,
                                           clip=options.clip_input, path=input_path)
  if not options.skip_layout_check:
    layout_check.check(kp, layout, path=input_path)
  rows.keypoints, rows.confidences = layouts.to_h36m(layout, kp, conf)
  rows.keypoints, never = tracks.fill_missing(rows.keypoints, rows)
  limbs = {p for p, joints in never.items()
           if {skeleton.JOINT_NAMES[j] for j in joints} <= set(pose_noise.LIMB_JOINTS)}
  for person, joints in never.items():
    names = ', '.join(skeleton.JOINT_NAMES[j] for j in joints)
    if person in limbs:
      logging.warning('Person %d: %s never seen in its frames, placed at the parent joints.',
                      person, names)
    else:
      logging.warning('Person %d is left out: %s never seen in its frames.', person, names)
  if len(never) > len(limbs):
    rows = rows.take(~np.isin(rows.person, list(set(never) - limbs)))
  if not len(rows):
    raise keypoints_lib.KeypointError(f'{input_path}: no person has every joint in some frame; '
                                      'nothing to lift.')
  logging.info('Read %d poses of %d person(s) in %d frames (%s) from %s.', len(rows),
               len(np.unique(rows.person)), rows.num_frames, options.fmt, input_path)
  return rows


def check_memory(num_poses, options, output_paths):
  """Refuses (memory.BudgetError, exit status 2), before the lifter loads, hypotheses whose
  float32 array and the writing of `output_paths` (a .json holds Python numbers) would not
  fit the memory budget; the lifter checks its sampling again (`lifter.Lifter.lift`)."""
  if not options.num_hypotheses:
    return
  # float32, a byte of the finiteness check's mask, and what a writer holds besides
  per_number = 5 + writers.write_bytes_per_number(_as_list(output_paths))
  numbers = float(num_poses) * options.num_hypotheses * len(skeleton.JOINT_NAMES) * 3
  memory.check_hypotheses(num_poses, options.num_hypotheses, numbers * per_number,
                          options.memory_budget_gb)


def _intrinsics(rows, options):
  """Flag intrinsics override the file's; returns (focal_length, center) or (None, None)."""
  focal_length, center = _flag_intrinsics(options)
  if focal_length is not None:
    if rows.focal_length is not None:
      logging.info('Using the flags\' intrinsics instead of the input file\'s.')
    return focal_length, center
  if (rows.focal_length is None) != (rows.center is None):
    raise keypoints_lib.KeypointError('The input gives only one of focal_length and center; '
                                      'give both, or neither.')
  return rows.focal_length, rows.center


def _smoothed(values, rows, options, beta):
  """One-Euro smoothing of every track of values (M, J, D)."""
  return tracks.per_track(
      lambda v, frames: smoothing.one_euro(v, tracks.times_s(frames, options.fps),
                                           min_cutoff_hz=options.smooth_min_cutoff, beta=beta),
      values, rows)


def _log_jitter(what, unit, before, after):
  logging.info('Jitter of the %s (mean joint acceleration): %.2f %s/frame^2 without smoothing, '
               '%.2f with.', what, before, unit, after)


def _log_temporal(lifter, options):
  """Logs how a temporal lifter reads the tracks (and a --fps off its training rate);
  returns whether to resample. Single-frame lifters: --resample is ignored (logged)."""
  window, rate_hz = lifter.window, lifter.frame_rate_hz
  if not window:
    if options.resample:
      logging.info('--resample is ignored: the lifter reads single frames, no window.')
    return False
  logging.info('Temporal lifter: each pose reads a window of %d frames of its own track (%s).',
               window, 'ending at it' if lifter.config.model.causal else 'centred on it')
  if options.resample:
    logging.info('Resampling each track from %g fps to the training data\'s %g fps, and the '
                 'poses back to its frames.', options.fps, rate_hz)
  elif options.fps is not None and abs(options.fps - rate_hz) > 0.01 * rate_hz:
    logging.warning('--fps=%g is not the training data\'s %g fps: the windows will span %d '
                    'frames at %g fps (%.2f s) instead of at %g fps (%.2f s); --resample lifts '
                    'at %g fps.', options.fps, rate_hz, window, options.fps,
                    window / options.fps, rate_hz, window / rate_hz, rate_hz)
  return options.resample


def _lift_resampled(lifter, points, rows, options, camera):
  """Poses (M, 17, 3) mm of points (M, 17, 2) px: each track lifted as one sequence at the
  lifter's frame rate, back at its own frames (`resample.through_rate`; a per-frame camera
  is taken at its mean). Every track's grid is checked against the memory budget first."""
  poses = np.empty(points.shape[:-1] + (3,))
  mean = dataclasses.replace(camera, focal_length=np.reshape(camera.focal_length, (-1, 2)).mean(
      axis=0), center=np.reshape(camera.center, (-1, 2)).mean(axis=0))
  times = tracks.times_s(rows.frame, options.fps)
  track_slices = tracks.slices(rows)
  for person, rows_of in track_slices.items():
    resample_lib.check_grid_memory(times[rows_of], lifter.frame_rate_hz,
                                   np.prod(points.shape[1:]), f'person {person}\'s track',
                                   options.memory_budget_gb)
  for rows_of in track_slices.values():
    poses[rows_of] = resample_lib.through_rate(
        lambda kp: lifter.lift(kp, camera=mean, check_layout=False,
                               keypoint_noise=options.keypoint_noise,
                               height_mm=options.height_mm).poses_mm, points[rows_of],
        times[rows_of], lifter.frame_rate_hz, budget=options.memory_budget_gb)
  return poses


def _lift_function(lifter, rows, options, camera):
  """(points (M, 17, 2) px of `camera`, num_hypotheses) -> Lifted: a temporal lifter reads
  each track as a sequence of its own (windows never cross tracks), at 50 fps with
  --resample."""
  resample = _log_temporal(lifter, options)

  def lift(points, num_hypotheses=0):
    if resample:
      return lifter_lib.Lifted(_lift_resampled(lifter, points, rows, options, camera), None)
    return lifter.lift(points, num_hypotheses, options.temperature, seed=options.seed,
                       sequence_ids=rows.person, camera=camera, check_layout=False,
                       memory_budget_gb=options.memory_budget_gb,
                       keypoint_noise=options.keypoint_noise, height_mm=options.height_mm)
  return lift


def _camera(lifter, rows, options):
  """(the 2D input (M, 17, 2) px the lifter reads, the `camera.Intrinsics` of the points):
  the rows' camera (given, or the one estimate; `Lifter.camera` states it) for a lifter for
  any camera, which reads the keypoints as they are; a pixel lifter reads them moved into
  its reference camera, whose source names the rows' camera."""
  focal_length, center = _intrinsics(rows, options)
  distortion = _flag_distortion(options)
  if distortion is not None and focal_length is None:
    raise UsageError('--distortion needs its camera\'s intrinsics: --focal_length and --center, '
                     'or the input file\'s.')
  camera = lifter.camera(rows.keypoints, focal_length, center, check_options(options),
                         distortion)
  if lifter.any_camera:
    return rows.keypoints, camera
  points = camera.moved_into(rows.keypoints, *keypoints_lib.reference_intrinsics())
  return points, lifter.reference_camera('the lifter\'s reference camera (Human3.6M\'s mean), '
                                         f'the keypoints moved into it from {camera.describe()}')


def lift_rows(lifter, rows, options):
  """Lifts the rows (camera, smoothing); returns (poses (M, 17, 3), hypotheses or None, the
  2D input (M, 17, 2), the root's positions (M, 3), the camera) in mm and px, or a
  KeypointError for non-finite results."""
  points, camera = _camera(lifter, rows, options)
  raw_points = points
  if options.smooth in ('2d', 'both'):
    points = _smoothed(points, rows, options, options.smooth_beta_2d)
    _log_jitter('2D keypoints', 'px', smoothing.jitter(tracks.track_values(raw_points, rows)),
                smoothing.jitter(tracks.track_values(points, rows)))
  logging.info('Lifting %d poses with step %d of %s.', len(points), lifter.step, lifter.workdir)
  lift = _lift_function(lifter, rows, options, camera)
  lifted = lift(points, options.num_hypotheses)
  poses = lifted.poses_mm
  if options.smooth != 'none':
    unsmoothed = poses if options.smooth == '3d' else lift(raw_points).poses_mm
    if options.smooth in ('3d', 'both'):
      poses = _smoothed(poses, rows, options, options.smooth_beta_3d)
    _log_jitter('3D poses', 'mm', smoothing.jitter(tracks.track_values(unsmoothed, rows)),
                smoothing.jitter(tracks.track_values(poses, rows)))
  for name, values in (('poses', poses), ('hypotheses', lifted.hypotheses_mm)):
    if values is not None and not np.all(np.isfinite(values)):
      bad = np.flatnonzero(~np.all(np.isfinite(values.reshape(len(values), -1)), axis=-1))
      raise keypoints_lib.KeypointError(
          f'The model gave non-finite {name} for {len(bad)} of {len(values)} poses (first: '
          f'frame {rows.frame[bad[0]]}, person {rows.person[bad[0]]}); nothing written.')
  root = lifted.root_mm
  if root is None or poses is not lifted.poses_mm:  # resampled or smoothed in 3D: fit again
    root = lifter.fit_root(pose_noise.fill_missing(points), poses, camera)
  return poses, lifted.hypotheses_mm, points, root, camera


def make_outputs(lifter, rows, lifted, options):
  """The outputs dict (module docstring) of lift_rows' answer."""
  poses, hypotheses, points, root, camera = lifted
  outputs = {'poses_3d_mm': poses.astype(np.float32),
             'root_3d_mm': root.astype(np.float32),
             'keypoints_2d_px': points.astype(np.float32),
             'camera_focal_length_px': np.broadcast_to(
                 np.asarray(camera.focal_length, np.float32), points.shape[:1] + (2,)),
             'camera_center_px': np.broadcast_to(np.asarray(camera.center, np.float32),
                                                 points.shape[:1] + (2,)),
             'camera_source': np.asarray(camera.source),
             'frame': rows.frame.astype(np.int64), 'person_id': rows.person.astype(np.int64),
             'num_frames': np.asarray(rows.num_frames),
             'joint_names': np.asarray(skeleton.JOINT_NAMES),
             'checkpoint_step': np.asarray(lifter.step)}
  if options.fps is not None:
    outputs['time_s'] = tracks.times_s(rows.frame, options.fps)
    outputs['fps'] = np.asarray(options.fps)
  if options.height_mm is not None:
    outputs['height_mm'] = np.asarray(options.height_mm)
  if camera.distortion is not None:
    outputs['camera_distortion'] = camera.distortion.astype(np.float32)
  if rows.image_id is not None:
    outputs['image_id'] = np.asarray(rows.image_id)
  if hypotheses is not None:
    outputs['hypotheses_3d_mm'] = hypotheses.astype(np.float32, copy=False)
  if rows.confidences is not None:
    flagged = keypoints_lib.low_confidence(rows.confidences, options.min_confidence)
    outputs['confidences'] = rows.confidences.astype(np.float32)
    outputs['low_confidence'] = flagged
    if flagged.any():
      logging.warning('%d of %d poses have a mean confidence below %g (flagged in '
                      'low_confidence).', flagged.sum(), len(flagged), options.min_confidence)
  return outputs


def _picture(outputs, options):
  """The poses, titles, hypotheses and playback rate of the pictures: the longest track."""
  person, track, num_tracks = writers.longest_track(outputs)
  if num_tracks > 1:
    logging.info('Pictures show person %d (%d poses), the longest of %d tracks.', person,
                 len(track), num_tracks)
  shown = track[writers.animation_subset(len(track))]
  fps = (options.fps or DEFAULT_ANIMATION_FPS) * len(shown) / len(track)
  flagged = outputs.get('low_confidence')

  def title(i):
    text = f'frame {outputs["frame"][i]}' + (f', person {person}' if num_tracks > 1 else '')
    return text + (' (low confidence)' if flagged is not None and flagged[i] else '')

  hypotheses = outputs.get('hypotheses_3d_mm')
  return {'png': dict(poses_mm=outputs['poses_3d_mm'][track], titles=[title(i) for i in track],
                      hypotheses_mm=None if hypotheses is None else hypotheses[track]),
          'animation': dict(poses_mm=outputs['poses_3d_mm'][shown],
                            titles=[title(i) for i in shown], fps=fps)}


def write_all(outputs, output_paths, plot_paths, options):
  """Writes every output and picture; none of them appears unless all are written."""
  output_paths, plot_paths = _as_list(output_paths), _as_list(plot_paths)
  picture = _picture(outputs, options) if plot_paths else None
  with files.staged(output_paths + plot_paths) as tmps:
    for path in output_paths:
      writers.write_poses(path, tmps[path], outputs)
    for path in plot_paths:
      kind = 'png' if path.lower().endswith('.png') else 'animation'
      writers.write_picture(path, tmps[path], **picture[kind])
  logging.info('Wrote %s.', ', '.join(output_paths + plot_paths))


def predict_file(lifter, input_path, output_path, *, plot=None, **options):
  """Reads keypoints, lifts them, writes the poses (and the plots); returns the outputs.

  output_path and plot: a path or a list of paths; options: the fields of `Options`.
  """
  options = Options(**options)
  check_paths(input_path, output_path, plot)
  rows = read_input(input_path, options)
  check_memory(len(rows), options, output_path)
  outputs = make_outputs(lifter, rows, lift_rows(lifter, rows, options), options)
  write_all(outputs, output_path, plot, options)
  return outputs


# Arguments that do not fit (exit 2), and data that cannot be lifted (exit 1): `cli`.
USAGE_ERRORS = (keypoints_lib.UsageError, restore_lib.WorkdirError, onnx_model.MissingExtra,
                memory.BudgetError)
DATA_ERRORS = (keypoints_lib.KeypointError, restore_lib.CheckpointError)


def exit_status(error):
  """2 for arguments that do not fit, 1 for data that cannot be lifted."""
  return EXIT_USAGE if isinstance(error, USAGE_ERRORS) else EXIT_DATA


def lifter_folder(workdir, lifter):
  """What `load_lifter` loads: the --workdir, the shipped --lifter's folder, or None (the
  default shipped lifter); a UsageError for both flags or an unknown name."""
  if workdir is not None and lifter is not None:
    raise UsageError('Give --workdir or --lifter, not both.')
  return workdir if lifter is None else packaged.shipped(lifter)


def main(argv):
  logs.quiet_library_logs()
  cli.stop_cleanly_on_sigterm()
  with cli.errors_as_lines(usage=USAGE_ERRORS, data=DATA_ERRORS):
    if len(argv) > 1:
      raise UsageError(f'Unexpected arguments {argv[1:]}; every option is a --flag.')
    options = Options(
        fmt=_FORMAT.value, num_hypotheses=_NUM_HYPOTHESES.value, temperature=_TEMPERATURE.value,
        seed=_SEED.value, focal_length=_FOCAL_LENGTH.value, center=_CENTER.value,
        distortion=_DISTORTION.value,
        image_size=_IMAGE_SIZE.value, min_confidence=_MIN_CONFIDENCE.value, fps=_FPS.value,
        smooth=_SMOOTH.value, smooth_min_cutoff=_SMOOTH_MIN_CUTOFF.value,
        smooth_beta_2d=_SMOOTH_BETA_2D.value, smooth_beta_3d=_SMOOTH_BETA_3D.value,
        clip_input=_CLIP_INPUT.value, resample=_RESAMPLE.value,
        skip_layout_check=_SKIP_LAYOUT_CHECK.value, keypoint_noise=_KEYPOINT_NOISE.value,
        height_mm=_HEIGHT_MM.value)
    check_paths(_INPUT.value, _OUTPUT.value, _PLOT.value)
    rows = read_input(_INPUT.value, options)  # bad input fails before the model loads
    check_memory(len(rows), options, _OUTPUT.value)
    lifter = lifter_lib.load_lifter(lifter_folder(_WORKDIR.value, _LIFTER.value),
                                    _CHECKPOINT.value, engine=_ENGINE.value)
    if _WORKDIR.value is None:
      logging.info('Lifting with the packaged lifter %s (no --workdir).', lifter.workdir)
    outputs = make_outputs(lifter, rows, lift_rows(lifter, rows, options), options)
    write_all(outputs, _OUTPUT.value, _PLOT.value, options)


if __name__ == '__main__':
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.parse_flags)
