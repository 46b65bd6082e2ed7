"""hpe_jax: cross-modal variational auto-encoders for 3D human pose estimation."""
