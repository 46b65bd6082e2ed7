#!/usr/bin/env bash
# One entry point for a fresh machine.
#   ./run.sh        install (first time), build the synthetic dataset (first time), train the
#                   cross-modal VAE (or resume, or evaluate a finished run), evaluate, lift an
#                   example keypoints file, and print a summary
#   ./run.sh test   install (first time) and run the test suite
# Variables: HPE_PRESET (quick or full; default: quick without a GPU/TPU, full with one),
# HPE_CONFIG (default configs/crossmodal.py with that preset), HPE_WORKDIR (default
# ./workdirs/<config name>_<preset>), HPE_VENV (virtual environment, default .venv),
# HPE_DATA_DIR (TFDS data, default ./data), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")"

VENV=${HPE_VENV:-.venv}
PY=${PYTHON:-python3}
DATA_DIR=${HPE_DATA_DIR:-$PWD/data}

stage() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# quiet CMD...: runs CMD without TensorFlow's C++ start-up notes on stderr (absl's
# "before absl::InitializeLog()" warning and the oneDNN note), which no setting silences.
BANNERS='^(WARNING: All log messages before absl::InitializeLog\(\)|I0000 .*port\.cc:[0-9]+\] oneDNN custom operations)'
quiet() { "$@" 2> >(grep --line-buffered -v -E "$BANNERS" >&2); }

# The ONNX export's converter for its parity test, without its declared dependencies
# (equinox, huggingface-hub, netron, orbax-export, orbax-checkpoint<0.11.37): it needs none of
# them, and the pin would change the orbax the tests run with (see pyproject.toml).
TEST_NO_DEPS="jax2onnx==0.17.1"

# setup_env TARGET: installs the project (`.` to run, `.[test]` for the tests) unless the
# environment already holds it for this pyproject.toml.
setup_env() {
  local target=$1 stamp want extra=""
  if [ "$target" = ".[test]" ]; then
    extra=$TEST_NO_DEPS
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    stage "Creating the virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  stamp="$VENV/.hpe_jax_installed_${target//[^a-z]/}"
  want=$( (cat pyproject.toml; echo "$target $extra") | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    stage "Reusing the installed environment in $VENV"
  else
    stage "Installing hpe_jax ($target) and its dependencies into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --upgrade --quiet pip
    "$VENV/bin/python" -m pip install --progress-bar on -e "$target"
    if [ -n "$extra" ]; then
      "$VENV/bin/python" -m pip install --progress-bar on --no-deps $extra
    fi
    echo "$want" > "$stamp"
  fi
}

choose_config() {
  local backend reason
  if [ -n "${HPE_PRESET:-}" ]; then
    PRESET=$HPE_PRESET
    reason="HPE_PRESET=$HPE_PRESET"
  else
    backend=$("$VENV/bin/python" -c 'import jax; print(jax.default_backend())' 2>/dev/null \
              || echo cpu)
    if [ "$backend" = cpu ]; then
      PRESET=quick
      reason="JAX finds no GPU or TPU: the 64 px, 2-epoch preset (HPE_PRESET=full forces the full one)"
    else
      PRESET=full
      reason="JAX finds a $backend: the full 256 px set-up (HPE_PRESET=quick forces the short one)"
    fi
  fi
  case "$PRESET" in
    quick) CONFIG=${HPE_CONFIG:-configs/crossmodal.py:quick} ;;
    full) CONFIG=${HPE_CONFIG:-configs/crossmodal.py} ;;
    *) echo "HPE_PRESET must be quick or full, got '$PRESET'" >&2; exit 2 ;;
  esac
  WORKDIR=${HPE_WORKDIR:-$PWD/workdirs/$(basename "${CONFIG%%:*}" .py)_$PRESET}
  stage "Config $CONFIG ($reason)"
}

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

case "${1:-train}" in
  test)
    setup_env ".[test]"
    stage "Running the test suite"
    exec "$VENV/bin/python" -m pytest -n 2 -q tests
    ;;
  train)
    setup_env "."
    choose_config
    stage "Preparing the synthetic dataset h36m_synthetic/default in $DATA_DIR (built once)"
    quiet "$VENV/bin/python" -m tfds_h36m.prepare --dataset=h36m_synthetic/default --data_dir="$DATA_DIR"
    if [ -n "$(ls -d "$WORKDIR"/checkpoints/[0-9]* 2>/dev/null)" ]; then
      stage "Training $CONFIG in $WORKDIR: a checkpoint is there, so it resumes (or only evaluates if done)"
    else
      stage "Training $CONFIG in $WORKDIR"
    fi
    quiet "$VENV/bin/python" -m hpe_jax.main --config="$CONFIG" --config.data_dir="$DATA_DIR" \
      --workdir="$WORKDIR"
    stage "Evaluating the best checkpoint: tables, figures, 50 hypotheses per pose"
    quiet "$VENV/bin/python" -m hpe_jax.evaluate --workdir="$WORKDIR" --num_hypotheses=50
    stage "Lifting an example COCO keypoints file (docs/examples/coco_keypoints.json) with the packaged lifter (CMU motion capture, any camera)"
    mkdir -p "$WORKDIR/predict"
    PREDICT=(-m hpe_jax.predict --input=docs/examples/coco_keypoints.json
             --format=coco --output="$WORKDIR/predict/coco_example_poses.json"
             --plot="$WORKDIR/predict/coco_example_poses.png")
    quiet "$VENV/bin/python" "${PREDICT[@]}"
    stage "Summary"
    quiet "$VENV/bin/python" -m hpe_jax.evaluation.summary --workdir="$WORKDIR"
    cat <<EOT

Next:
  TensorBoard:  $VENV/bin/tensorboard --logdir=$WORKDIR
  Lift your own keypoints (COCO, OpenPose, AlphaPose, BlazePose, H36M-17; see README.md)
  with the packaged lifter (add --workdir=$WORKDIR for the one trained here):
    $VENV/bin/python ${PREDICT[*]}
  Your Human3.6M copy, the full preset on a GPU/TPU: see README.md.
Total time of this run: $((SECONDS / 60)) min $((SECONDS % 60)) s.
EOT
    ;;
  *)
    echo "usage: ./run.sh [train|test]" >&2
    exit 2
    ;;
esac
