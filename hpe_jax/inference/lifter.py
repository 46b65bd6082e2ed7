"""Lifting 2D keypoints (px) to root-relative 3D poses (mm) with a trained workdir.

  lifter = hpe_jax.load_lifter('workdirs/lifting')
  poses_mm, _ = lifter.lift(keypoints_px)                      # (N, 17, 3)
  poses_mm, samples_mm = lifter.lift(keypoints_px, num_hypotheses=20)  # + (N, 20, 17, 3)

Keypoints are H36M-17 (see `keypoints.coco_to_h36m` for COCO) in pixels of a
Human3.6M-like camera; give the camera's intrinsics to move them into the
reference camera first. Poses come back in the camera frame (x right, y
down, z forward), root (pelvis) at the origin.
"""

from typing import NamedTuple, Optional

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from hpe_jax import mirror
from hpe_jax import modalities
from hpe_jax import normalization
from hpe_jax import parallel
from hpe_jax import sampling
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import restore as restore_lib

SOURCE, TARGET = 'pose_2d', 'pose_3d'
MIN_BUCKET = 16


class Lifted(NamedTuple):
  """poses_mm (N, 17, 3): latent-mean poses (with the config's test-time flip, averaged with
  the mirrored keypoints' answer); hypotheses_mm (N, K, 17, 3) or None."""
  poses_mm: np.ndarray
  hypotheses_mm: Optional[np.ndarray]


def _bucket(n, max_batch):
  """Padded batch size for n inputs: a power of two (fewer compiles), at most max_batch."""
  return min(max_batch, max(MIN_BUCKET, 1 << (int(n) - 1).bit_length()))


class Lifter:
  """A restored 2D->3D pair with its normalisation stats; `lift` runs it in jitted batches."""

  def __init__(self, restored, stats, *, max_batch=1024):
    pairs = [p for p in modalities.pairs(restored.config)
             if p.source == SOURCE and p.target == TARGET]
    if not pairs:
      raise ValueError(f'The model of {restored.workdir} has no pose_2d -> pose_3d pair.')
    self.workdir, self.step, self.config = restored.workdir, restored.step, restored.config
    self.stats = stats
    self._model, self._variables = restored.model, restored.variables
    self._max_batch = max_batch
    self._logged_camera = False
    self._samplers = {}
    model = self._model
    # The test-time flip mirrors about the reference camera's principal point column.
    reference_x = float(keypoints_lib.reference_intrinsics()[1][0])

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

  def _sampler(self, num_samples):
    if num_samples not in self._samplers:
      self._samplers[num_samples] = sampling.make_sampler(
          self._model, SOURCE, self.stats, num_samples)
    return self._samplers[num_samples]

  def _normalize(self, keypoints_px):
    return normalization.normalize(keypoints_px, self.stats, 'pose_2d').astype(np.float32)

  def _reference_pixels(self, keypoints_px, focal_length, center):
    if focal_length is None and center is None:
      if not self._logged_camera:
        f_ref, c_ref = keypoints_lib.reference_intrinsics()
        logging.info('No camera intrinsics given: assuming the keypoints come from a '
                     'Human3.6M-like camera, f = (%.1f, %.1f) px, c = (%.1f, %.1f) px.',
                     *f_ref, *c_ref)
        self._logged_camera = True
      return keypoints_px
    if focal_length is None or center is None:
      raise ValueError('Give both focal_length and center (px), or neither.')
    return keypoints_lib.to_reference_camera(keypoints_px, focal_length, center)

  def lift(self, keypoints_px, num_hypotheses=0, temperature=1.0, *, focal_length=None,
           center=None, seed=0):
    """H36M-17 keypoints (N, 17, 2) px -> Lifted(poses (N, 17, 3), hypotheses (N, K, 17, 3)) mm.

    num_hypotheses K > 0 also samples K poses per input from the posterior
    (z = mean + temperature * sigma * eps). focal_length ((2,) or (N, 2))
    and center (px) of the keypoints' camera move them into the reference
    camera; without them the keypoints are taken as they are.
    """
    kp = keypoints_lib.validate(keypoints_px, focal_length=focal_length, center=center,
                                path='keypoints_px')
    pixels = self._reference_pixels(kp.keypoints, kp.focal_length, kp.center)
    x = self._normalize(pixels)
    n = len(x)
    if num_hypotheses:
      batch = sampling.batch_size_for(num_hypotheses, self._max_batch, 1)
      sampler = self._sampler(int(num_hypotheses))
      key = jax.random.PRNGKey(seed)
    else:
      batch = self._max_batch
    poses, samples = [], []
    for i, start in enumerate(range(0, n, batch)):
      chunk = x[start:start + batch]
      size = _bucket(len(chunk), batch)
      padded = parallel.pad_rows(chunk, size)
      if num_hypotheses:
        mean_pose, sampled = sampler(self._variables, padded, jax.random.fold_in(key, i),
                                     jnp.float32(temperature))
        samples.append(np.asarray(sampled)[:len(chunk)])
      else:
        mean_pose = self._posterior_mean(self._variables, padded)
      poses.append(np.asarray(mean_pose)[:len(chunk)])
    return Lifted(np.concatenate(poses), np.concatenate(samples) if num_hypotheses else None)


def load_lifter(workdir, checkpoint='best'):
  """A Lifter of `workdir`'s checkpoint ('best', 'last' or a step number).

  The normalisation stats come from workdir/normalization.json, or from the
  training dataset's metadata when the workdir has none.
  """
  restored = restore_lib.restore(workdir, checkpoint,
                                 pair=modalities.Pair(SOURCE, TARGET))
  return Lifter(restored, restore_lib.load_stats(workdir, restored.config))
