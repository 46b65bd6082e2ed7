"""Inference: 2D keypoints (H36M-17 or COCO-17, px) lifted to 3D poses (mm) with a trained workdir.

Modules: `restore` (a workdir's config, model, parameters and normalisation, without
TensorFlow or training code), `keypoints` (readers, COCO -> H36M, camera re-mapping,
confidences) and `lifter` (`load_lifter`, `Lifter.lift`).
"""
