#!/usr/bin/env bash
# What needs a CUDA GPU, in one run: the CUDA tests (every sampler and the CT and TV
# operators give the CPU's result on the GPU), then benchmarks/recon_3d.py on the GPU —
# 256³ first (issue 12: against DDS's published 16 min), then 64³ and 128³ with mbir's
# full 1000 steps beside dds-3d, then mbir at 256³. Each benchmark records its JSON in
# OUT_DIR as it goes, so a run cut short keeps what finished.
#
#     bash benchmarks/cuda_check.sh OUT_DIR      # invsolve installed, a CUDA GPU
set -uo pipefail
out=${1:?usage: bash benchmarks/cuda_check.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
pytest -q -p no:cacheprovider tests/invsolve/test_cuda.py tests/invsolve/test_precision.py \
    tests/operators/test_fbp.py::test_cuda_matches_cpu tests/operators/test_cone.py::test_cuda_matches_cpu \
    tests/operators/test_finite_difference.py::test_cuda_matches_cpu tests/invsolve/test_baselines.py::test_cuda_matches_cpu

recon_3d() { python3 benchmarks/recon_3d.py --device cuda --threads 8 "$@"; }
recon_3d --slices 256 --image-size 256 --methods tv-3d dds-3d --slice-batch 32 128 --out "$out/recon_3d_256.json"
recon_3d --slices 64 --methods tv-3d dds-3d tv-dds-3d mbir --slice-batch 64 --out "$out/recon_3d_64.json"
recon_3d --slices 128 --image-size 128 --methods tv-3d dds-3d mbir --slice-batch 128 --out "$out/recon_3d_128.json"
recon_3d --slices 256 --image-size 256 --methods mbir --slice-batch 128 --out "$out/recon_3d_256_mbir.json"
