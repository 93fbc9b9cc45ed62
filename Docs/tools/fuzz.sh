#!/usr/bin/env bash
# Fuzzes the project's file parsers with libFuzzer (coverage-guided, with
# AddressSanitizer), each for SECONDS, JOBS at a time, and prints per parser
# the executions, the corpus and the crashes found (Docs/reliability.md).
#
#   Docs/tools/fuzz.sh SECONDS [TARGET...]      e.g. Docs/tools/fuzz.sh 600
#   JOBS=2 (default: the number of cores)
#
# Targets: npy npz safetensors trace spec run-config checkpoint idx cifar-dir
# cifar-tgz jpeg. Each starts from the seeds `alexnet-fuzz seeds` writes (valid
# files made by the library's writers) and the regression inputs in
# Fixtures/fuzz/TARGET/. Work goes to .build/fuzz-work/: corpus/TARGET,
# crashes/TARGET (a crash, timeout or out-of-memory input each), TARGET.log.
# Replay an input with: .build/debug/alexnet-fuzz run TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: Docs/tools/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(npy npz safetensors trace spec run-config checkpoint idx cifar-dir cifar-tgz jpeg)
jobs=${JOBS:-$(nproc)}
work=.build/fuzz-work

echo "building the replay tool and the fuzzer (release, -sanitize=fuzzer,address)..."
swift build --product alexnet-fuzz >/dev/null
swift build -c release --product alexnet-fuzz --scratch-path .build/fuzz \
    -Xswiftc -DFUZZING -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
    -Xcc -fsanitize=fuzzer-no-link,address >/dev/null
fuzzer=.build/fuzz/release/alexnet-fuzz

rm -rf "$work/seeds"
.build/debug/alexnet-fuzz seeds "$work/seeds" >/dev/null

run_one() {
    local target=$1
    mkdir -p "$work/corpus/$target" "$work/crashes/$target"
    cp -n "$work/seeds/$target/"* "$work/corpus/$target/" 2>/dev/null || true
    [ -d "Fixtures/fuzz/$target" ] && cp -n "Fixtures/fuzz/$target/"* "$work/corpus/$target/" 2>/dev/null || true
    SWIFT_BACKTRACE=enable=no ALEXNET_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=0 \
        "$fuzzer" "$work/corpus/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$work/crashes/$target/" >"$work/$target.log" 2>&1 || true
}
export -f run_one
export work seconds fuzzer
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

printf '\n| parser | seconds | executions | executions/s | corpus files | crashes |\n|---|---|---|---|---|---|\n'
for target in "${targets[@]}"; do
    log="$work/$target.log"
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$seconds")
    corpus=$(ls "$work/corpus/$target" | wc -l)
    crashes=$(ls "$work/crashes/$target" | wc -l)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$target" "$took" "$runs" "$(( runs / (took > 0 ? took : 1) ))" "$corpus" "$crashes"
done
if ls "$work"/crashes/*/* >/dev/null 2>&1; then
    echo; echo "crashing inputs:"; ls "$work"/crashes/*/*
    exit 1
fi
