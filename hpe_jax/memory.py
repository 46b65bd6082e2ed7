"""One memory budget for the large arrays of evaluate and predict, checked before they are made.

Hypotheses (K samples of every pose), and --resample's grids, grow with numbers the user
gives (--num_hypotheses, --fps): a run that cannot fit should say so in one line before it
allocates, not take the machine's memory. Each site estimates what it will allocate and
calls `check`, which refuses (`BudgetError`, exit status 2 in the commands) anything over
the budget: DEFAULT_BUDGET_GB, or --memory_budget_gb, the one flag evaluate and predict
share. Where the result allows it, work is split into chunks that fit instead (evaluate's
hypotheses in chunks of poses: `fit_rows`).

Estimates: host arrays by their sizes; a jitted computation by `peak_bytes`, the largest
sum of its intermediates alive at once when each is freed after its last use (XLA's CPU
compiler reports no peak of its own). On evaluate's hypothesis metrics it came within 15%
of the measured growth of the process's peak memory (K = 10^5 samples of one pose: the
tiny model 188 MB estimated, 213 MB measured; the full-size one 1024 against 882 MB).
"""

import math

from absl import flags
import jax
from jax.extend import core as jax_core
import numpy as np

GB = 1e9
DEFAULT_BUDGET_GB = 2.0
_BUDGET_GB = flags.DEFINE_float(
    'memory_budget_gb', DEFAULT_BUDGET_GB,
    'Memory (GB) the large arrays of a run may take (hypotheses, --resample\'s grids): runs '
    'that need more stop with one line before allocating, or work in chunks that fit.',
    lower_bound=0.0)


class BudgetError(ValueError):
  """Work that does not fit the memory budget; its message says what and how to proceed."""


def budget_gb(value=None):
  """The budget in GB: `value`, else --memory_budget_gb once flags are parsed, else the
  default."""
  if value is not None:
    return float(value)
  return _BUDGET_GB.value if flags.FLAGS.is_parsed() else DEFAULT_BUDGET_GB


def describe(num_bytes):
  """num_bytes in words: '11.2 GB', '350 MB', '1.22 MB'."""
  return f'{num_bytes / GB:.1f} GB' if num_bytes >= 0.1 * GB else f'{num_bytes / 1e6:.3g} MB'


def check(num_bytes, what, hint, budget=None):
  """A BudgetError unless num_bytes fits the budget (GB, `budget_gb`): 'Error: <what> need
  about 11.2 GB, over the 2 GB budget (--memory_budget_gb); <hint>.'"""
  limit = budget_gb(budget)
  if num_bytes > limit * GB:
    raise BudgetError(f'{what} need about {describe(num_bytes)}, over the {limit:g} GB budget '
                      f'(--memory_budget_gb); {hint}.')


def check_hypotheses(num_poses, num_hypotheses, num_bytes, budget=None):
  """`check` of num_bytes, what K hypotheses of N poses need: 'Error: 1000000 hypotheses of
  24 poses need about 4.9 GB, over the 2 GB budget (--memory_budget_gb); lower
  --num_hypotheses (about 400000 fit) or raise the budget.' (the need grows with K)."""
  fit = int(num_hypotheses * budget_gb(budget) * GB / max(num_bytes, 1))
  scale = 10 ** max(len(str(fit)) - 2, 0)  # two significant digits, rounded down
  fit = fit // scale * scale
  poses = 'one pose' if num_poses == 1 else f'{num_poses} poses'
  check(num_bytes, f'{num_hypotheses} hypotheses of {poses}',
        f'lower --num_hypotheses (about {fit} fit) or raise the budget', budget)


def fit_rows(bytes_per_row, rows, budget=None, reserved=0):
  """The most rows (at most `rows`, at least 1) of bytes_per_row each that fit the budget
  besides `reserved` bytes (the chunk size of work done in chunks)."""
  room = budget_gb(budget) * GB - reserved
  return int(max(1, min(rows, room // max(bytes_per_row, 1))))


def array_bytes(shape, dtype=np.float32):
  """Bytes of an array of `shape` and `dtype`, without making it (floats: no overflow)."""
  return math.prod(float(s) for s in shape) * np.dtype(dtype).itemsize


def _aval_bytes(aval):
  shape, dtype = getattr(aval, 'shape', None), getattr(aval, 'dtype', None)
  if shape is None or dtype is None:
    return 0.0
  try:
    itemsize = np.dtype(dtype).itemsize
  except TypeError:  # extended dtypes (PRNG keys)
    itemsize = 8
  return math.prod(float(s) for s in shape) * itemsize


def _inner_peak(params):
  """The largest peak (`_peak`, with its constants) of the jaxprs an equation holds (jit,
  loops, conditionals)."""
  peak = 0.0
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(item, jax_core.ClosedJaxpr):
        peak = max(peak, _peak(item.jaxpr) + sum(_aval_bytes(c) for c in item.consts))
      elif isinstance(item, jax_core.Jaxpr):
        peak = max(peak, _peak(item))
  return peak


def _peak(jaxpr):
  """Peak bytes of `jaxpr`'s intermediates (its inputs excluded), each freed after its last
  use; an equation holding jaxprs adds their own peak (`_inner_peak`)."""
  last_use = {}
  for i, eqn in enumerate(jaxpr.eqns):
    for v in eqn.invars:
      if isinstance(v, jax_core.Var):
        last_use[v] = i
  for v in jaxpr.outvars:
    if isinstance(v, jax_core.Var):
      last_use[v] = len(jaxpr.eqns)
  freed_at, live, peak = {}, 0.0, 0.0
  for i, eqn in enumerate(jaxpr.eqns):
    inner = _inner_peak(eqn.params)
    outputs = sum(_aval_bytes(v.aval) for v in eqn.outvars)
    peak = max(peak, live + inner + outputs)
    for v in eqn.outvars:
      if last_use.get(v, i) > i:
        live += _aval_bytes(v.aval)
        freed_at.setdefault(last_use[v], []).append(v)
    live -= sum(_aval_bytes(v.aval) for v in freed_at.pop(i, ()))
  return peak


def peak_bytes(fn, *args):
  """An estimate of the memory fn(*args) needs besides its arguments: the peak of its
  traced intermediates (`_peak`). args may be jax.ShapeDtypeStruct: nothing is computed
  or allocated, only traced."""
  closed = jax.make_jaxpr(fn)(*args)
  return _peak(closed.jaxpr) + sum(_aval_bytes(c) for c in closed.consts)
