"""TFDS datasets for Human3.6M (`h36m`) and its synthetic stand-in (`h36m_synthetic`).

Import `tfds_h36m.builders` to register the builders; the geometry modules
(`skeleton`, `cameras`, `crop`) import without TensorFlow.
"""
