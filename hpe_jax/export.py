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

A lifter for any camera (config.input_space 'camera' or 'perspective_crop') reads keypoints on
the normalised image plane, (u - c) / f, instead of px of the reference camera, and answers
in that camera's frame; with config.ray_refinement (the packaged lifters), `lift` then moves
the answer toward the keypoints' rays on the host (`hpe_jax.ray_refinement.refine`, weights
from the keypoints' expected noise), which the graph leaves to its caller. --format=package writes the
2D -> 3D pair as a packaged lifter folder (`hpe_jax.inference.packaged`), loaded by
`hpe_jax.load_lifter(folder)`.

StableHLO (--platforms, default cpu,cuda,tpu): `load_stablehlo(path).call(keypoints)` runs
it with JAX alone, no hpe_jax model code. ONNX (opset 17, symbolic batch 'N', input
'keypoints_px', output 'poses_mm'; a temporal lifter's metadata adds 'window' and
'causal') needs the extra: pip install 'hpe_jax[export]'; --quantize=int8 writes its int8
form (`onnx_model.quantize_int8`: the fastest on a CPU, about 1 mm from the float32
answer). The output is written to a temporary file and renamed: never partial.
"""

import os
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
from hpe_jax.inference import onnx_model
from hpe_jax.inference import packaged
from hpe_jax.inference import restore as restore_lib

FORMATS = ('stablehlo', 'onnx', 'package')
PLATFORMS = ('cpu', 'cuda', 'rocm', 'tpu')  # what jax.export lowers for (it takes any name)
QUANTIZATIONS = ('none', 'int8')
BATCH_DIM = onnx_model.BATCH_DIM
# Exit statuses (`hpe_jax.cli`): EXIT_USAGE for a flag, workdir or missing extra; EXIT_DATA for
# a checkpoint or file that fails.
EXIT_USAGE, EXIT_DATA = cli.EXIT_USAGE, cli.EXIT_DATA


def input_spec(lifter):
  """The exported input: (N, 17, 2) float32 with a symbolic N, or windows (N, T, 17, 2) for
  a temporal lifter (`Lifter.input_shape()`)."""
  batch, = jax_export.symbolic_shape(BATCH_DIM.lower())
  return jax.ShapeDtypeStruct((batch,) + lifter.input_shape(), jnp.float32)


def export_stablehlo(lifter, platforms=('cpu', 'cuda', 'tpu')):
  """The lifter's posterior mean as a `jax.export.Exported` (symbolic batch)."""
  if not platforms or not set(platforms) <= set(PLATFORMS):
    raise ValueError(f'platforms {list(platforms)} must be one or more of '
                     f'{", ".join(PLATFORMS)}.')
  return jax_export.export(jax.jit(lifter.posterior_mean_px),
                           platforms=tuple(platforms))(input_spec(lifter))


def load_stablehlo(path):
  """An exported lifter read back: `.call(keypoints (N, 17, 2) float32 px)`, or windows
  (N, T, 17, 2) of a temporal lifter, -> (N, 17, 3) mm."""
  with open(path, 'rb') as f:
    return jax_export.deserialize(bytearray(f.read()))


