#!/usr/bin/env bash
# Every GPU check and benchmark of issue #9 in one run, for a lent device (about 8 minutes on an H200).
# Run from the repository root; results go to $OUT (the device tool's output folder) or gpu-results/.
# Uses the machine's own python3 with src/ on the path (torch there may differ from the pinned 2.14.1).
# Lucent rows need torch-lucent, kornia==0.4.1, decorator and IPython: carry them as wheels in .whl/
# (see /work/.library/device/README.md); without them the benchmark prints "Lucent: not installed".
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/torch.txt"
run() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; echo "exit $?" >> "$OUT/$name.txt"
  tail -n 25 "$OUT/$name.txt"
}
run gpu-tests 240 python3 -m pytest -q -rs -p no:cacheprovider -k "gpu or cuda" tests
run sync-check 60 python3 benchmarks/gpu_sync_check.py --steps 20
run am-throughput-bf16 240 python3 benchmarks/am_throughput.py --model resnet18 --batches 1,64,256 \
  --precision bf16 --channels-last --repeats 3
run am-throughput-fp32 120 python3 benchmarks/am_throughput.py --model resnet18 --batches 64 --no-compile \
  --repeats 3 --plain-images 0
run activation-cost 90 python3 benchmarks/activation_cost.py --device cuda
