#!/usr/bin/env bash
# Second GPU check: the engine end to end on CUDA (generate on the shipped tiny model), then one whole SafeCoDe request
# at LLaVA-NeXT-7B shapes next to the reference code's way of running it in HF (tools/fixtures/perf_ref_request.py),
# in the same run. Usage (repo root, GPU host): OUT=/dir bash tools/gpu/request.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/safecode-gpu-out}; mkdir -p "$OUT"
SC_DIR=/tmp/safecode-gpu; rm -rf "$SC_DIR"; mkdir -p "$SC_DIR"
tar xJf .publish/safecode-linux-x64.tar.xz -C "$SC_DIR" || { echo "no publish: run tools/gpu/build-publish.sh first"; exit 1; }
SC="$SC_DIR/safecode/safecode"
export PYTHONUNBUFFERED=1
run() { local name=$1 t=$2; shift 2; echo "== $name"; timeout "$t" "$@" > "$OUT/$name.log" 2>&1; echo "rc=$?" >> "$OUT/$name.log"; tail -n 12 "$OUT/$name.log"; }
run generate-cuda 60 "$SC" generate --model weights/llava-next-tiny --image weights/llava-next-tiny/example.png --prompt "What is in this picture?" --device cuda --seed 1 --max-new-tokens 32 --json
run request-safecode 100 "$SC" bench --request --device cuda --dtype bfloat16
run request-hf-reference 120 python3 tools/fixtures/perf_ref_request.py
