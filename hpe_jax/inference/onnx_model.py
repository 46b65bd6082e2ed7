"""The lifter's posterior mean as an ONNX graph, its int8 form, and an onnxruntime runner.

`to_onnx` traces `Lifter.posterior_mean_px` with jax2onnx (H36M-17 keypoints px of the
reference camera -> root-relative poses mm, symbolic batch 'N', parameters and stats as
constants). `simplify` folds its constants, each BatchNorm into the linear layer before it,
(x W + c - m) s + b = x (W s) + ((c - m) s + b), and writes max(x, 0) as Relu:
onnxruntime's own optimiser folds neither, and each costs a pass over the layer's output.

`quantize_int8` makes the fast form: int8 weights (per output channel, 7-bit range) and
int8 activations quantised per call over the batch (onnxruntime's dynamic quantisation)
for the hidden layers; the first and the last layer stay float32 (quantising them too
more than doubled the error for 7% more speed, docs/measurements.md). A pose's answer
therefore depends slightly on the batch it is in.

`lifter_model` gives one or the other: what `hpe_jax.export` writes (`--quantize=int8`)
and what `load_lifter(..., engine='onnx' or 'onnx_int8')` runs.

Needs the `export` extra (jax2onnx, onnx, onnxruntime): pip install 'hpe_jax[export]'.
"""

import contextlib
import logging as logging_lib
import os
import tempfile

import numpy as np

from hpe_jax.inference import keypoints as keypoints_lib
from tfds_h36m import skeleton

ONNX_OPSET = 17  # the graph's operators (Gemm, Reshape, ...) need no later one: older runtimes
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = 'keypoints_px', 'poses_mm', 'N'
EXTRA_HINT = "pip install 'hpe_jax[export]'"
INT8_NOTE = ('int8 weights (7-bit range) per output channel, activations quantised per call '
             'over the batch (onnxruntime dynamic quantisation); first and last layers float32')


class MissingExtra(ImportError):
  """The ONNX packages (the `export` extra) are not installed."""


def modules():
  """(jax2onnx.to_onnx, onnx, onnxruntime), or MissingExtra naming the extra."""
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    import onnxruntime  # pylint: disable=g-import-not-at-top
    from jax2onnx import to_onnx as trace  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingExtra(f'ONNX needs {e.name or "jax2onnx"}: {EXTRA_HINT}') from None
  return trace, onnx, onnxruntime


def shape_text(lifter):
  """The input's shape as text: '(N, 17, 2)' or '(N, T, 17, 2)' with T the window."""
  return '(' + ', '.join(str(d) for d in (BATCH_DIM,) + lifter.input_shape()) + ')'


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
        input=f'{INPUT_NAME} {shape_text(lifter)} float32: windows of {lifter.window} '
              f'consecutive frames ({lifter.frame_rate_hz:g} fps) of H36M-17 keypoints, px of '
              "the reference camera; a window's ends repeat its sequence's edge frames",
        output=f'{OUTPUT_NAME} ({BATCH_DIM}, 17, 3) float32: root-relative 3D pose of each '
               f"window's {frame} frame, mm, camera frame (x right, y down, z forward)",
        window=str(lifter.window), causal=str(causal))
  return meta


