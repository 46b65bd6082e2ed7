"""Training configs: `get_config(preset)` files over the one schema of `configs/common.py`.

  --config=configs/lifting.py:quick        (absl flag, presets after the path)
  hpe_jax.config_lib.load('configs/lifting.py:quick')   (the same from Python)
"""
