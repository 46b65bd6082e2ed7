"""A person's known height (hpe_jax/inference/body_height.py): the chain read off 17 joints,
poses scaled to a height, and heights that are refused."""

import numpy as np
import pytest

from hpe_jax.inference import body_height
from tests import test_packaged_lifter

STANDING = test_packaged_lifter.STANDING  # y down: legs 840 mm, trunk 690 mm, hips 240 apart


def test_the_chain_runs_from_the_ankles_to_the_head_top_by_hand():
  # Shin 420 + thigh 420 + pelvis-spine 230 + spine-thorax 230 + thorax-neck 110 + neck-head
  # 120; the hips' 120 mm sideways from the pelvis are not height.
  assert body_height.chain_mm(STANDING) == pytest.approx(1530.0)
  crouched = STANDING.copy()
  crouched[[2, 3], 2] = [-300, -300]  # the right thigh forward: 516 mm, the shin as it was
  legs = (np.hypot(420, 300) + 420 + 840) / 2  # the legs averaged
  assert body_height.chain_mm(crouched) == pytest.approx(legs + 690.0)
  # Poses in batches, any leading axes.
  chains = body_height.chain_mm(np.stack([[STANDING, 2 * STANDING]] * 3))
  np.testing.assert_allclose(chains, [[1530.0, 3060.0]] * 3)


def test_poses_and_their_hypotheses_scale_about_the_root_to_the_height():
  poses = np.stack([STANDING, 1.1 * STANDING]).astype(np.float32)
  hypotheses = np.stack([poses, 0.9 * poses], axis=1)  # (2, 2, 17, 3)
  heights = np.array([1700.0, 1500.0])
  scaled, scaled_hypotheses = body_height.scale_to_height(poses, heights, hypotheses)
  np.testing.assert_allclose(body_height.chain_mm(scaled),
                             body_height.CHAIN_PER_HEIGHT * heights, rtol=1e-6)
  factor = body_height.CHAIN_PER_HEIGHT * heights / body_height.chain_mm(poses)
  np.testing.assert_allclose(scaled, poses * factor[:, None, None], rtol=1e-6)
  np.testing.assert_allclose(scaled_hypotheses, hypotheses * factor[:, None, None, None],
                             rtol=1e-6)
  assert scaled.dtype == np.float32 and np.all(scaled[:, 0] == 0)  # the root stays put
  one, none = body_height.scale_to_height(poses, 1700.0)
  assert none is None
  np.testing.assert_allclose(body_height.chain_mm(one), 0.96 * 1700.0, rtol=1e-6)


@pytest.mark.parametrize('height, message', [
    (1.75, "height_mm 1.75 is not a person's height in mm (expected 500-2700; 1.75 m is 1750)."),
    (-1700, "height_mm -1700 is not a person's height"),
    (float('nan'), "height_mm nan is not a person's height"),
    ([1700.0, 1.8], "height_mm 1.8 is not a person's height"),
    ([1700.0] * 3, 'height_mm has shape (3,); expected a number or (2,), one per pose.'),
    ('tall', "height_mm must be a number or one per pose, got 'tall'."),
])
def test_a_height_that_is_not_a_persons_is_one_line(height, message):
  with pytest.raises(ValueError) as raised:
    body_height.check_height(height, 2)
  assert str(raised.value).startswith(message) and '\n' not in str(raised.value)
