#!/usr/bin/env bash
# The test suite (offline; includes one end-to-end run with the real embedded model). Creates the environment
# on first use. Extra arguments go to pytest, e.g. ./run_tests.sh -k registry
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/ensure_env.sh
exec "${FEWSHOT_BENCH_VENV:-.venv}/bin/python" -m pytest -q "$@"
