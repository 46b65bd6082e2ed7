"""The lifting VAE trained without 3D labels: 2D poses and cameras only (`hpe_jax.weak_supervision`).

Reprojection through each example's camera at a root fitted to the 2D pose, multi-view
consistency with each example's known camera pose (Human3.6M's calibration, or a motion
capture take's virtual cameras: --config.dataset=mocap/cmu), which also fixes the metric
scale a single view cannot, and bone-length symmetry and consistency priors. Takes the
presets and options of configs/lifting.py, and `root` ('fit', the default, or 'known': the
record's root_3d, which leaks the person's size):
  --config=configs/weakly_supervised.py:quick
  --config=configs/weakly_supervised.py:quick,root=known
"""

from configs import lifting


def get_config(arg=None):
  config = lifting.get_config(arg)
  config.supervision = 'weak'
  return config
