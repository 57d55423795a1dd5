#!/usr/bin/env bash
# The spoken-digit recipe on human voices it never heard: each FSDD speaker held out in turn.
#   scripts/loo-digits.sh FSDD_DIR [--family s4d|s5|lru] [--out DIR] [--speakers "A B …"] [-- TRAIN_OPTION …]
# 1. the data set of scripts/train-digits.sh (.build-digits/), which holds, for each speaker, the
#    recipe's training manifest without his recordings (loo-train-SPEAKER.csv) and them
#    (loo-test-SPEAKER.csv);
# 2. for each speaker: ssm-stream train with the recipe (examples/train/digits.toml, the family's
#    architecture, and TRAIN_OPTIONs after `--`: a change to try, e.g. `-- --tilt 0.8`), then eval on
#    the held-out synthetic voices (test-synth.csv) and on his recordings;
# 3. one line per speaker and the means over them, in DIR/summary.txt (default DIR:
#    .build-digits/loo/FAMILY). The recipe's nicolas run is the shipped model's.
# One training after another, each on the recipe's two threads: about 20 minutes each on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
usage='usage: scripts/loo-digits.sh FSDD_DIR [--family s4d|s5|lru] [--out DIR] [--speakers "A B …"] [-- TRAIN_OPTION …]'
fsdd="${1:?$usage}"; shift
family=s4d out="" speakers=""
while [ $# -gt 0 ]; do
    case "$1" in
        --family) family="${2:?$usage}"; shift 2 ;;
        --out) out="${2:?$usage}"; shift 2 ;;
        --speakers) speakers="${2:?$usage}"; shift 2 ;;
        --) shift; break ;;
        *) echo "$usage" >&2; exit 64 ;;
    esac
done
[ -f "examples/train/digits-$family.json" ] || { echo "no architecture examples/train/digits-$family.json (s4d, s5 or lru)" >&2; exit 64; }
. scripts/digits-data.sh
out="${out:-.build-digits/loo/$family}"
mkdir -p "$out"
[ -n "$speakers" ] || speakers=$(cd .build-digits && ls loo-train-*.csv | sed 's/^loo-train-//; s/\.csv$//')
accuracy() { python3 -c 'import json, sys; print("%.1f" % (100 * json.load(sys.stdin)["accuracy"]))'; }
summary="$out/summary.txt"
scores=""   # "human synthetic" per speaker, for the means
echo "# scripts/loo-digits.sh --family $family${*:+ -- $*} ($(date -u +%Y-%m-%dT%H:%MZ))" > "$summary"
for speaker in $speakers; do
    [ -f ".build-digits/loo-train-$speaker.csv" ] || { echo "no speaker $speaker (.build-digits/loo-train-$speaker.csv)" >&2; exit 64; }
    model="$out/digits-$speaker.safetensors"
    start=$(date +%s)
    $bin train --config examples/train/digits.toml --arch "examples/train/digits-$family.json" \
        --data ".build-digits/loo-train-$speaker.csv" -o "$model" --json "$@" > "$out/train-$speaker.jsonl"
    seconds=$(( $(date +%s) - start ))
    synth=$($bin eval "$model" .build-digits/test-synth.csv --json | accuracy)
    human=$($bin eval "$model" ".build-digits/loo-test-$speaker.csv" --json | accuracy)
    echo "$speaker held out: human $human %, synthetic $synth %, training $seconds s" | tee -a "$summary"
    scores="$scores $human $synth"
done
python3 -c 'import sys
h, s = [float(x) for x in sys.argv[1::2]], [float(x) for x in sys.argv[2::2]]
print(f"mean over {len(h)} held-out speakers: human {sum(h) / len(h):.2f} %, synthetic {sum(s) / len(s):.2f} %")' \
    $scores | tee -a "$summary"
