"""Importing this module registers `h36m`, `h36m_synthetic`, `mocap`, `mpi_inf_3dhp` and `pw3d`
with TFDS.

`python -m tfds_h36m.prepare --dataset=h36m_synthetic/default`, or in Python
`import tfds_h36m.builders; tfds.builder('h36m/poses')`. The package itself
stays free of TensorFlow so its geometry helpers import fast.
"""

from tfds_h36m.h36m import h36m_dataset_builder
from tfds_h36m.h36m_synthetic import h36m_synthetic_dataset_builder
from tfds_h36m.mocap import mocap_dataset_builder
from tfds_h36m.mpi_inf_3dhp import mpi_inf_3dhp_dataset_builder
from tfds_h36m.pw3d import pw3d_dataset_builder

H36m = h36m_dataset_builder.Builder
H36mConfig = h36m_dataset_builder.H36mConfig
H36mSynthetic = h36m_synthetic_dataset_builder.Builder
SyntheticConfig = h36m_synthetic_dataset_builder.SyntheticConfig
MpiInf3dhp = mpi_inf_3dhp_dataset_builder.Builder
Pw3d = pw3d_dataset_builder.Builder
Mocap = mocap_dataset_builder.Builder
MocapConfig = mocap_dataset_builder.MocapConfig
BUILDER_NAMES = ('h36m', 'h36m_synthetic', 'mocap')  # the training datasets
WILD_BUILDER_NAMES = ('mpi_inf_3dhp', 'pw3d')  # in-the-wild test sets (docs/in_the_wild.md)
