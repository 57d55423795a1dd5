#!/usr/bin/env python3
"""How much a classifier's score depends on the microphone's spectral tilt and on the speaker's
vocal-tract length.

usage: Benchmarks/training/tilted-eval.py MODEL MANIFEST [--tilt DB ...] [--formant F ...] [--cli PATH]

Passes every recording of MANIFEST (path,label) through one change at a time and scores MODEL on
the changed recordings with `ssm-stream eval`. Prints one line per change: the change, the
accuracy, and the per-class accuracies below 90 %.

--tilt DB: a first-order tilt whose gain at the Nyquist frequency is DB above its gain at 0 Hz,
    the level kept. Darker (DB < 0): the one-pole y_k = x_k + c·y_{k−1}; brighter (DB > 0): the
    one-zero y_k = x_k − c·x_{k−1}; c = (10^(|DB|/20) − 1)/(10^(|DB|/20) + 1), so ±9.5 dB is
    c = 0.5 (the range `train --tilt 0.5` draws from) and ±19.1 dB is c = 0.8.
--formant F: the formants moved by the factor F with the pitch and timing kept, as
    `train --formant` moves them (Windowing.formantWarped: per 32 ms Hann frame, hop 8 ms, the
    spectrum times E(ω/F)/E(ω), E the envelope of the frame's order-12 linear predictor, the gain
    limited to 0.05–20; overlap-added, the level kept).

Default: --tilt -9.5 --tilt 9.5. Recordings at 8 kHz are assumed for the frame sizes (the digit
models' rate). Needs numpy and scipy.
"""
import argparse, os, sys, tempfile
import numpy as np
import manifest
from scipy.io import wavfile
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter


def level_kept(x, y):
    return y * np.sqrt((x @ x) / max(1e-30, y @ y))


def tilted(x, db):
    """x with the first-order tilt of `db` dB (Nyquist over DC), its energy kept."""
    r = 10 ** (abs(db) / 20)
    c = (r - 1) / (r + 1)
    y = lfilter([1], [1, -c], x) if db < 0 else lfilter([1, -c], [1], x)
    return level_kept(x, y)


def predictor(frame, p):
    """The order-p linear predictor [1, a_1 … a_p] of a windowed frame (autocorrelation method)."""
    n = len(frame)
    r = np.array([frame[:n - k] @ frame[k:] for k in range(p + 1)])
    if r[0] <= 1e-12:
        return np.r_[1.0, np.zeros(p)]
    r[0] *= 1 + 1e-9
    return np.r_[1.0, solve_toeplitz(r[:p], -r[1:])]


def formant_warped(x, factor, N=256, p=12):
    """x with its formants moved by `factor` (see the module's docstring), its energy kept."""
    n, hop = len(x), N // 4
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    omega = 2 * np.pi * np.arange(N // 2 + 1) / N
    at = np.exp(-1j * np.outer(omega, np.arange(p + 1)))
    warped = np.exp(-1j * np.outer(np.minimum(np.pi, omega / factor), np.arange(p + 1)))
    y, norm = np.zeros(n), np.zeros(n)
    padded = np.r_[np.zeros(3 * hop), x, np.zeros(N)]
    for start in range(-3 * hop, n, hop):
        frame = padded[start + 3 * hop:start + 3 * hop + N] * w
        a = predictor(frame, p)
        g = np.clip(np.abs(at @ a) / np.maximum(1e-9, np.abs(warped @ a)), 0.05, 20)
        z = np.fft.irfft(np.fft.rfft(frame) * g, N) * w
        lo, hi = max(0, start), min(n, start + N)
        y[lo:hi] += z[lo - start:hi - start]
        norm[lo:hi] += w[lo - start:hi - start] ** 2
    return level_kept(x, y / np.maximum(norm, 1e-6))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest")
    ap.add_argument("--tilt", type=float, action="append", help="dB at Nyquist over 0 Hz (repeatable; < 0 darker)")
    ap.add_argument("--formant", type=float, action="append", help="formant factor (repeatable; > 1 moves them up)")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    changes = [("tilt", t) for t in (a.tilt or [])] + [("formant", f) for f in (a.formant or [])]
    if not changes:
        changes = [("tilt", -9.5), ("tilt", 9.5)]
    if any(kind == "tilt" and not -40 <= v <= 40 for kind, v in changes):
        sys.exit("tilted-eval.py: --tilt must be within ±40 dB")
    if any(kind == "formant" and not 0.5 <= v <= 2 for kind, v in changes):
        sys.exit("tilted-eval.py: --formant must be in [0.5, 2]")
    rows, base = manifest.read(a.manifest, "tilted-eval.py")
    recordings = [(manifest.mono(path if os.path.isabs(path) else os.path.join(base, path)), label)
                  for path, label in rows]
    for kind, v in changes:
        with tempfile.TemporaryDirectory() as tmp:
            changed = []
            for i, ((x, rate), label) in enumerate(recordings):
                y = tilted(x, v) if kind == "tilt" else formant_warped(x, v)
                name = os.path.join(tmp, f"{i}.wav")
                wavfile.write(name, rate, y.astype(np.float32))
                changed.append((name, label))
            r = manifest.evaluate(a.cli, a.model, changed, "tilted-eval.py")
        weak = ", ".join(f"{c} {100 * p:.0f} %" for c, p in r["per_class"].items() if p is not None and p < 0.9)
        name = f"tilt {v:+g} dB" if kind == "tilt" else f"formant ×{v:g}"
        print(f"{name}: {100 * r['accuracy']:.1f} %" + (f" (below 90 %: {weak})" if weak else ""))


if __name__ == "__main__":
    sys.exit(main())
