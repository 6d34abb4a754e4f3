#!/usr/bin/env bash
# The device check: one call on a GPU machine (or any machine) that
#   1. installs the [gpu] extra (CuPy) when a CUDA GPU is present and CuPy is missing, and any wheels
#      carried in .whl/ (or $DBENCH_WHEELS) for packages the machine lacks (benchmarks/gpu_wheels.sh);
#   2. runs the gpu-marked tests (tests/test_gpu_*.py and every other test marked gpu);
#   3. measures the device estimators' agreement with the host ones (benchmarks/gpu_agreement.py);
#   4. runs the GPU benchmarks (tests/benchmarks/test_bench_gpu.py: every headline metric at the
#      published sizes, then at 10x samples and latents, CuPy and torch-CUDA against NumPy);
#   5. writes ONE JSON of pass/fail and timings (benchmarks/gpu_check_summary.py).
# On a machine without a CUDA GPU every step still runs, and the GPU parts are reported as skipped.
#
# Usage: benchmarks/gpu_check.sh [OUTPUT.json]
#   OUTPUT.json defaults to $OUT/gpu_check.json when $OUT is set, else ./gpu_check.json.
#   GPU_CHECK_BUDGET  seconds for the whole check (default 480: it ends within 8 minutes)
#   PYTHON            the interpreter (default python3)
#   DBENCH_WHEELS     folder of wheels to install offline (default .whl when it exists)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}
PY=${PYTHON:-python3}
OUTPUT=${1:-}
if [ -z "$OUTPUT" ]; then
    if [ -n "${OUT:-}" ]; then OUTPUT="$OUT/gpu_check.json"; else OUTPUT="$ROOT/gpu_check.json"; fi
fi
WORK=$(mktemp -d)
STEPS="$WORK/steps.jsonl"
: >"$STEPS"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Benchmarks skip themselves once this moment has passed, so their JSON is always written in time.
export DBENCH_BENCH_DEADLINE=$((START + BUDGET - 45))

left() { echo $((BUDGET - ($(date +%s) - START))); }
# step NAME SECONDS COMMAND...: run under a time limit, log to $WORK/NAME.log, record rc and seconds.
step() {
    local name=$1 limit=$2
    shift 2
    local budget_left
    budget_left=$(left)
    if [ "$limit" -gt $((budget_left - 20)) ]; then limit=$((budget_left - 20)); fi
    if [ "$limit" -le 5 ]; then
        printf '{"step": "%s", "rc": null, "seconds": 0, "note": "not run: time budget spent"}\n' "$name" >>"$STEPS"
        echo "== $name: not run (time budget spent)"
        return
    fi
    echo "== $name (limit ${limit}s)"
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1
    rc=$?
    printf '{"step": "%s", "rc": %d, "seconds": %d, "limit": %d}\n' "$name" "$rc" $(($(date +%s) - t0)) "$limit" >>"$STEPS"
    tail -n 5 "$WORK/$name.log"
}

# 1. Install what is missing.
WHEELS=${DBENCH_WHEELS:-}
if [ -z "$WHEELS" ] && [ -d .whl ]; then WHEELS=.whl; fi
if [ -n "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" "$WHEELS"/*.whl
    export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi
HAS_GPU=$("$PY" - <<'EOF'
try:
    import torch
    print(int(torch.cuda.is_available()))
except Exception:
    import shutil, subprocess
    ok = shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    print(int(bool(ok)))
EOF
)
if [ "$HAS_GPU" = 1 ]; then
    if "$PY" -c "import cupy" >/dev/null 2>&1; then
        printf '{"step": "gpu_extra", "rc": 0, "seconds": 0, "note": "CuPy already installed"}\n' >>"$STEPS"
    else
        # The [gpu] extra of pyproject.toml; offline machines fail fast and the CuPy parts are skipped.
        step gpu_extra 150 "$PY" -m pip install --retries 0 --timeout 10 "cupy-cuda12x>=13"
    fi
else
    printf '{"step": "gpu_extra", "rc": null, "seconds": 0, "note": "skipped: no CUDA GPU on this machine"}\n' >>"$STEPS"
fi
step imports 60 "$PY" -c "import dbench.metrics, dbench.estimators.array_trees, dbench.estimators.device_logistic; print('dbench imports')"

# 2. The gpu-marked tests (they skip cleanly without a GPU).
step gpu_tests 150 "$PY" -m pytest -q -m gpu tests --ignore=tests/benchmarks -p no:cacheprovider -o addopts="-ra" \
    --junitxml="$WORK/gpu_tests.xml"

# 3. Agreement of the device estimators with the host ones, on the GPU backends.
step agreement 120 "$PY" benchmarks/gpu_agreement.py --backends cupy torch-cuda --out "$WORK/agreement.json"

# 4. The GPU benchmarks: published sizes first, so that their timings survive a tight budget.
for size in published 10x; do
    step "bench_$size" 600 "$PY" -m pytest -q tests/benchmarks/test_bench_gpu.py -p no:cacheprovider -o addopts="" \
        --benchmark-only -k "$size" --benchmark-json="$WORK/bench_$size.json"
done

# 5. One JSON.
"$PY" benchmarks/gpu_check_summary.py --work "$WORK" --seconds $(($(date +%s) - START)) --out "$OUTPUT"
rc=$?
echo "== wrote $OUTPUT"
exit $rc
