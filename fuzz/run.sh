#!/usr/bin/env bash
# Runs every fuzz target (or those named in FUZZ_TARGETS) under libFuzzer for SECONDS each
# (default 60), one after another, and fails on the first crash. Needs a nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`).
#
# Inputs that reach new code are added to corpus/TARGET; a crashing input is written to
# artifacts/TARGET/ and the run stops. Commit the crash input with its fix: on stable,
# tests/fuzz_corpus.rs replays the corpus and every artifact through the same properties.
# Keep the committed corpus small: `cargo +nightly fuzz cmin TARGET` minimises it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
for target in $targets; do
    mkdir -p "corpus/$target" "artifacts/$target"
    printf '\n==> fuzzing %s for %s s\n' "$target" "$seconds"
    # The served targets keep a server alive between inputs: its memory is not a leak.
    cargo +nightly fuzz run --release "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -detect_leaks=0 \
        -print_final_stats=1
done
