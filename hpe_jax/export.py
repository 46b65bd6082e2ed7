"""Exporting a trained lifter for serving: serialized StableHLO (`jax.export`) or ONNX.

  python -m hpe_jax.export --workdir=workdirs/lifting --format=stablehlo --output=lifter.stablehlo
  python -m hpe_jax.export --workdir=workdirs/lifting --format=onnx --output=lifter.onnx

The exported function is the lifter's posterior mean, `Lifter.lift(keypoints_px).poses_mm`
without the batching: H36M-17 keypoints (N, 17, 2) float32 px of the reference camera ->
root-relative poses (N, 17, 3) float32 mm in that camera's frame (x right, y down, z
forward), for any N. Inside: the parameters of the checkpoint, the workdir's normalisation
stats and, with config.flip_test, the test-time flip. The caller's job: keypoints of another
camera move into the reference camera first, x_ref = (x - c) / f * f_ref + c_ref (the
reference intrinsics are logged here, stored in the ONNX metadata and listed in
docs/export.md); COCO-17 keypoints become H36M-17 first (`keypoints.coco_to_h36m`).

A temporal lifter (model.pose_net 'temporal') exports with its fixed window of T frames
(`Lifter.input_shape()`): input windows (N, T, 17, 2) float32 px, each T consecutive frames
of one sequence at the training data's 50 fps, a sequence's ends padded by repeating its
edge frames (as `lift` does; numpy recipe in docs/export.md) -> the pose (N, 17, 3) mm of
each window's centre frame (its last frame when model.causal).

StableHLO (--platforms, default cpu,cuda,tpu): `load_stablehlo(path).call(keypoints)` runs
it with JAX alone, no hpe_jax model code. ONNX (opset 17, symbolic batch 'N', input
'keypoints_px', output 'poses_mm'; a temporal lifter's metadata adds 'window' and
'causal') needs the extra: pip install 'hpe_jax[export]'. The output is written to a
temporary file and renamed: never partial.
"""

import logging as logging_lib
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from jax import export as jax_export
import jax.numpy as jnp

from hpe_jax import cli
from hpe_jax import files
from hpe_jax import logs
from hpe_jax.inference import keypoints as keypoints_lib
from hpe_jax.inference import lifter as lifter_lib
from hpe_jax.inference import restore as restore_lib
from tfds_h36m import skeleton

FORMATS = ('stablehlo', 'onnx')
ONNX_OPSET = 17  # the graph's operators (Gemm, Reshape, ...) need no later one: older runtimes
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = 'keypoints_px', 'poses_mm', 'N'
EXTRA_HINT = "pip install 'hpe_jax[export]'"
# Exit statuses (`hpe_jax.cli`): EXIT_USAGE for a flag, workdir or missing extra; EXIT_DATA for
# a checkpoint or file that fails.
EXIT_USAGE, EXIT_DATA = cli.EXIT_USAGE, cli.EXIT_DATA


class MissingExtra(ImportError):
  """The ONNX export's packages are not installed."""


def input_spec(lifter):
  """The exported input: (N, 17, 2) float32 with a symbolic N, or windows (N, T, 17, 2) for
  a temporal lifter (`Lifter.input_shape()`)."""
  batch, = jax_export.symbolic_shape(BATCH_DIM.lower())
  return jax.ShapeDtypeStruct((batch,) + lifter.input_shape(), jnp.float32)


def _shape_text(lifter):
  """The input's shape as text: '(N, 17, 2)' or '(N, T, 17, 2)' with T the window."""
  return '(' + ', '.join(str(d) for d in (BATCH_DIM,) + lifter.input_shape()) + ')'


def export_stablehlo(lifter, platforms=('cpu', 'cuda', 'tpu')):
  """The lifter's posterior mean as a `jax.export.Exported` (symbolic batch)."""
  return jax_export.export(jax.jit(lifter.posterior_mean_px),
                           platforms=tuple(platforms))(input_spec(lifter))


def load_stablehlo(path):
  """An exported lifter read back: `.call(keypoints (N, 17, 2) float32 px)`, or windows
  (N, T, 17, 2) of a temporal lifter, -> (N, 17, 3) mm."""
  with open(path, 'rb') as f:
    return jax_export.deserialize(bytearray(f.read()))


def metadata(lifter):
  """What a caller needs to know, as strings (ONNX metadata_props)."""
  f_ref, c_ref = keypoints_lib.reference_intrinsics()
  meta = {
      'input': f'{INPUT_NAME} ({BATCH_DIM}, 17, 2) float32: H36M-17 keypoints, px of the '
               'reference camera',
      'output': f'{OUTPUT_NAME} ({BATCH_DIM}, 17, 3) float32: root-relative 3D poses, mm, '
                'camera frame (x right, y down, z forward)',
      'joint_names': ','.join(skeleton.JOINT_NAMES),
      'reference_focal_length_px': ','.join(f'{v:.6f}' for v in f_ref),
      'reference_center_px': ','.join(f'{v:.6f}' for v in c_ref),
      'workdir': lifter.workdir, 'checkpoint_step': str(lifter.step),
      'flip_test': str(bool(lifter.config.flip_test))}
  if lifter.window:
    causal = bool(lifter.config.model.causal)
    frame = 'last' if causal else 'centre'
    meta.update(
        input=f'{INPUT_NAME} {_shape_text(lifter)} float32: windows of {lifter.window} '
              f'consecutive frames ({lifter.frame_rate_hz:g} fps) of H36M-17 keypoints, px of '
              "the reference camera; a window's ends repeat its sequence's edge frames",
        output=f'{OUTPUT_NAME} ({BATCH_DIM}, 17, 3) float32: root-relative 3D pose of each '
               f"window's {frame} frame, mm, camera frame (x right, y down, z forward)",
        window=str(lifter.window), causal=str(causal))
  return meta


