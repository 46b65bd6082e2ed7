"""The lifting network with a learned conditional prior (a CVAE): hypotheses worth sampling.

The 3D encoder gives the posterior q(z | 3D), the 2D encoder a prior p(z | 2D), trained
with KL(q || p) (Sohn et al. 2015); half of the reconstruction decodes the prior mean (a
GSNN term, Sharma et al. 2019, at temperature 0), which is the single answer at test
time, and the hypotheses are samples of the prior. beta 0.1 and the GSNN settings were
chosen by measurement on the synthetic default (docs/measurements.md). Takes the presets
and options of configs/lifting.py (e.g. configs/cvae.py:quick,beta=0.01).
"""

from configs import common
from configs import lifting


def get_config(arg=None):
  config = lifting.get_config(arg)
  config.prior.update(kind='conditional', gsnn_weight=0.5, gsnn_temperature=0.0)
  beta = common.parse_arg(arg)[1].get('beta', 0.1)
  for pair in config.pairs:
    pair['beta'] = beta
  return config
