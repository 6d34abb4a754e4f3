#!/usr/bin/env bash
# Download, on a machine with PyPI access, the wheels a GPU machine without a registry lacks for dbench,
# into .whl/ (git-ignored), so that benchmarks/gpu_check.sh installs them there offline. The lent H200 image has numpy, scipy, scikit-learn, numba, torch, CuPy (CUDA 13),
# pytest and pytest-benchmark, but not pydantic, array-api-compat or array-api-strict (KINDS.md).
#
# Usage: benchmarks/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12, the H200 image's python3)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
mkdir -p .whl
# Versions this checkout is tested with (pip list in the development venv).
packages=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
          array-api-compat==1.16.0 array-api-strict==2.6.1)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${packages[@]}"
ls -l .whl
