"""Best-of-K and calibration of samples drawn around single answers, for the experiments
that compare samplers (`held_out_spread`, `learned_spread`): the evaluation's own metrics
(`hpe_jax.evaluation.hypotheses`), MPJPEs as means over actions like the README's tables."""

import numpy as np

from hpe_jax import metrics
from hpe_jax.evaluation import hypotheses

CHUNK = 250  # poses whose K samples are scored at once (250 x 200 x 17 x 3 floats)


def score_samples(single, target, actions, draw):
  """(best-of-K / single, calibration error, single, best-of-K) of the samples
  draw(rows) -> (len(rows), K, 17, 3) mm, drawn CHUNK poses at a time in order, scored by
  the evaluation's metrics; MPJPEs are means over actions."""
  best, counts = np.empty(len(single)), np.zeros((16, len(hypotheses.QUANTILES)))
  for start in range(0, len(single), CHUNK):
    part = slice(start, start + CHUNK)
    samples = draw(part)
    best[part] = np.asarray(metrics.mpjpe(samples, target[part][:, None])).min(axis=1)
    median = hypotheses.sample_median(samples)
    counts += np.asarray(hypotheses.calibration_indicators(samples, median, target[part])).sum(0)
  single_error = np.asarray(metrics.mpjpe(single, target))
  by_action = lambda v: float(np.mean([v[actions == a].mean() for a in np.unique(actions)]))
  calibration = hypotheses.calibration_error(counts / len(single))[1]
  return (by_action(best) / by_action(single_error), float(calibration),
          by_action(single_error), by_action(best))
