#!/usr/bin/env bash
# The main job: every method on the embedded default, 8 and 64 examples per class, 3 seeds.
# Creates the environment on first use. Extra arguments go to the benchmark, e.g. ./run_all.sh --shots 8,64,all
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/ensure_env.sh
exec "${FEWSHOT_BENCH_VENV:-.venv}/bin/python" -m benchmark --shots 8,64 --seeds 3 "$@"
