#!/usr/bin/env bash
# End-to-end A/B of two seekmath binaries on one GPU host: `generate bench` (steady tokens/s) with OLD and NEW
# alternating, ROUNDS times per shape, on the same random-weight Qwen2.5-shaped models, so that run-to-run drift of
# the machine falls on both sides alike. Prints one line per run; the JSON of each run lands in $OUT.
#   OLD=.gpu/seekmath.old NEW=.gpu/seekmath.new OUT=... scripts/gpu/generate_ab.sh
# Knobs: SHAPES="0.5b 1.5b", BATCHES=64,256,512, ROUNDS=2, NEW_TOKENS=512, PROMPT_LEN=32, DEVICE=cuda.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
: "${OLD:?set OLD to the baseline binary}" "${NEW:?set NEW to the binary under test}"
SHAPES="${SHAPES:-0.5b 1.5b}"
BATCHES="${BATCHES:-64,256,512}"
ROUNDS="${ROUNDS:-2}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
for shape in $SHAPES; do
    "$PY" scripts/gpu/generate_bench.py make --shape "$shape" --out "$WORK/$shape" > /dev/null
    for round in $(seq "$ROUNDS"); do
        for side in old new; do
            bin="$OLD"; [ "$side" = new ] && bin="$NEW"
            json="$OUT/$shape.$side.$round.json"
            "$bin" generate bench --model "$WORK/$shape" --device "${DEVICE:-cuda}" --batch-sizes "$BATCHES" \
                --new-tokens "${NEW_TOKENS:-512}" --prompt-len "${PROMPT_LEN:-32}" --json "$json" \
                > "$OUT/$shape.$side.$round.log" 2>&1 || { tail -n 20 "$OUT/$shape.$side.$round.log"; exit 1; }
            "$PY" -c "
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], sys.argv[3], 'round', sys.argv[4], ', '.join(
    f\"B={x['batch']}: {x['tokens_per_s']:,.0f} tok/s (HBM {x['hbm_fraction']:.4f})\" for x in r['results']))
" "$json" "$shape" "$side" "$round"
        done
    done
done
