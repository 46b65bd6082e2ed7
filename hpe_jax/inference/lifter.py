"""Lifting 2D keypoints (px) to root-relative 3D poses (mm) with a trained workdir, or with
the packaged lifter.

  lifter = hpe_jax.load_lifter()                               # packaged: any camera
  lifted = lifter.lift(keypoints_px, focal_length=(1500, 1500), center=(960, 540))
  lifted.poses_mm, lifted.root_mm                              # (N, 17, 3), (N, 3)
  lifter.lift(keypoints_px, height_mm=1750)                    # a person of known height
  lifter = hpe_jax.load_lifter('workdirs/lifting')
  poses_mm, _ = lifter.lift(keypoints_px)                      # (N, 17, 3)
  poses_mm, samples_mm = lifter.lift(keypoints_px, num_hypotheses=20)  # + (N, 20, 17, 3)

A lifter for any camera (config.input_space 'camera' or 'perspective_crop', the packaged one)
reads the keypoints on the normalised image plane with their camera's intrinsics (a
perspective-crop lifter's answers are turned back into the camera's frame); a pixel lifter
reads them moved into its training camera (Human3.6M's mean, `reference_camera`). The intrinsics are
given, or (either kind) the one estimate from the image size (`camera.estimate`), logged in
one line when it changes. Either way `lift` also gives the root's position in the camera,
fitted to the keypoints (the person's trajectory).

Before lifting, `lift` checks that the keypoints look like people in H36M-17 px
(`layout_check`: not COCO-17, not normalised, not upside down); a LayoutError (a
KeypointError, one line) refuses them, unless `check_layout=False`.

A temporal lifter (model.pose_net 'temporal') reads each pose with a window of its
neighbours: the keypoints are frames in order, one sequence, or several told apart by
`sequence_ids` (a track id per row; a sequence's rows in frame order), at the training
data's `frame_rate_hz` (50 for Human3.6M); a window's ends repeat the sequence's edge
frames. Keypoints are H36M-17 (see `keypoints.coco_to_h36m` for COCO) in px of their
camera. Poses come back in the camera frame (x right, y
down, z forward), root (pelvis) at the origin.

The engine computes the latent-mean poses (hypotheses always come from JAX): 'jax' (the
default), 'onnx' (the same graph under onnxruntime, within 0.01 mm) or 'onnx_int8' (its
int8 form, `onnx_model.quantize_int8`: 3.5-5x the poses/s of 'jax' on a CPU with int8
dot products, about 1 mm from its answers); the two need the `export` extra.

Memory: K hypotheses of N poses are an (N, K, 17, 3) float32 array on the host, sampled in
calls of as many rows as the budget allows (`hpe_jax.memory`, --memory_budget_gb); what
cannot fit even one row at a time is a memory.BudgetError before anything is sampled.
"""

import dataclasses
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import memory
from hpe_jax import mirror
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import parallel
from hpe_jax import sampling
from hpe_jax import sequences
from hpe_jax import camera_geometry
from hpe_jax import pose_noise
from hpe_jax import ray_refinement
from hpe_jax.inference import body_height
from hpe_jax.inference import camera as camera_lib
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import layout_check
from hpe_jax.inference import layouts
from hpe_jax.inference import packaged
from hpe_jax.inference import restore as restore_lib
from tfds_h36m import skeleton

SOURCE, TARGET = 'pose_2d', 'pose_3d'
# Smallest padded batch of samples: their noise is drawn per padded row, so it fixes them.
MIN_BUCKET = 16
# Smallest padded batch of posterior means (one pose costs half of a 16-row call). Not 1:
# XLA:CPU runs one row as matrix-vector products, whose sums round differently (1e-4 mm);
# 2 to 16 rows give the same bits as 16 (measured on the full-size and the tiny model).
MIN_BUCKET_MEAN = 2
# The frame rate of Human3.6M's videos and of h36m/poses and h36m_synthetic/poses (Hz):
# a temporal model's windows span model.window frames at this rate.
FRAME_RATE_HZ = 50.0
ENGINES = ('jax', 'onnx', 'onnx_int8')


