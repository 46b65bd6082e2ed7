"""Schedules of the KL weight beta, as pure functions of the step."""

import jax.numpy as jnp


def beta_schedule(kind, beta, total_steps, *, warmup_steps=0, num_cycles=4, ratio=0.5):
  """A function step -> beta.

  kind: 'constant'; 'linear' (annealing from 0 to beta over warmup_steps, then
  beta); 'cyclical' (Fu et al., NAACL 2019: total_steps split into num_cycles
  cycles, each rising linearly from 0 to beta over its first `ratio` fraction,
  then holding beta).
  """
  if beta < 0:
    raise ValueError(f'beta must be >= 0, got {beta}')
  if kind == 'constant':
    return lambda step: jnp.asarray(beta, jnp.float32)
  if kind == 'linear':
    if warmup_steps <= 0:
      raise ValueError(f"'linear' needs warmup_steps > 0, got {warmup_steps}")
    return lambda step: beta * jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)
  if kind == 'cyclical':
    if num_cycles < 1 or not 0 < ratio <= 1 or total_steps < num_cycles:
      raise ValueError(f"'cyclical' needs num_cycles >= 1, 0 < ratio <= 1 and total_steps >= "
                       f'num_cycles; got {num_cycles}, {ratio}, {total_steps}')
    period = total_steps / num_cycles

    def cyclical(step):
      phase = jnp.mod(jnp.asarray(step, jnp.float32), period) / period
      return beta * jnp.clip(phase / ratio, 0.0, 1.0)
    return cyclical
  raise ValueError(f"beta schedule must be 'constant', 'linear' or 'cyclical', got {kind!r}")
