"""Importing this module registers `h36m` and `h36m_synthetic` with TFDS.

`python -m tfds_h36m.prepare --dataset=h36m_synthetic/default`, or in Python
`import tfds_h36m.builders; tfds.builder('h36m/poses')`. The package itself
stays free of TensorFlow so its geometry helpers import fast.
"""

from tfds_h36m.h36m import h36m_dataset_builder
from tfds_h36m.h36m_synthetic import h36m_synthetic_dataset_builder

H36m = h36m_dataset_builder.Builder
H36mConfig = h36m_dataset_builder.H36mConfig
H36mSynthetic = h36m_synthetic_dataset_builder.Builder
SyntheticConfig = h36m_synthetic_dataset_builder.SyntheticConfig
BUILDER_NAMES = ('h36m', 'h36m_synthetic')