@dataclasses.dataclass(frozen=True)
class Lifted:
  """poses_mm (N, 17, 3): latent-mean poses (with the config's test-time flip, averaged with
  the mirrored keypoints' answer); hypotheses_mm (N, K, 17, 3) or None; root_mm (N, 3): the
  root's (pelvis's) position in the camera, mm, fitted to the keypoints (`fit_root`), or
  None; camera: the `cameras.Intrinsics` used. Unpacks as (poses_mm, hypotheses_mm)."""
  poses_mm: np.ndarray
  hypotheses_mm: Optional[np.ndarray]
  root_mm: Optional[np.ndarray] = None
  camera: Optional[camera_lib.Intrinsics] = None

  def __iter__(self):
    return iter((self.poses_mm, self.hypotheses_mm))


def _check_engine(engine):
  if engine not in ENGINES:
    raise ValueError(f'Unknown engine {engine!r}; use one of {ENGINES}.')


def _bucket(n, max_batch, minimum=MIN_BUCKET):
  """Padded batch size for n inputs: a power of two (fewer compiles), at most max_batch."""
  return min(max_batch, max(minimum, 1 << (int(n) - 1).bit_length()))


class Lifter:
  """A restored 2D->3D pair with its normalisation stats; `lift` runs it in batches, jitted
  (engine 'jax') or in an onnxruntime session."""

  def __init__(self, restored, stats, *, max_batch=1024, engine='jax', licence=None):
    _check_engine(engine)
    pairs = [p for p in modalities.pairs(restored.config)
             if p.source == SOURCE and p.target == TARGET]
    if not pairs:
      raise ValueError(f'The model of {restored.workdir} has no pose_2d -> pose_3d pair.')
    self.workdir, self.step, self.config = restored.workdir, restored.step, restored.config
    self.stats = stats
    #: A packaged lifter's licence (the terms its training data imposes), else None.
    self.licence = licence
    self._model, self._variables = restored.model, restored.variables
    self._max_batch = max_batch
    self.window_offsets = sequences.config_window_offsets(self.config)
    self.frame_rate_hz = FRAME_RATE_HZ
    self._logged_camera = None
    self._samplers = {}
    self._sample_row_bytes = {}
    model = self._model
    # The test-time flip mirrors about the reference camera's principal point column, or
    # about x = 0 on the normalised image plane.
    reference_x = (0.0 if self.any_camera else
                   float(keypoints_lib.reference_intrinsics()[1][0]))

    @jax.jit
    def posterior_mean(variables, x):
      def predict_mm(inputs):
        recon = model.apply(variables, inputs, source=SOURCE, target=TARGET,
                            train=False)['recon']
        return normalization.pose_3d_mm(recon, stats)

      pose_mm = predict_mm(x)
      if not restored.config.flip_test:
        return pose_mm
      return mirror.flip_average(
          pose_mm, predict_mm(mirror.mirror_normalized(SOURCE, x, stats, reference_x)))

    self._posterior_mean = posterior_mean
    self.engine, self._session = engine, None
    if engine != 'jax':
      from hpe_jax.inference import onnx_model  # pylint: disable=g-import-not-at-top  # extra
      self._session = onnx_model.Session(
          onnx_model.lifter_model(self, int8=engine == 'onnx_int8'))

  def _sampler(self, num_samples):
    if num_samples not in self._samplers:
      self._samplers[num_samples] = sampling.make_sampler(
          self._model, SOURCE, self.stats, num_samples)
    return self._samplers[num_samples]

  def _sampling_batch(self, num_poses, num_hypotheses, row, budget):
    """Rows per sampling call: `sampling.batch_size_for`'s, fewer where the memory budget
    (GB, `memory.budget_gb`) needs; a memory.BudgetError where the hypotheses (N, K, 17, 3)
    float32 and one row's sampling (estimated once per K from `row`, one model input) do
    not fit."""
    if num_hypotheses not in self._sample_row_bytes:
      self._sample_row_bytes[num_hypotheses] = memory.peak_bytes(
          self._sampler(num_hypotheses), self._variables,
          jax.ShapeDtypeStruct((1,) + row.shape[1:], row.dtype), jax.random.PRNGKey(0),
          jnp.float32(1.0))
    per_row = self._sample_row_bytes[num_hypotheses]
    hypotheses = memory.array_bytes((num_poses, num_hypotheses, len(skeleton.JOINT_NAMES), 3))
    memory.check_hypotheses(num_poses, num_hypotheses, hypotheses + per_row, budget)
    return memory.fit_rows(per_row, sampling.batch_size_for(num_hypotheses, self._max_batch, 1),
                           budget, reserved=hypotheses)

  def _normalize(self, keypoints_px):
    return normalization.model_pose_2d(keypoints_px, self.stats, self.config.input_layout,
                                       self.config.input_space).astype(np.float32)

  def _camera_frame(self, poses_mm, keypoints):
    """The model's 3D answers (N, ..., 17, 3) mm to keypoints (N, 17, 2) in its input space,
    in the camera's frame: a perspective-crop lifter answers in the frame of the camera
    turned to look at each root (`normalization.camera_frame`)."""
    plane = normalization.input_pose_2d(keypoints, self.config.input_layout)
    return normalization.camera_frame(poses_mm, plane, self.config.input_space).astype(
        poses_mm.dtype)

  @property
  def any_camera(self):
    """Whether the lifter reads the normalised image plane (`normalization.is_any_camera`):
    keypoints of any camera, with its intrinsics; else px of the reference camera."""
    return normalization.is_any_camera(self.config.input_space)

  def camera(self, keypoints_px, focal_length=None, center=None, image_size=None,
             distortion=None):
    """The `camera.Intrinsics` the keypoints (N, 17, 2) px come from: the given ones (with
    OpenCV's lens `distortion` k1, k2, p1, p2[, k3] where given), or the one estimate from
    `image_size` (width, height) px or the keypoints' extent (`camera.estimate`), whatever
    the lifter. Logged in one short line when it changes."""
    if (focal_length is None) != (center is None):
      raise ValueError('Give both focal_length and center (px), or neither.')
    if distortion is not None and focal_length is None:
      raise ValueError('A lens distortion needs its camera\'s focal_length and center.')
    if focal_length is not None:
      camera = camera_lib.Intrinsics.of(focal_length, center, 'given', distortion)
    else:
      camera = camera_lib.estimate(keypoints_px, image_size)
    line = ('No camera intrinsics given: ' if camera.estimated else 'Camera: ') + \
        camera.describe()
    if not self.any_camera:
      line += "; moved into the lifter's reference camera"
    if line != self._logged_camera:
      logging.info('%s.', line)
      self._logged_camera = line
    return camera

  @staticmethod
  def reference_camera(source):
    """The Intrinsics of a pixel lifter's reference camera (the 4 Human3.6M cameras' mean),
    with `source` saying why they are used."""
    return camera_lib.Intrinsics.of(*keypoints_lib.reference_intrinsics(), source)

  def _model_keypoints(self, keypoints_px, camera, plane):
    """The keypoints (N, 17, 2) px of `camera`, missing limb joints placed
    (`pose_noise.fill_missing`), in the lifter's 2D input space: the normalised image plane
    (`plane`, theirs: `camera.to_plane`), or px of the reference camera (moved into it along
    the same rays)."""
    if self.any_camera:
      return plane
    f_ref, c_ref = keypoints_lib.reference_intrinsics()
    if (np.all(camera.focal_length == f_ref) and np.all(camera.center == c_ref)
        and camera.distortion is None):
      return keypoints_px
    return plane * f_ref + c_ref

  def fit_root(self, keypoints_px, poses_mm, camera):
    """The root's position (N, 3) mm in the camera that best places each root-relative pose
    (N, 17, 3) mm onto its keypoints (N, 17, 2) px (`camera_geometry.fit_root`, least
    squares on the pinhole projection): the person's trajectory."""
    return self._root_on_plane(camera.to_plane(keypoints_px), poses_mm)

  def _root_on_plane(self, plane, poses_mm):
    """`fit_root` of keypoints already on the normalised image plane (N, 17, 2)."""
    # Keypoints all at one point place the pose at no depth in particular: its root is NaN.
    collapsed = np.all(np.ptp(plane, axis=1) == 0, axis=-1)
    if collapsed.any():
      logging.warning('%d of %d poses have every keypoint at one point: their root position '
                      'is unknown (NaN).', collapsed.sum(), len(collapsed))
    ones = np.ones((len(plane), 2))
    root = np.full((len(plane), 3), np.nan)
    root[~collapsed] = camera_geometry.fit_root(
        np.asarray(poses_mm, np.float64)[~collapsed], plane[~collapsed], ones[~collapsed],
        np.zeros_like(ones[~collapsed]))
    return root

  @property
  def window(self):
    """Frames a temporal lifter reads per pose, or None for a single-frame one."""
    return None if self.window_offsets is None else len(self.window_offsets)

  def input_shape(self):
    """Per-pose input of `posterior_mean_px`: (17, 2), or (window, 17, 2) when temporal."""
    return ((self.window,) if self.window else ()) + (len(skeleton.JOINT_NAMES), 2)

  def posterior_mean_px(self, keypoints_px):
    """Traceable: H36M-17 keypoints (N, 17, 2) px of the reference camera (for a temporal
    lifter, windows (N, window, 17, 2) of them) -> root-relative poses (N, 17, 3) mm, the
    answer of `lift` (normalised in float32, not on the host in float64: 1e-4 mm apart),
    parameters and stats as constants; what `hpe_jax.export` writes."""
    keypoints = jnp.asarray(keypoints_px, jnp.float32)
    x = normalization.model_pose_2d(keypoints, self.stats, self.config.input_layout,
                                    self.config.input_space)
    poses = self._posterior_mean(self._variables, x.astype(jnp.float32))
    if self.window:  # each window answers for its own frame
      keypoints = keypoints[:, list(self.window_offsets).index(0)]
    return self._camera_frame(poses, keypoints)

  def lift(self, keypoints_px, num_hypotheses=0, temperature=1.0, *, focal_length=None,
           center=None, distortion=None, image_size=None, camera=None, seed=0,
           sequence_ids=None,
           memory_budget_gb=None, check_layout=True,
           keypoint_noise=ray_refinement.DEFAULT_KEYPOINT_NOISE, height_mm=None):
    """H36M-17 keypoints (N, 17, 2) px -> Lifted: poses (N, 17, 3), hypotheses
    (N, K, 17, 3) and the root's position (N, 3), mm, in the camera's frame.

    num_hypotheses K > 0 also samples K poses per input from the posterior
    (z = mean + temperature * sigma * eps), in JAX whatever the engine (the poses then
    come from JAX too). focal_length ((2,) or (N, 2)) and center (px) of the keypoints'
    camera, and its lens distortion where calibrated (OpenCV's k1, k2, p1, p2[, k3]):
    without them, `camera` estimates them (from image_size (width, height) px where given);
    or `camera`, an Intrinsics from it. Missing knees, ankles, elbows and wrists
    (NaN) sit at their parent joints, as in
    training. sequence_ids (N,): the sequence (track) of each row, for a temporal lifter
    (default: one sequence). memory_budget_gb: the hypotheses' budget (module docstring;
    None: `memory.budget_gb()`). check_layout: refuse keypoints that do not look like
    people in H36M-17 px (`layout_check`: COCO-17 keypoints, normalised coordinates, bodies
    upside down) with a LayoutError; False lifts them as they are. keypoint_noise: the
    keypoints' expected error, a fraction of the person's 2D size (0: exact), which sets how
    far a lifter with `config.ray_refinement` moves its answer toward their rays.
    height_mm: the person's height (floor to head top), a number or one per pose, where known:
    each pose and its hypotheses are scaled to it before the root is fitted
    (`body_height.scale_to_height`); None keeps the lifter's guess.
    """
    kp = keypoints_lib.validate(keypoints_px, focal_length=focal_length, center=center,
                                path='keypoints_px', missing=pose_noise.LIMB_JOINTS)
    if height_mm is not None:
      body_height.check_height(height_mm, len(kp.keypoints))
    if check_layout:
      layout_check.check(kp.keypoints, layouts.H36M, path='keypoints_px',
                         override='check_layout=False', remedy=_to_h36m_first)
    if camera is None:
      camera = self.camera(kp.keypoints, kp.focal_length, kp.center, image_size, distortion)
    placed = pose_noise.fill_missing(kp.keypoints)  # missing limb joints at their parents
    plane = camera.to_plane(placed)  # lens distortion undone once, for the model and the root
    pixels = self._model_keypoints(placed, camera, plane)
    weights = ray_refinement.joint_weights(np.isnan(kp.keypoints[..., 0]), keypoint_noise)
    if self._session is not None and not num_hypotheses:
      poses = self._refined(self._lift_onnx(pixels.astype(np.float32), sequence_ids), pixels,
                            weights)
      return self._placed(poses, None, plane, camera, height_mm)
    x = self._normalize(pixels)
    n = len(x)
    inputs = self._windows(x, sequence_ids) if self.window else lambda a, b: x[a:b]
    if num_hypotheses:
      batch = self._sampling_batch(n, int(num_hypotheses), inputs(0, 1), memory_budget_gb)
      sampler = self._sampler(int(num_hypotheses))
      key = jax.random.PRNGKey(seed)
    else:
      batch = self._max_batch
    # Each chunk is dispatched before the previous one's answer is copied back: the copy
    # overlaps the computation, and at most two chunks are held on the device.
    poses = np.empty((n, len(skeleton.JOINT_NAMES), 3), np.float32)
    samples = (np.empty((n, num_hypotheses) + poses.shape[1:], np.float32) if num_hypotheses
               else None)
    in_flight = None
    for i, start in enumerate(range(0, n, batch)):
      chunk = inputs(start, start + batch)
      padded = parallel.pad_rows(chunk, _bucket(
          len(chunk), batch, MIN_BUCKET if num_hypotheses else MIN_BUCKET_MEAN))
      if num_hypotheses:
        outputs = sampler(self._variables, padded, jax.random.fold_in(key, i),
                          jnp.float32(temperature))
      else:
        outputs = (self._posterior_mean(self._variables, padded),)
      if in_flight:
        _to_host(*in_flight, poses, samples)
      in_flight = outputs, start, len(chunk)
    _to_host(*in_flight, poses, samples)
    poses = self._refined(self._camera_frame(poses, pixels), pixels, weights)
    samples = None if samples is None else self._camera_frame(samples, pixels)
    return self._placed(poses, samples, plane, camera, height_mm)

  def _placed(self, poses_mm, samples_mm, plane, camera, height_mm):
    """Lifted: the answers scaled to `height_mm` where given, and the root fitted to the
    keypoints on the normalised image plane."""
    if height_mm is not None:
      poses_mm, samples_mm = body_height.scale_to_height(poses_mm, height_mm, samples_mm)
    return Lifted(poses_mm, samples_mm, self._root_on_plane(plane, poses_mm), camera)

  def _refined(self, poses_mm, keypoints, weights):
    """Camera-frame answers (N, 17, 3) mm to model keypoints (N, 17, 2) on the normalised
    image plane, moved toward their rays by `weights` (N, 17) where the config has
    `ray_refinement` (`hpe_jax.ray_refinement`)."""
    if not self.config.ray_refinement:
      return poses_mm
    plane = normalization.input_pose_2d(keypoints, self.config.input_layout).astype(np.float64)
    placeable = ~np.all(np.ptp(plane, axis=1) == 0, axis=-1)  # else no root fit (`fit_root`)
    refined = np.array(poses_mm, np.float32)
    refined[placeable] = ray_refinement.refine(
        np.asarray(poses_mm, np.float64)[placeable], plane[placeable], weights[placeable])
    return refined

  def _lift_onnx(self, pixels, sequence_ids):
    """Latent-mean poses (N, 17, 3) mm of keypoints (N, 17, 2) px by the onnxruntime
    session, in chunks of max_batch rows (the graph normalises them itself)."""
    inputs = (self._windows(pixels, sequence_ids) if self.window
              else lambda start, stop: pixels[start:stop])
    return np.concatenate([self._session(inputs(start, start + self._max_batch))
                           for start in range(0, len(pixels), self._max_batch)])

  def _windows(self, x, sequence_ids):
    """(start, stop) -> the windows (stop - start, window, ...) of rows start..stop of
    `x` (N, ...), each within its sequence (`sequence_ids`, default one sequence)."""
    ids = np.zeros(len(x), np.int64) if sequence_ids is None else np.asarray(sequence_ids)
    if ids.shape != (len(x),):
      raise ValueError(f'sequence_ids has shape {ids.shape}; expected ({len(x)},), one per '
                       'pose.')
    order = np.argsort(ids, kind='stable')  # each sequence's rows contiguous, in their order
    rows_of = sequences.window_rows_by_order(order, sequences.run_bounds(ids[order]),
                                             self.window_offsets)
    return lambda start, stop: x[rows_of(np.arange(start, min(stop, len(x))))]


