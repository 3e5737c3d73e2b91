#!/usr/bin/env bash
# Run experiments/gpu_bench.py on a GPU machine that has no package registry.
#
#   bash experiments/gpu_bench.sh [gpu_bench.py args]      # on the GPU machine, repo root
#   bash experiments/gpu_bench.sh --fetch-wheels           # HERE (with PyPI), beforehand
#
# 1. Installs every wheel carried in .whl/ (pip --no-index --no-deps) into a private
#    target dir and puts it on PYTHONPATH (FAISS is the only package the bench needs that
#    the lent machines' image lacks; without it the FAISS rows are omitted and say so).
# 2. Runs the benchmark under `timeout` (GPU_BENCH_LIMIT_S, default 470 s < 8 min); the
#    DRCDown part gets the limit minus 120 s as its budget, the throughput part the rest.
# 3. Results: $GPU_BENCH_OUT_DIR (default docs/)/gpu_bench_results.{json,md}, written
#    atomically after every measurement; copied to $OUT when that is set (device tool).
#
# Environment: PYTHON (default python3), GPU_BENCH_LIMIT_S, GPU_BENCH_OUT_DIR,
# FAISS_WHEEL (what --fetch-wheels downloads, default faiss-cpu), WHEEL_PY (default 3.12).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    mkdir -p .whl
    exec "$PY" -m pip download --no-deps --only-binary=:all: \
        --python-version "${WHEEL_PY:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${FAISS_WHEEL:-faiss-cpu}"
fi

LIMIT=${GPU_BENCH_LIMIT_S:-470}
OUT_DIR=${GPU_BENCH_OUT_DIR:-docs}
if [[ ! "$LIMIT" =~ ^[0-9]+$ ]] || (( LIMIT < 60 )); then
    echo "error: GPU_BENCH_LIMIT_S must be an integer >= 60 (seconds), found '$LIMIT'" >&2
    exit 2
fi

shopt -s nullglob
wheels=(.whl/*.whl)
if (( ${#wheels[@]} )); then
    site=$(mktemp -d /tmp/syndr_site.XXXXXX)
    echo "[gpu_bench.sh] installing ${#wheels[@]} carried wheel(s) into $site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "${wheels[@]}" || { echo "error: installing .whl/*.whl failed" >&2; exit 2; }
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout --signal=TERM --kill-after=15 "$LIMIT" \
    "$PY" experiments/gpu_bench.py --out-dir "$OUT_DIR" --budget-s $((LIMIT - 120)) "$@"
rc=$?
(( rc == 124 )) && echo "[gpu_bench.sh] stopped at the ${LIMIT} s limit; partial results kept" >&2
if [[ -n "${OUT:-}" && -d "${OUT}" ]]; then
    cp "$OUT_DIR"/gpu_bench_results.json "$OUT_DIR"/gpu_bench_results.md "$OUT"/ 2>/dev/null
fi
exit "$rc"
