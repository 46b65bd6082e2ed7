#!/usr/bin/env bash
# One entry point for a fresh machine.
#   ./run.sh        install (first time), build the synthetic dataset (first time), train the
#                   cross-modal VAE (or resume, or evaluate a finished run), evaluate, lift an
#                   example keypoints file, and print a summary
#   ./run.sh test   install (first time) and run the test suite
# The install: hpe_jax[train] into the virtual environment, with JAX for the accelerator found
# (hpe_jax[train,cuda] when `nvidia-smi -L` lists a GPU; hpe_jax[train,tpu] on a Cloud TPU VM:
# /dev/accel*, a Google TPU on the PCI bus, or TPU_NAME / TPU_ACCELERATOR_TYPE set); the tests
# install hpe_jax[test]. It says the backend JAX then sees and the preset chosen.
# Variables: HPE_ACCELERATOR (cpu, cuda, cuda13 or tpu: overrides the detection; cpu also sets
# JAX_PLATFORMS=cpu), HPE_DRY_RUN=1 (print the accelerator found, why, and the install
# command, then stop: installs and runs nothing), HPE_PRESET (quick or full; default: quick
# without a GPU/TPU, full with one), HPE_CONFIG (default configs/crossmodal.py with that
# preset), HPE_WORKDIR (default ./workdirs/<config name>_<preset>), HPE_VENV (virtual
# environment, default .venv), HPE_DATA_DIR (TFDS data, default ./data), PYTHON (default
# python3).
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