def export_file(workdir, output, fmt='stablehlo', *, checkpoint='best',
                platforms=('cpu', 'cuda', 'tpu'), quantize='none', licence=None):
  """Loads the workdir's lifter and writes its export to `output`; returns the byte count.

  quantize 'int8' (ONNX only): `onnx_model.quantize_int8`'s fast form. licence (package
  only): the terms its training data imposes, written on the card."""
  if fmt not in FORMATS:
    raise ValueError(f'Unknown export format {fmt!r}; use one of {FORMATS}.')
  if quantize not in QUANTIZATIONS or (quantize != 'none' and fmt != 'onnx'):
    raise ValueError(f'quantize={quantize!r} needs the onnx format; one of {QUANTIZATIONS}.')
  if licence and fmt != 'package':
    raise keypoints_lib.UsageError('--licence goes on a packaged lifter\'s card: it needs '
                                   '--format=package.')
  if fmt == 'package':
    packaged.check_output(output)
  elif os.path.isdir(output):
    raise keypoints_lib.UsageError(f'The output {output} is a directory; give a file name '
                                   '(e.g. lifter.stablehlo, lifter.onnx).')
  if fmt == 'onnx':
    onnx_model.modules()  # fail before the work
  if fmt == 'package':
    card = packaged.save(workdir, output, checkpoint, licence)
    logging.info('Wrote the packaged lifter %s (step %d of %s): load it with '
                 'hpe_jax.load_lifter(%r).', output, card['step'], workdir, output)
    return sum(os.path.getsize(os.path.join(output, n)) for n in os.listdir(output))
  lifter = lifter_lib.load_lifter(workdir, checkpoint)
  if fmt == 'onnx':
    data = onnx_model.lifter_model(lifter, int8=quantize == 'int8').SerializeToString()
  else:
    data = export_stablehlo(lifter, platforms).serialize()
  files.write_atomic(output, bytes(data))
  f_ref, c_ref = keypoints_lib.reference_intrinsics()
  windows = (f' (windows of {lifter.window} frames at {lifter.frame_rate_hz:g} fps, edges '
             f"repeated; the pose of the {'last' if lifter.config.model.causal else 'centre'} "
             'frame)' if lifter.window else '')
  logging.info('Wrote %s (%s, %.1f MB): step %d of %s; input %s px of the reference '
               'camera f = (%.1f, %.1f) px, c = (%.1f, %.1f) px%s; output (N, 17, 3) mm.',
               output, fmt + (' int8' if quantize == 'int8' else ''), len(data) / 1e6,
               lifter.step, lifter.workdir, onnx_model.shape_text(lifter), *f_ref, *c_ref,
               windows)
  return len(data)


def define_flags():
  """The command's flags; defined by `__main__` only, not on import: the library functions
  must not claim --workdir for the other commands that share a test process's flags."""
  flags.DEFINE_string('workdir', None, 'Training workdir with a 2D->3D pair.')
  flags.DEFINE_enum('format', 'stablehlo', FORMATS, 'Serialized StableHLO, ONNX, or a packaged '
                    'lifter folder (`hpe_jax.inference.packaged`: what hpe_jax.load_lifter '
                    'and predict read without a workdir).')
  flags.DEFINE_string('output', None, 'File to write (e.g. lifter.stablehlo, lifter.onnx), or '
                      'the folder of --format=package.')
  flags.DEFINE_string('checkpoint', 'best',
                      "'best' (lowest saved test MPJPE), 'last' or a step number.")
  cli.check_checkpoint_flag()
  flags.DEFINE_list('platforms', ['cpu', 'cuda', 'tpu'], 'StableHLO only: the platforms the '
                    f'export may run on, of {", ".join(PLATFORMS)}.')
  flags.register_validator(
      'platforms', lambda names: bool(names) and set(names) <= set(PLATFORMS),
      message=f'must be one or more of {", ".join(PLATFORMS)}, comma-separated.')
  flags.DEFINE_enum('quantize', 'none', QUANTIZATIONS,
                    'ONNX only: int8 hidden layers (about 3x faster on a CPU with int8 '
                    'dot products, about 1 mm from the float32 answer; docs/export.md).')
  flags.DEFINE_string('licence', None, 'Package only: the terms the training data imposes on '
                      "the lifter, written on its card and logged when it is loaded ('CC BY-NC "
                      "4.0, non-commercial use only').")
  flags.mark_flags_as_required(['workdir', 'output'])


def main(argv):
  if len(argv) > 1:
    print(f'Error: Unexpected arguments {argv[1:]}; every option is a --flag.', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  logs.quiet_library_logs()
  f = flags.FLAGS
  if f.quantize != 'none' and f.format != 'onnx':
    print(f'Error: --quantize={f.quantize} needs --format=onnx.', file=sys.stderr)
    sys.exit(EXIT_USAGE)
  cli.stop_cleanly_on_sigterm()
  # 2: arguments that do not fit (an --output that is taken, the extra missing), 1: a
  # checkpoint or file that fails.
  with cli.errors_as_lines(usage=(onnx_model.MissingExtra, restore_lib.WorkdirError,
                                  keypoints_lib.UsageError),
                           data=(restore_lib.CheckpointError, files.UnsafePath)):
    export_file(f.workdir, f.output, f.format, checkpoint=f.checkpoint, platforms=f.platforms,
                quantize=f.quantize, licence=f.licence)


if __name__ == '__main__':
  define_flags()
  jax.config.config_with_absl()
  app.run(main, flags_parser=cli.parse_flags)
