#!/usr/bin/env python3
"""How much a classifier's score depends on how close its recordings are cut to the word.

usage: Benchmarks/training/trimmed-eval.py MODEL MANIFEST [--level L ...] [--cli PATH]

Cuts every recording of MANIFEST (path,label) as an energy-based trimmer with the threshold L would
— from where its envelope (|x| averaged over 8 ms at 8 kHz: a one-pole average with coefficient
1/64, as `train --trim` and the per-step targets measure it) first reaches L of its peak to where
it last is at or above it — and scores MODEL on the cut recordings with `ssm-stream eval`. Prints
one line per level: the level, the accuracy, and the per-class accuracies below 90 %.

FSDD's speakers are cut close to the word to different degrees: nicolas's "six" is at about 10 %
of its peak in its first 10 ms, jackson's and lucas's at about 1 %. Cutting a training speaker's
recordings at 20 % shows what that alone does to a model (README, "Spoken digits").
Needs numpy and scipy.
"""
import argparse, os, sys, tempfile
import numpy as np
import manifest
from scipy.io import wavfile


def envelope(x):
    """|x| through the one-pole average y_k = y_{k-1} + (|x_k| - y_{k-1}) / 64, from rest."""
    from scipy.signal import lfilter
    return lfilter([1 / 64], [1, -63 / 64], np.abs(x.astype(np.float64)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest")
    ap.add_argument("--level", type=float, action="append", help="trim threshold, a fraction of the peak (repeatable; default 0.05 and 0.2)")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    levels = a.level or [0.05, 0.2]
    if any(not 0 < level < 1 for level in levels):
        sys.exit("trimmed-eval.py: --level must be in (0, 1)")
    rows, base = manifest.read(a.manifest, "trimmed-eval.py")
    for level in levels:
        with tempfile.TemporaryDirectory() as tmp:
            cuts = []
            for i, (path, label) in enumerate(rows):
                rate, x = wavfile.read(path if os.path.isabs(path) else os.path.join(base, path))
                e = envelope(x if x.ndim == 1 else x.mean(axis=1))
                on = np.nonzero(e >= level * e.max())[0] if e.max() > 0 else []
                cut = x[on[0]:on[-1] + 1] if len(on) else x
                name = os.path.join(tmp, f"{i}.wav")
                wavfile.write(name, rate, cut)
                cuts.append((name, label))
            r = manifest.evaluate(a.cli, a.model, cuts, "trimmed-eval.py")
        weak = ", ".join(f"{c} {100 * v:.0f} %" for c, v in r["per_class"].items() if v is not None and v < 0.9)
        print(f"level {level:g}: {100 * r['accuracy']:.1f} %" + (f" (below 90 %: {weak})" if weak else ""))


if __name__ == "__main__":
    sys.exit(main())