# detect_accelerator: sets ACCELERATOR (cpu, cuda, cuda13 or tpu: the JAX to install) and
# ACCELERATOR_REASON, from HPE_ACCELERATOR, else nvidia-smi, else a TPU VM's devices (JAX's own
# test: a Google PCI device of a TPU's id) or variables.
TPU_PCI_IDS='0x0027|0x0056|0x005e|0x0062|0x0063|0x006f|0x0076'  # v3 ... TPU7x (jax hardware_utils)
tpu_chips() {
  local dev vendor n=0
  for dev in /sys/bus/pci/devices/*; do
    if read -r vendor < "$dev/vendor" 2>/dev/null && [ "$vendor" = 0x1ae0 ] &&
       grep -q -x -E "$TPU_PCI_IDS" "$dev/device"; then
      n=$((n + 1))
    fi
  done
  echo "$n"
}

detect_accelerator() {
  local gpus chips
  if [ -n "${HPE_ACCELERATOR:-}" ]; then
    ACCELERATOR=$HPE_ACCELERATOR
    ACCELERATOR_REASON="HPE_ACCELERATOR=$HPE_ACCELERATOR"
    case "$ACCELERATOR" in
      cpu|cuda|cuda13|tpu) ;;
      *) echo "HPE_ACCELERATOR must be cpu, cuda, cuda13 or tpu, got '$ACCELERATOR'" >&2; exit 2 ;;
    esac
  elif gpus=$(nvidia-smi -L 2>/dev/null | grep '^GPU') && [ -n "$gpus" ]; then
    ACCELERATOR=cuda
    ACCELERATOR_REASON="nvidia-smi lists $(wc -l <<< "$gpus") GPU(s): ${gpus%%$'\n'*}"
  elif compgen -G '/dev/accel[0-9]*' > /dev/null; then
    ACCELERATOR=tpu
    ACCELERATOR_REASON="TPU devices $(echo /dev/accel[0-9]*)"
  elif chips=$(tpu_chips) && [ "$chips" -gt 0 ]; then
    ACCELERATOR=tpu
    ACCELERATOR_REASON="$chips Google TPU chip(s) on the PCI bus"
  elif [ -n "${TPU_ACCELERATOR_TYPE:-}${TPU_NAME:-}" ]; then
    ACCELERATOR=tpu
    ACCELERATOR_REASON="TPU_ACCELERATOR_TYPE or TPU_NAME is set"
  elif command -v nvidia-smi > /dev/null; then
    ACCELERATOR=cpu
    ACCELERATOR_REASON="nvidia-smi lists no GPU ($(nvidia-smi -L 2>&1 | head -n 1 || true)); no TPU found"
  else
    ACCELERATOR=cpu
    ACCELERATOR_REASON="no GPU (nvidia-smi) or TPU found"
  fi
}

# setup_env PURPOSE TARGET: installs the project (TARGET: `.[train,...]` to run, `.[test]` for
# the tests) unless the environment already holds TARGET for this pyproject.toml; one stamp per
# PURPOSE (run, test), so a new target (another accelerator) re-installs. HPE_DRY_RUN: says the
# install command and exits.
setup_env() {
  local purpose=$1 target=$2 stamp want extra=""
  if [ "$purpose" = test ]; then
    extra=$TEST_NO_DEPS
  fi
  if [ -n "${HPE_DRY_RUN:-}" ]; then
    echo "HPE_DRY_RUN: would run: $VENV/bin/python -m pip install -e '$target'${extra:+ && pip install --no-deps $extra}"
    exit 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    stage "Creating the virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  stamp="$VENV/.hpe_jax_installed_$purpose"
  want=$( (cat pyproject.toml; echo "$target $extra") | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    stage "Reusing the installed environment in $VENV ($target)"
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

# choose_config: the backend JAX sees (a warning if it misses the accelerator found) and the
# preset: quick on the CPU, full on a GPU/TPU, unless HPE_PRESET says.
choose_config() {
  local backend devices reason
  read -r backend devices < <("$VENV/bin/python" -c 'import jax; d = jax.devices()
print(jax.default_backend(), f"{len(d)} x {d[0].device_kind}")' 2>/dev/null || echo cpu unknown)
  stage "JAX sees the $backend backend ($devices)"
  if [ "$backend" = cpu ] && [ "$ACCELERATOR" != cpu ]; then
    echo "WARNING: $ACCELERATOR_REASON, but JAX sees only the CPU: training runs on the CPU ($VENV/bin/python -c 'import jax; jax.devices(\"${ACCELERATOR%13}\")' says why)." >&2
  fi
  if [ -n "${HPE_PRESET:-}" ]; then
    PRESET=$HPE_PRESET
    reason="HPE_PRESET=$HPE_PRESET"
  elif [ "$backend" = cpu ]; then
    PRESET=quick
    reason="the 32 px, 2-epoch preset on the CPU; HPE_PRESET=full forces the full one"
  else
    PRESET=full
    reason="the full 256 px set-up on the $backend; HPE_PRESET=quick forces the short one"
  fi
  case "$PRESET" in
    # The evaluation's hypotheses and latent pictures, sized to the preset's few minutes.
    quick) CONFIG=${HPE_CONFIG:-configs/crossmodal.py:quick}
           EVAL_FLAGS=(--num_hypotheses=20 --max_hypothesis_poses=1000 --umap_neighbors=15
                       --latent_max_points=1000) ;;
    full) CONFIG=${HPE_CONFIG:-configs/crossmodal.py}
          EVAL_FLAGS=(--num_hypotheses=50) ;;
    *) echo "HPE_PRESET must be quick or full, got '$PRESET'" >&2; exit 2 ;;
  esac
  WORKDIR=${HPE_WORKDIR:-$PWD/workdirs/$(basename "${CONFIG%%:*}" .py)_$PRESET}
  DATASET=$("$VENV/bin/python" -c 'import sys; from hpe_jax import config_lib
print(config_lib.load(sys.argv[1]).dataset)' "$CONFIG")
  stage "Preset $PRESET: config $CONFIG ($reason)"
}

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

case "${1:-train}" in
  test)
    setup_env test ".[test]"
    stage "Running the test suite"
    exec "$VENV/bin/python" -m pytest -n 2 -q tests
    ;;
  train)
    detect_accelerator
    stage "Accelerator: $ACCELERATOR ($ACCELERATOR_REASON)"
    if [ "$ACCELERATOR" = cpu ]; then
      setup_env run ".[train]"
    else
      setup_env run ".[train,$ACCELERATOR]"
    fi
    if [ "${HPE_ACCELERATOR:-}" = cpu ]; then
      export JAX_PLATFORMS=cpu
    fi
    choose_config
    if [[ "$DATASET" == h36m_synthetic/* ]]; then
      stage "Preparing the synthetic dataset $DATASET in $DATA_DIR (built once)"
      quiet "$VENV/bin/python" -m tfds_h36m.prepare --dataset="$DATASET" --data_dir="$DATA_DIR"
    fi
    if [ -n "$(ls -d "$WORKDIR"/checkpoints/[0-9]* 2>/dev/null)" ]; then
      stage "Training $CONFIG in $WORKDIR: a checkpoint is there, so it resumes (or only evaluates if done)"
    else
      stage "Training $CONFIG in $WORKDIR"
    fi
    quiet "$VENV/bin/python" -m hpe_jax.main --config="$CONFIG" --config.data_dir="$DATA_DIR" \
      --workdir="$WORKDIR"
    stage "Evaluating the best checkpoint: tables, figures, sampled hypotheses (${EVAL_FLAGS[*]})"
    quiet "$VENV/bin/python" -m hpe_jax.evaluate --workdir="$WORKDIR" "${EVAL_FLAGS[@]}"
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
  Lift your own keypoints (COCO, OpenPose, AlphaPose, mmpose, BlazePose, H36M-17; docs/lifting.md)
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
