#!/usr/bin/env bash
# The nightly fuzz run (docs/security.md, "Testing"): the seeded hardening suites with SAFECODE_FUZZ=nightly (25x the
# mutants of the CI run, and the server memory test at the issue's full size) and a new seed each night. Prints one
# summary line with the command that replays the night; exits non-zero when a case failed.
set -uo pipefail
cd "$(dirname "$0")/.."

seed=${SAFECODE_FUZZ_SEED:-$(date -u +%Y%m%d)}
export SAFECODE_FUZZ=nightly SAFECODE_FUZZ_SEED=$seed
out=${FUZZ_OUT:-TestResults/fuzz-nightly-$seed}
filter='FullyQualifiedName~Hardening|FullyQualifiedName~ServeMemoryTests|FullyQualifiedName~ServeAdmissionTests'

dotnet build SafeCoDe.Torch.sln -c Debug -v quiet -nologo || { echo "fuzz-nightly seed $seed: build failed"; exit 1; }
status=0
for project in tests/SafeCoDe.Torch.Tests tests/SafeCoDe.Eval.Tests; do
  dotnet test "$project" --no-build --filter "$filter" --logger "trx;LogFilePrefix=fuzz" --results-directory "$out" || status=1
done
if [ "$status" -eq 0 ]; then verdict=clean; else verdict=FAILED; fi
echo "fuzz-nightly seed $seed: $verdict (results in $out; replay: SAFECODE_FUZZ_SEED=$seed tools/fuzz-nightly.sh)"
exit $status
