#!/usr/bin/env python3
"""A classifier's accuracy on the synthetic test set, voice by voice: by accent, by variant, and by
whether training heard the accent and the variant.

usage: Benchmarks/training/per-voice-eval.py MODEL [MANIFEST] [--train MANIFEST] [--cli PATH]

MANIFEST (default .build-digits/test-synth.csv) lists recordings named as scripts/make-digits.py
names its espeak-ng takes, synth/ACCENT_VARIANT_WORD_TAKE.wav with ACCENT an espeak-ng English
voice (en-…); other rows (noise-only clips, flite's, festival's, the extra and the whispered
variants) are left out. --train (default: train.csv beside MANIFEST) says which accents and
variants training heard. Each group's rows are scored apart with `ssm-stream eval`. Prints one line
per group: its size, its accuracy, and its four most frequent confusions (true → heard, count).

make-digits.py keeps the accent en-029 and the variants f4, m5, klatt3 and whisper out of
training: the last lines say whether a model misses the unheard accent, the unheard voices, or
both (README, "Spoken digits"). Needs nothing beyond Python's standard library.
"""
import argparse, collections, os, sys
import manifest


def voice(path):
    """(accent, variant) of a make-digits espeak-ng take's path, or None for any other row."""
    parts = os.path.splitext(os.path.basename(path))[0].split("_")
    if os.path.basename(os.path.dirname(path)) != "synth" or len(parts) != 4 or not parts[0].startswith("en"):
        return None
    return parts[0], parts[1]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest", nargs="?", default=os.path.join(here, "../../.build-digits/test-synth.csv"))
    ap.add_argument("--train", help="the training manifest (default: train.csv beside MANIFEST)")
    ap.add_argument("--cli", default=os.path.join(here, "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    rows, base = manifest.read(a.manifest, "per-voice-eval.py")
    train, _ = manifest.read(a.train or os.path.join(base, "train.csv"), "per-voice-eval.py")
    heard = [v for v in map(voice, (path for path, _ in train)) if v]
    accents, variants = {acc for acc, _ in heard}, {var for _, var in heard}
    groups = collections.defaultdict(list)
    for path, label in rows:
        v = voice(path)
        if v is None:
            continue
        full = path if os.path.isabs(path) else os.path.join(base, path)
        accent, variant = v
        groups[f"accent {accent}"].append((full, label))
        groups[f"variant {variant}"].append((full, label))
        cell = ("heard" if accent in accents else "unheard") + " accent, " + ("heard" if variant in variants else "unheard") + " variant"
        groups[f"~ {cell}"].append((full, label))
    if not groups:
        sys.exit(f"per-voice-eval.py: {a.manifest} has no rows named synth/ACCENT_VARIANT_WORD_TAKE.wav")
    for group in sorted(groups):
        r = manifest.evaluate(a.cli, a.model, groups[group], "per-voice-eval.py")
        labels = r["labels"]
        confusions = sorted(((n, labels[i], labels[j]) for i, row in enumerate(r["confusion"])
                             for j, n in enumerate(row) if n and i != j), reverse=True)
        heard_as = ", ".join(f"{t} → {h} {n}" for n, t, h in confusions[:4])
        skipped = f" ({r['skipped']} unreadable, skipped)" if r.get("skipped") else ""
        print(f"{group.lstrip('~ '):40s} {r['clips']:4d} recordings  {100 * r['accuracy']:5.1f} %  {heard_as}{skipped}")


if __name__ == "__main__":
    sys.exit(main())
