#!/usr/bin/env bash
# `make fuzz`: the schemathesis suite (tests/reliability/test_fuzz_e2e.py), long variant: every coverage
# case and 100 Hypothesis examples per operation, role and valid/invalid data. Override any knob:
# MIF_FUZZ_EXAMPLES=300 MIF_FUZZ_SEED=7 MIF_FUZZ_REPORT=/tmp/fuzz.json make fuzz
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh

prepare
export MIF_FUZZ_EXAMPLES="${MIF_FUZZ_EXAMPLES:-100}"
export MIF_FUZZ_COVERAGE="${MIF_FUZZ_COVERAGE:-all}"
export MIF_FUZZ_TIMEOUT="${MIF_FUZZ_TIMEOUT:-5400}"
exec .venv/bin/pytest tests/reliability/test_fuzz_e2e.py -p no:cacheprovider -q -s "$@"