def _to_h36m_first(layout):
  """How to lift keypoints of `layout` (for a LayoutError)."""
  return (f'map them to H36M-17 first: layouts.to_h36m(layouts.for_format({layout.name!r}), '
          'keypoints)')


def _to_host(outputs, start, rows, poses, samples):
  """Copies the first `rows` rows of a chunk's (mean poses[, samples]) into the host arrays
  at row `start`."""
  poses[start:start + rows] = np.asarray(outputs[0])[:rows]
  if len(outputs) > 1:
    samples[start:start + rows] = np.asarray(outputs[1])[:rows]



def load_lifter(workdir=None, checkpoint='best', *, engine='jax'):
  """A Lifter of `workdir`'s checkpoint ('best', 'last' or a step number) whose `lift`
  runs on `engine` (ENGINES; see the module docstring); with no workdir, the lifter that
  ships with the package (`packaged.DEFAULT`: trained on CMU motion capture, for any
  camera; docs/model_card.md); with a shipped lifter's name ('cmu_temporal', 'cmu_bandai')
  or a packaged lifter's folder, that one, its `licence` (the terms of its training data)
  logged and kept on the Lifter.

  The normalisation stats come from workdir/normalization.json, or from the
  training dataset's metadata when the workdir has none.
  """
  _check_engine(engine)  # before the restore's work
  if workdir is None or packaged.is_packaged(packaged.path_of(workdir)):
    restored, stats, licence = packaged.restore(packaged.DEFAULT if workdir is None else workdir)
    if licence:
      logging.info('Packaged lifter %s; licence: %s.', restored.workdir, licence)
    return Lifter(restored, stats, engine=engine, licence=licence)
  restored = restore_lib.restore(workdir, checkpoint,
                                 pair=modalities.Pair(SOURCE, TARGET))
  return Lifter(restored, restore_lib.load_stats(workdir, restored.config), engine=engine)
