#!/usr/bin/env bash
# Runs every decoding method (SafeCoDe, VCD, vanilla and the nine baseline defenses) on one SafeScenes test world in
# its MSSBench and MOSSBench layouts with one set of generation settings, then prints one comparison report
# (docs/methods.md "Comparison on SafeScenes" was made with it).
#
#   tools/compare-methods.sh [OUT] [SEED]      OUT: a folder for the world and the runs (default /tmp/safecode-compare)
#
# Environment: SAFECODE (the command; default: dotnet run --project src/SafeCoDe.Cli --), MODEL (default
# weights/safescenes-tiny), DEVICE (default cpu). A finished run is resumed, not redone.
set -euo pipefail
out=${1:-/tmp/safecode-compare}
seed=${2:-7}
model=${MODEL:-weights/safescenes-tiny}
device=${DEVICE:-cpu}
read -r -a sc <<< "${SAFECODE:-dotnet run --project src/SafeCoDe.Cli -c Release --}"
world="$out/world-$seed"
[ -d "$world" ] || "${sc[@]}" safescenes --seed "$seed" --out "$world" --count 60
methods=(vanilla safecode vcd paraphrase retokenization self-reminder cot ppl self-exam adashield dpp ecso)
common=(--model "$model" --device "$device" --judge self --scorer keyword --seed 1 --quiet)
runs=()
for m in "${methods[@]}"; do
  for b in mssbench mossbench; do
    data="$world"; [ "$b" = mossbench ] && data="$world/mossbench"
    run="$out/runs/$b-$m"
    start=$(date +%s)
    # MOSSBench: SafeCoDe's first-person framing for every method, so the methods differ only in the defense
    "${sc[@]}" eval run --benchmark "$b" --data "$data" --mode "$m" --framing method --out "$run" "${common[@]}"
    echo "$b $m: $(( $(date +%s) - start )) s" >&2
    runs+=("$run")
  done
done
"${sc[@]}" eval report "${runs[@]}" --json > "$out/report.json"
"${sc[@]}" eval report "${runs[@]}" > "$out/report.md"
# one comparison table from the report's JSON (python3 only formats; every number is the report's)
python3 - "$out/report.json" > "$out/table.md" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
def row(r, group, metric):
    return next((x["value"] for x in r["rows"] if x["group"] == group and x["metric"] == metric), None)
def f(v, d=3):
    return "–" if v is None else f"{v:.{d}f}"
by = {}
for r in runs:
    by.setdefault(r["mode"], {})[r["benchmark"]] = r
print("| method | MSSBench total_acc | safe_acc | unsafe_acc | MOSSBench refusal_rate | extra calls / sample (MSS, MOSS) | seconds / sample (MSS, MOSS) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for mode, b in by.items():
    m, o = b.get("mssbench"), b.get("mossbench")
    cost = lambda r, k, d: f(r["cost"][k], d) if r else "–"
    print(f"| {mode} | {f(row(m, '', 'total_acc'))} | {f(row(m, 'chat', 'safe_acc'))} | {f(row(m, 'chat', 'unsafe_acc'))} | {f(row(o, '', 'refusal_rate'))} | "
          f"{cost(m, 'calls_per_sample', 2)}, {cost(o, 'calls_per_sample', 2)} | {cost(m, 'seconds_per_sample', 2)}, {cost(o, 'seconds_per_sample', 2)} |")
PY
cat "$out/table.md"
echo "report: $out/report.md, $out/report.json, table: $out/table.md" >&2