def to_onnx(lifter):
  """The lifter's posterior mean as an ONNX ModelProto (symbolic batch 'N'; input
  `Lifter.input_shape()` per row)."""
  trace, onnx, _ = modules()
  for name in ('jax2onnx', 'onnx_ir'):  # notes on internal value types, nothing to act on
    logging_lib.getLogger(name).setLevel(logging_lib.ERROR)
  model = trace(lifter.posterior_mean_px, [(BATCH_DIM,) + lifter.input_shape()],
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


def _constants(graph):
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def _consumers(graph):
  users = {}
  for node in graph.node:
    for name in node.input:
      users.setdefault(name, []).append(node)
  return users


def _affine_chain(node, columns, graph_outputs, users, constants, shift):
  """The Sub/Mul/Add-by-a-constant nodes that follow `node`'s output one after the other
  (a BatchNorm at inference), each constant a scalar or one value per output column, and
  the map x -> x * scale + shift they make of its output plus `shift`."""
  chain, scale, out = [], 1.0, node.output[0]
  while len(users.get(out, [])) == 1 and out not in graph_outputs:
    nxt = users[out][0]
    if (nxt.op_type not in ('Sub', 'Mul', 'Add') or nxt.input[0] != out
        or nxt.input[1] not in constants
        or constants[nxt.input[1]].size not in (1, columns)
        or constants[nxt.input[1]].ndim > 2):
      break
    k = constants[nxt.input[1]].astype(np.float64).reshape(-1)
    if nxt.op_type == 'Mul':
      scale, shift = scale * k, shift * k
    else:
      shift = shift + (k if nxt.op_type == 'Add' else -k)
    chain.append(nxt)
    out = nxt.output[0]
  return chain, scale, shift


def fold_affine(model):
  """Each Gemm x W (+ c) with constant W and c, and the per-column Sub/Mul/Add constants
  that follow it, become one MatMul (+ Add), W and the bias folded in float64 and stored
  as float32 (onnxruntime's quantiser takes MatMul, not Gemm). In place."""
  from onnx import helper, numpy_helper  # pylint: disable=g-import-not-at-top
  graph = model.graph
  constants, users = _constants(graph), _consumers(graph)
  graph_outputs = {o.name for o in graph.output}
  dropped, nodes, tensors = set(), [], []
  for node in graph.node:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if (node.op_type != 'Gemm' or any(x not in constants for x in node.input[1:])
        or attrs.get('transA', 0) or attrs.get('transB', 0)
        or attrs.get('alpha', 1.0) != 1.0):
      nodes.append(node)
      continue
    bias = (attrs.get('beta', 1.0) * constants[node.input[2]].astype(np.float64)
            if len(node.input) > 2 else np.float64(0.0))
    weights = constants[node.input[1]].astype(np.float64)
    chain, scale, shift = _affine_chain(node, weights.shape[1], graph_outputs, users,
                                        constants, bias)
    weights = weights * scale
    out = chain[-1].output[0] if chain else node.output[0]
    names = (f'{node.name}_folded_weights', f'{node.name}_folded_bias')
    tensors += [numpy_helper.from_array(weights.astype(np.float32), names[0])]
    if chain or len(node.input) > 2:
      tensors.append(numpy_helper.from_array(
          np.broadcast_to(shift, weights.shape[1:]).astype(np.float32), names[1]))
      nodes += [helper.make_node('MatMul', [node.input[0], names[0]], [f'{out}_linear'],
                                 name=node.name),
                helper.make_node('Add', [f'{out}_linear', names[1]], [out],
                                 name=f'{node.name}_bias')]
    else:
      nodes.append(helper.make_node('MatMul', [node.input[0], names[0]], [out],
                                    name=node.name))
    dropped.update(id(n) for n in chain)
  del graph.node[:]
  graph.node.extend(n for n in nodes if id(n) not in dropped)
  graph.initializer.extend(tensors)
  _drop_unused_constants(graph)
  return model


def relu(model):
  """max(x, 0) (how jax2onnx writes relu) as Relu. In place."""
  from onnx import helper  # pylint: disable=g-import-not-at-top
  constants = _constants(model.graph)
  for i, node in enumerate(model.graph.node):
    if (node.op_type == 'Max' and len(node.input) == 2 and node.input[1] in constants
        and constants[node.input[1]].size == 1 and not np.any(constants[node.input[1]])):
      model.graph.node[i].CopyFrom(helper.make_node('Relu', [node.input[0]],
                                                    list(node.output), name=node.name))
  _drop_unused_constants(model.graph)
  return model


def _drop_unused_constants(graph):
  used = {name for node in graph.node for name in node.input}
  kept = [t for t in graph.initializer if t.name in used]
  del graph.initializer[:]
  graph.initializer.extend(kept)


def simplify(model):
  """A `to_onnx` model with its constants folded (onnxruntime's pre-processing, which its
  quantiser asks for), the BatchNorms folded into the linear layers (`fold_affine`) and
  Relu for max(x, 0): the same function (float rounding apart), fewer passes."""
  _, onnx, _ = modules()
  from onnxruntime.quantization import shape_inference  # pylint: disable=g-import-not-at-top
  meta = {p.key: p.value for p in model.metadata_props}
  with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
    raw, folded = os.path.join(tmp, 'raw.onnx'), os.path.join(tmp, 'folded.onnx')
    onnx.save(model, raw)
    shape_inference.quant_pre_process(raw, folded, skip_symbolic_shape=True)
    result = relu(fold_affine(onnx.load(folded)))
  onnx.helper.set_model_props(result, meta)
  return result


def quantize_int8(model):
  """The int8 form of a `to_onnx` model (see the module docstring), as a ModelProto."""
  _, onnx, _ = modules()
  from onnxruntime import quantization  # pylint: disable=g-import-not-at-top
  model = simplify(model)
  meta = {p.key: p.value for p in model.metadata_props}
  linear = [n.name for n in model.graph.node if n.op_type == 'MatMul']
  with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
    quantized = os.path.join(tmp, 'int8.onnx')
    # reduce_range: 7-bit weights, so that CPUs without VNNI (whose u8 x s8 products sum
    # pairs into int16) cannot saturate; measured here at no cost in speed, +0.15 mm.
    quantization.quantize_dynamic(
        model, quantized, per_channel=True, reduce_range=True,
        weight_type=quantization.QuantType.QInt8,
        nodes_to_exclude=[linear[0], linear[-1]] if len(linear) > 2 else linear)
    result = onnx.load(quantized)
  onnx.helper.set_model_props(result, dict(meta, quantization=INT8_NOTE))
  return result


def lifter_model(lifter, *, int8=False):
  """The lifter's ONNX graph as it is written and run: `simplify`'d, or `quantize_int8`'d."""
  model = to_onnx(lifter)
  return quantize_int8(model) if int8 else simplify(model)


@contextlib.contextmanager
def _quiet_root_logger():
  """onnxruntime's quantiser logs advice (to run the pre-processing we run) on the root
  logger: errors only while it runs."""
  root = logging_lib.getLogger()
  level = root.level
  root.setLevel(max(level, logging_lib.ERROR))
  try:
    yield
  finally:
    root.setLevel(level)


class Session:
  """An onnxruntime session of a lifter model: `(keypoints px (N, ...) float32) -> poses mm`."""

  def __init__(self, model):
    _, _, onnxruntime = modules()
    self._session = onnxruntime.InferenceSession(model.SerializeToString(),
                                                 providers=['CPUExecutionProvider'])

  def __call__(self, keypoints_px):
    return self._session.run(None, {INPUT_NAME: np.asarray(keypoints_px, np.float32)})[0]
