#!/usr/bin/env bash
# One entry point for a fresh machine.
#   ./run.sh        install (first time), build the synthetic dataset (first time), train, evaluate
#   ./run.sh test   install (first time) and run the test suite
# Variables: HPE_VENV (virtual environment, default .venv), HPE_DATA_DIR (TFDS data,
# default ./data), HPE_CONFIG (default configs/lifting.py), HPE_WORKDIR (default
# ./workdirs/<config name>), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")"

VENV=${HPE_VENV:-.venv}
PY=${PYTHON:-python3}
DATA_DIR=${HPE_DATA_DIR:-$PWD/data}

stage() { printf '\n==> %s\n' "$*"; }

setup_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    stage "Creating the virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.hpe_jax_installed" want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    stage "Reusing the installed environment in $VENV"
  else
    stage "Installing hpe_jax and its dependencies into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --upgrade --quiet pip
    "$VENV/bin/python" -m pip install --progress-bar on -e ".[test]"
    echo "$want" > "$stamp"
  fi
}

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

case "${1:-train}" in
  test)
    setup_env
    stage "Running the test suite"
    exec "$VENV/bin/python" -m pytest -n 2 -q tests
    ;;
  train)
    setup_env
    stage "Preparing the synthetic dataset h36m_synthetic/default in $DATA_DIR"
    "$VENV/bin/python" -m tfds_h36m.prepare --dataset=h36m_synthetic/default --data_dir="$DATA_DIR"
    CONFIG=${HPE_CONFIG:-configs/lifting.py}
    WORKDIR=${HPE_WORKDIR:-$PWD/workdirs/$(basename "${CONFIG%%:*}" .py)}
    stage "Training $CONFIG in $WORKDIR (resumes if a checkpoint is there)"
    "$VENV/bin/python" -m hpe_jax.main --config="$CONFIG" --config.data_dir="$DATA_DIR" \
      --workdir="$WORKDIR"
    stage "Done. TensorBoard: $VENV/bin/tensorboard --logdir=$WORKDIR"
    ;;
  *)
    echo "usage: ./run.sh [train|test]" >&2
    exit 2
    ;;
esac
