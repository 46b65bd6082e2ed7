"""Inference: a detector's 2D keypoints (px) lifted to 3D poses (mm) with a trained workdir
or the packaged lifter.

Modules: `restore` (a workdir's config, model, parameters and normalisation, without
TensorFlow or training code), `packaged` (the lifters that ship in hpe_jax/lifters/),
`lifter` (`load_lifter`, `Lifter.lift`), `camera` (the keypoints' camera, given or
estimated), `layouts` (the
detectors' joint layouts mapped to H36M-17), `detections`, `mmpose` and `keypoints` (readers,
checks, camera re-mapping, confidences), `layout_check` (the keypoints' geometry against
their declared layout), `tracks` (people over frames, linked where the input has no ids), `smoothing`
(One-Euro filter, jitter), `writers` and `bvh` (predict's outputs), `resample` (tracks
onto 50 fps), `onnx_model` (the lifter as an ONNX graph, its int8 form and the
onnxruntime engines of `load_lifter`).
"""
