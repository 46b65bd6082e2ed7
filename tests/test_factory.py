"""The model of a config: every pair's shapes and dtypes."""

import jax
import jax.numpy as jnp
import pytest

from conftest import assert_pair_shapes, load_config, random_batch
from hpe_jax.models import factory


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_every_pair_has_the_target_shape_and_float32_outputs(dtype):
  config = load_config('crossmodal', 'tiny')
  config.model.dtype = dtype
  model = factory.create_model(config)
  variables = factory.init_variables(config, model, jax.random.PRNGKey(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables['params']))
  batch = random_batch(config)
  assert_pair_shapes(config, model, variables, batch)
  # The image branch computes in the configured dtype (bf16 on accelerators).
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, source='image', target='pose_3d',
                                                  train=False))(variables, batch['image'] * 1.0)
  conv_dtypes = {eqn.outvars[0].aval.dtype for eqn in jaxpr.eqns
                 if eqn.primitive.name == 'conv_general_dilated'}
  assert conv_dtypes == {jnp.dtype(dtype)}


def test_auto_dtype_is_float32_on_cpu():
  config = load_config('crossmodal', 'tiny')
  config.model.dtype = 'auto'
  assert factory.compute_dtype(config) == jnp.float32
  config.model.dtype = 'float16'
  with pytest.raises(ValueError, match="model.dtype must be 'auto', 'float32' or 'bfloat16'"):
    factory.compute_dtype(config)
