#!/usr/bin/env bash
# One GPU check run (device tool): unpack the publish, doctor on CUDA, fp32/bf16 parity on CUDA for every
# supported fixture, then the speed benchmark next to HF transformers' numbers for the same shapes, same run.
# Usage (from the repo root on the GPU host): OUT=/some/dir bash tools/gpu/check.sh [--no-hf]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/safecode-gpu-out}; mkdir -p "$OUT"
SC_DIR=/tmp/safecode-gpu; rm -rf "$SC_DIR"; mkdir -p "$SC_DIR"
tar xJf .publish/safecode-linux-x64.tar.xz -C "$SC_DIR" || { echo "no publish: run tools/gpu/build-publish.sh first"; exit 1; }
SC="$SC_DIR/safecode/safecode"
export PYTHONUNBUFFERED=1
summary=()
step() { # name, timeout, command...
  local name=$1 t=$2; shift 2
  local t0=$(date +%s%N)
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  local dt=$(( ($(date +%s%N) - t0) / 1000000 ))
  summary+=("$(printf '%-30s rc=%-3s %6d ms  %s' "$name" "$rc" "$dt" "$(tail -n 1 "$OUT/$name.log" | cut -c1-110)")")
  echo "== $name rc=$rc (${dt}s)"; tail -n 25 "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv > "$OUT/nvidia-smi.log" 2>&1
step doctor 120 "$SC" doctor --device cuda
# one variant per family (both layouts load the same weights; CPU tests cover the other)
for v in $(for f in weights/fixtures/*/; do ls -d "$f"*/ | tail -n 1; done | sed 's#weights/fixtures/##; s#/$##'); do
  for dt in float32 bfloat16; do
    step "verify-${v//\//-}-$dt" 120 "$SC" verify --model "weights/fixtures/$v" --device cuda --dtype "$dt"
  done
done
step bench-safecode 300 "$SC" bench --shape llava-1.5-7b --device cuda --dtype bfloat16 --steps 128
if [ "${1:-}" != "--no-hf" ]; then
  step bench-hf 300 python3 tools/fixtures/perf_hf.py
fi
echo; echo "==================== summary ===================="
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
