#!/usr/bin/env python3
"""A classifier's accuracy on the synthetic test set, voice by voice: by accent and by variant.

usage: Benchmarks/training/per-voice-eval.py MODEL [MANIFEST] [--cli PATH]

MANIFEST (default .build-digits/test-synth.csv) lists recordings named as scripts/make-digits.py
names its espeak-ng takes, synth/ACCENT_VARIANT_WORD_TAKE.wav; other rows (noise-only clips, the
other synthesizers' voices) are left out. Each accent's and each variant's rows are scored apart
with `ssm-stream eval`. Prints one line per group: its size, its accuracy, and its confusions
(true → heard, count), most frequent first.

The test set's accent en-029 is test-only for every variant, and the variants f4, m5, klatt3 and
whisper are test-only in every accent: this says which of the two a model misses (README, "Spoken
digits"). Needs nothing beyond Python's standard library.
"""
import argparse, collections, json, os, subprocess, sys, tempfile
import manifest


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest", nargs="?", default=os.path.join(here, "../../.build-digits/test-synth.csv"))
    ap.add_argument("--cli", default=os.path.join(here, "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    rows, base = manifest.read(a.manifest, "per-voice-eval.py")
    groups = collections.defaultdict(list)
    for path, label in rows:
        parts = os.path.splitext(os.path.basename(path))[0].split("_")
        if not path.startswith("synth/") or len(parts) != 4:
            continue
        full = path if os.path.isabs(path) else os.path.join(base, path)
        groups["accent " + parts[0]].append((full, label))
        groups["variant " + parts[1]].append((full, label))
    if not groups:
        sys.exit(f"per-voice-eval.py: {a.manifest} has no rows named synth/ACCENT_VARIANT_WORD_TAKE.wav")
    with tempfile.TemporaryDirectory() as tmp:
        for group in sorted(groups):
            subset = os.path.join(tmp, "group.csv")
            with open(subset, "w") as f:
                f.write("path,label\n" + "".join(f"{p},{label}\n" for p, label in groups[group]))
            r = json.loads(subprocess.run([a.cli, "eval", a.model, subset, "--json"],
                                          capture_output=True, text=True, check=True).stdout)
            labels = r["labels"]
            confusions = sorted(((n, labels[i], labels[j]) for i, row in enumerate(r["confusion"])
                                 for j, n in enumerate(row) if n and i != j), reverse=True)
            heard = ", ".join(f"{t} → {h} {n}" for n, t, h in confusions[:4])
            print(f"{group:28s} {r['clips']:4d} recordings  {100 * r['accuracy']:5.1f} %  {heard}")


if __name__ == "__main__":
    sys.exit(main())
