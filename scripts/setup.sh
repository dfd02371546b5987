#!/usr/bin/env bash
# Set the project up on a fresh machine: bubblewrap for the sandbox (when we
# may install system packages), a virtual environment in .venv, the project
# with its test tools.  Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap (sandbox isolation)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "setup: could not install bubblewrap; the sandbox falls back to process isolation" >&2
  else
    echo "setup: bubblewrap is not installed; the sandbox falls back to process isolation (see README)" >&2
  fi
fi

# Headless Chromium renders the HTML report in the reports test.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  bash scripts/install_chromium.sh >/dev/null 2>&1 || echo "setup: could not install chromium; the HTML rendering test will be skipped" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The tests run a tiny transformers model on the CPU.  Ask for torch first and
# by exact version: this machine image carries that CPU wheel, whereas an
# open range would fetch a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==${HARNESS_TORCH_VERSION:-2.13.0}" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
.venv/bin/python -c "import harness, benchmarks" >/dev/null