def _onnx_modules():
  """(jax2onnx.to_onnx, onnx), or MissingExtra naming the extra."""
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    from jax2onnx import to_onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtra(f'The ONNX export needs {e.name or "jax2onnx"}: {EXTRA_HINT}') from None
  return to_onnx, onnx


def export_onnx(lifter):
  """The lifter's posterior mean as an ONNX ModelProto (symbolic batch 'N'; input
  `Lifter.input_shape()` per row)."""
  to_onnx, onnx = _onnx_modules()
  for name in ('jax2onnx', 'onnx_ir'):  # notes on internal value types, nothing to act on
    logging_lib.getLogger(name).setLevel(logging_lib.ERROR)
  model = to_onnx(lifter.posterior_mean_px, [(BATCH_DIM,) + lifter.input_shape()],
                  model_name='hpe_jax_lifter', opset=ONNX_OPSET, input_names=[INPUT_NAME],
                  output_names=[OUTPUT_NAME])
  # Shapes of intermediate values are optional, and jax2onnx 0.17 writes one constant of the
  # test-time flip with a wrong rank (onnxruntime warns); the runtime infers them itself.
  del model.graph.value_info[:]
  model.doc_string = ('hpe_jax lifter: H36M-17 keypoints px (reference camera) -> '
                      'root-relative 3D poses mm')
  onnx.helper.set_model_props(model, metadata(lifter))
  onnx.checker.check_model(model, full_check=True)
  return model


def export_file(workdir, output, fmt='stablehlo', *, checkpoint='best',
                platforms=('cpu', 'cuda', 'tpu')):
  """Loads the workdir's lifter and writes its export to `output`; returns the byte count."""
  if fmt not in FORMATS:
    raise ValueError(f'Unknown export format {fmt!r}; use one of {FORMATS}.')
  if fmt == 'onnx':
    _onnx_modules()  # fail before the work
  lifter = lifter_lib.load_lifter(workdir, checkpoint)
  if fmt == 'onnx':
    data = export_onnx(lifter).SerializeToString()
  else:
    data = export_stablehlo(lifter, platforms).serialize()
  files.write_atomic(output, bytes(data))
  f_ref, c_ref = keypoints_lib.reference_intrinsics()
  windows = (f' (windows of {lifter.window} frames at {lifter.frame_rate_hz:g} fps, edges '
             f"repeated; the pose of the {'last' if lifter.config.model.causal else 'centre'} "
             'frame)' if lifter.window else '')
  logging.info('Wrote %s (%s, %.1f MB): step %d of %s; input %s px of the reference '
               'camera f = (%.1f, %.1f) px, c = (%.1f, %.1f) px%s; output (N, 17, 3) mm.',
               output, fmt, len(data) / 1e6, lifter.step, lifter.workdir, _shape_text(lifter),
               *f_ref, *c_ref, windows)
  return len(data)


def define_flags():
  """The command's flags; defined by `__main__` only, not on import: the library functions
  must not claim --workdir for the other commands that share a test process's flags."""
  flags.DEFINE_string('workdir', None, 'Training workdir with a 2D->3D pair.')
  flags.DEFINE_enum('format', 'stablehlo', FORMATS, 'Serialized StableHLO or ONNX.')
  flags.DEFINE_string('output', None, 'File to write (e.g. lifter.stablehlo, lifter.onnx).')
  flags.DEFINE_string('checkpoint', 'best',
                      "'best' (lowest saved test MPJPE), 'last' or a step number.")
  flags.DEFINE_list('platforms', ['cpu', 'cuda', 'tpu'],
                    'StableHLO only: the platforms the export may run on.')
  flags.mark_flags_as_required(['workdir', 'output'])


def main(argv):
  if len(argv) > 1:
    print(f'Error: Unexpected arguments {argv[1:]}; every option is a --flag.', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  logs.quiet_library_logs()
  f = flags.FLAGS
  try:
    export_file(f.workdir, f.output, f.format, checkpoint=f.checkpoint, platforms=f.platforms)
  except (MissingExtra, restore_lib.CheckpointError, OSError) as e:
    print(f'Error: {e}', file=sys.stderr)
    # 2: arguments that do not fit (or the extra missing), 1: a checkpoint or file that fails.
    usage = isinstance(e, (MissingExtra, restore_lib.WorkdirError))
    sys.exit(EXIT_USAGE if usage else EXIT_DATA)


if __name__ == '__main__':
  define_flags()
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.parse_flags)
