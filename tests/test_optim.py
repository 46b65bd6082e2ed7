"""The optimiser: frozen stages of the image encoder never move."""

import jax
import numpy as np

from conftest import pair, random_batch, tiny_config
from hpe_jax import optim
from hpe_jax import schedules
from hpe_jax import train
from hpe_jax.models import factory


def test_frozen_stages_do_not_move():
  config = tiny_config(name='crossmodal', pairs=[pair('image', 'pose_3d')])
  config.pretrained.trainable_stages = 'stage4,heads'
  model = factory.create_model(config)
  tx = optim.create_optimizer(config, 10)
  state = train.create_train_state(config, model, tx, jax.random.PRNGKey(0))
  (step,) = train.make_group_steps(model, tx, config, schedules.beta_schedule('constant', 1.0, 10))
  new_state, _, _ = jax.jit(step)(state, random_batch(config, n=8))
  for collection in ('params', 'batch_stats'):
    before = getattr(state, collection)['encoders_image']['backbone']
    after = getattr(new_state, collection)['encoders_image']['backbone']
    for name in before:
      moved = any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(
          jax.tree.leaves(before[name]), jax.tree.leaves(after[name])))
      assert moved == name.startswith('stage4'), (collection, name)
  before, after = state.params['encoders_image'], new_state.params['encoders_image']
  assert np.any(np.asarray(before['mean']['kernel']) != np.asarray(after['mean']['kernel']))
