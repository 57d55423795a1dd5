#!/usr/bin/env python3
"""Makes the quick start's files (committed; rerun only to change them):

  models/lowpass-1k.safetensors  a 4th-order Butterworth lowpass, 1 kHz at 16 kHz, as a diagonal
                                 state-space model (S5 layer, discretization "none"): the filter's
                                 partial fractions H(z) = Σ r_i / (1 − p_i z⁻¹) + k become
                                 Λ̄ = p (one of each conjugate pair), B = 1, C = r, D = k, y = 2·Re(C x) + D u.
  examples/noisy-tone.wav        2 s at 16 kHz, 16-bit mono: a 220 Hz tone plus a 4 kHz whistle and white noise.

Written with numpy/scipy only (the safetensors format is simple enough to write by hand).
"""
import json, struct, wave
import numpy as np
from scipy import signal

RATE = 16000


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def lowpass_model():
    b, a = signal.butter(4, 1000, btype="low", fs=RATE)
    r, p, k = signal.residuez(b, a)
    keep = [i for i in range(len(p)) if p[i].imag > 0]          # one of each conjugate pair
    assert len(keep) * 2 == len(p), "expects complex-conjugate poles only"
    P = len(keep)
    lam, res = p[keep], r[keep]
    spec = {
        "format": "ssm-stream/1", "task": "filter", "sample_rate": RATE,
        "d_input": 1, "d_model": 1, "d_output": 1, "encoder": False, "decoder": False,
        "description": "4th-order Butterworth lowpass, 1 kHz cutoff at 16 kHz (scipy.signal.butter), modal form",
        "blocks": [{"layer": {"family": "s5", "d_model": 1, "d_state": P, "discretization": "none"},
                    "norm": "none", "residual": False, "activation": "none", "output": "none"}],
    }
    t = {
        "layers.0.layer.Lambda_re": lam.real, "layers.0.layer.Lambda_im": lam.imag,
        "layers.0.layer.B": np.stack([np.ones((P, 1)), np.zeros((P, 1))], axis=-1),
        "layers.0.layer.C": np.stack([res.real[None, :], res.imag[None, :]], axis=-1),
        "layers.0.layer.D": np.array([k[0] if len(k) else 0.0]),
        "layers.0.layer.log_step": np.zeros((P, 1)),
    }
    write_safetensors("models/lowpass-1k.safetensors", t, {"ssm_stream": json.dumps(spec)})


def noisy_tone():
    rng = np.random.default_rng(7)
    t = np.arange(2 * RATE) / RATE
    x = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 4000 * t) + 0.05 * rng.standard_normal(t.size)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open("examples/noisy-tone.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(RATE); w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    lowpass_model()
    noisy_tone()
