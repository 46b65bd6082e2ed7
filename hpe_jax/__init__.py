"""hpe_jax: cross-modal variational auto-encoders for 3D human pose estimation.

`hpe_jax.load_lifter()` loads the lifter that ships with the package (trained on CMU
motion capture, for any camera: docs/model_card.md); `hpe_jax.load_lifter(workdir)` restores
a trained 2D->3D lifter of your own (imported on first use, so `import hpe_jax` stays cheap).
"""

__all__ = ['load_lifter']


def __getattr__(name):
  if name == 'load_lifter':
    from hpe_jax.inference.lifter import load_lifter  # pylint: disable=g-import-not-at-top
    return load_lifter
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
