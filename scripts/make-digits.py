#!/usr/bin/env python3
"""The spoken-digit data set of the shipped classifier (models/digits.safetensors).

usage: scripts/make-digits.py OUT --fsdd PATH [--takes 4] [--flite-takes 16] [--extra-takes 4]
                              [--festival-takes 0] [--whisper-takes 1] [--pico-takes 0] [--human-repeat 3]
                              [--human-test SPEAKER]
                              [--seed 0]

Synthetic speech: espeak-ng says "zero" … "nine" in 8 English accents × 20 voice variants, each
take at a random speed (110–220 words/min), pitch (15–85) and level, resampled to 8 kHz. Voices are
split: every voice of the accent en-029 and of the variants f4, m5, klatt3 and whisper is test
only, so the test voices are voices training never heard. Test recordings carry noise at a random
SNR (white or pink, 5–30 dB); training ones are clean (the trainer adds noise as augmentation).
Training also hears flite's five voices (kal and kal16 — one speaker's 8 and 16 kHz diphone
voices —, awb, rms and slt: voices made from recordings of four real speakers, closer to a human
voice than espeak's formant synthesis), --flite-takes takes per digit each at a random tempo and
pitch. They are training-only: the test sets are as they were before flite was added. With
--extra-takes N (default 4; 0: none), training also hears espeak-ng's 55 other
voice variants (EXTRA_VARIANTS: named speakers, whisperf, klatt5 and klatt6, …), N takes per variant
and digit, each in a random training accent; written as synth/x-*.wav after everything else, from
their own random stream, so the other recordings keep their bytes (README, "Spoken digits"). With
--festival-takes N (default 0: none), training also hears festival's voices (FESTIVAL_VOICES: ked,
a speaker no other set has, and kal and slt by diphone and HMM synthesis), N takes per voice and
digit as for flite, written last (synth/fest-*.wav; needs festival and its voice packages). The HMM
voice takes neither the duration stretch nor the pitch, so its takes differ in level only. With
--whisper-takes N (default 1; 0: none), training also hears whispered versions of the training
variants not named klatt* or *whisper* (65 voices, some of them Klatt voices by their files: each
variant's own file with whisperf's voicing and breath lines added, WHISPER_LINES), N takes per voice
and digit, each in a random training accent, written last (synth/w-*.wav, random stream [seed, 4]);
espeak-ng reads them from a temporary copy of its data folder. With --pico-takes N (default 0:
none), training also hears SVOX Pico's two English voices (PICO_VOICES: an American and a British
female speaker by HMM synthesis), N takes per voice and digit as for flite, pitch 70–130 % of the
voice's own, written last (synth/pico-*.wav, random stream [seed, 6]; needs `pip install ttspico`,
which builds Pico from the sources it carries).

Human speech: the Free Spoken Digit Dataset recordings in PATH ({digit}_{speaker}_{take}.wav,
8 kHz), referenced by absolute path (the data stays where it is: nothing is copied). One speaker
(--human-test, default nicolas) is held out for testing. Each training recording of a human speaker
is listed --human-repeat times in train.csv (each time it is drawn it gets fresh augmentation), so
that the three human voices weigh about as much as the many synthetic ones.

The class "silence" holds noise-only recordings (white, pink, brown, hum, near silence): the
background class of the per-step readout. OUT/noise/ holds 30 s each of white and pink noise
(random stream [seed, 5]) for the trainer to mix into the words (`train --noise`): the trainer's
own noise is white, while rooms are closer to pink, and so are half of the test takes here. The
recipe gives it to the synthetic words (README, "Spoken digits", fourteenth session).

Writes OUT/synth/*.wav, OUT/silence/*.wav, OUT/noise/*.wav, and the manifests OUT/train.csv, OUT/test-synth.csv,
OUT/test-human.csv (path,label), OUT/loo-train-SPEAKER.csv and OUT/loo-test-SPEAKER.csv (the same
split with each FSDD speaker held out in turn, for scripts/loo-digits.sh), and OUT/stream.wav +
OUT/stream.txt: a recording of the ten digits in random order, each by a different test voice,
with pauses between them, and when each digit was spoken (examples/digits.wav and .txt, the quick
start's stream, are this recording).

Needs espeak-ng and flite (apt install espeak-ng flite), numpy and scipy.
"""
import argparse, csv, importlib.util, os, shutil, subprocess, sys, tempfile
import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly, lfilter

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt", "klatt2", "klatt3",
            "klatt4", "whisper", "Andy", "Annie"]
TEST_ACCENTS = {"en-029"}
TEST_VARIANTS = {"f4", "m5", "klatt3", "whisper"}
# espeak-ng's other variants, training only (none is a test variant; whisperf is a female whisper,
# the test variant whisper a male one).
EXTRA_VARIANTS = ["Alex", "Alicia", "Andrea", "AnxiousAndy", "Denis", "Diogo", "Gene", "Hugo", "Jacky", "Lee", "Marco",
                  "Mario", "Michael", "Mike", "Nguyen", "Storm", "adam", "anika", "announcer", "antonio", "aunty",
                  "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "gustave",
                  "iven", "john", "kaukovalta", "linda", "m8", "max", "michel", "miguel", "norbert", "pablo", "paul",
                  "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis", "victor", "zac",
                  "whisperf", "klatt5", "klatt6"]
# flite's voices and the range of their mean pitch (Hz) a take draws from.
FLITE_VOICES = {"kal": (75, 150), "kal16": (75, 150), "awb": (75, 150), "rms": (70, 140), "slt": (140, 260)}
# festival's voices (Debian: festival festvox-kdlpc16k festvox-kallpc16k festvox-us-slt-hts) and
# their pitch ranges: ked, a speaker no other set has, and kal and slt by other methods (diphone
# concatenation, HMM synthesis) than flite's. The HMM voice takes no duration stretch.
FESTIVAL_VOICES = {"ked_diphone": (75, 150), "kal_diphone": (75, 150), "cmu_us_slt_arctic_hts": (140, 260)}
# SVOX Pico's English voices (PyPI: ttspico, which builds Pico from its sources and carries its
# language files): two female speakers (American, British) by HMM synthesis, their mean pitch at
# Pico's pitch 100 % (Hz, measured), and the range of mean pitch a take draws from (70–130 %).
PICO_VOICES = {"en-US": (139, 97, 181), "en-GB": (152, 106, 198)}
RATE = 8000


def say(text, voice, speed, pitch, path=None):
    """espeak-ng: speed in words per minute, pitch 0–99; path: a folder holding another espeak-ng-data."""
    return synthesize(["espeak-ng"] + ([f"--path={path}"] if path else []) +
                      ["-v", voice, "-s", str(speed), "-p", str(pitch), "-w", "{wav}", text])


def say_flite(text, voice, stretch, f0):
    """flite: stretch scales the duration, f0 is the mean pitch in Hz."""
    return synthesize(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
                       "--setf", f"int_f0_target_mean={f0:.1f}", "-t", text, "-o", "{wav}"])


def say_festival(text, voice, stretch, f0):
    """festival's text2wave: stretch scales the duration, f0 is the mean pitch in Hz (diphone voices)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as t:
        t.write(text + "\n"); t.flush()
        return synthesize(["text2wave", "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
                           "-eval", f"(set! int_lr_params (cons (list 'target_f0_mean {f0:.1f}) int_lr_params))",
                           t.name, "-o", "{wav}"])


_pico_engines = {}


def say_pico(text, voice, stretch, f0):
    """SVOX Pico (16 kHz): stretch scales the duration (rate 100/stretch %), f0 the mean pitch in Hz."""
    import ttspico
    if voice not in _pico_engines:
        _pico_engines[voice] = ttspico.TtsEngine(voice)
    engine = _pico_engines[voice]
    engine.rate = int(round(100 / stretch))
    engine.pitch = int(round(100 * f0 / PICO_VOICES[voice][0]))
    x = np.frombuffer(engine.speak(text), dtype=np.int16).astype(np.float64) / 32768.0
    return resample_trim(x, 16000)


def pico_voices(out, seed, takes):
    """PICO_VOICES' takes (training rows), from their own random stream [seed, 6]."""
    if not takes:
        return []
    voices = {v: (lo, hi) for v, (_, lo, hi) in PICO_VOICES.items()}
    return pitched_voices(out, np.random.default_rng([seed, 6]), say_pico, voices, takes, "pico")


def festival_voices(out, seed, takes):
    """FESTIVAL_VOICES' takes (training rows), from their own random stream [seed, 3]."""
    if not takes:
        return []
    need = "apt install festival festvox-kdlpc16k festvox-kallpc16k festvox-us-slt-hts"
    if not shutil.which("text2wave"):
        sys.exit(f"make-digits.py: --festival-takes needs festival ({need})")
    for voice in FESTIVAL_VOICES:
        try:
            say_festival("one", voice, 1.0, 120.0)
        except subprocess.CalledProcessError:
            sys.exit(f"make-digits.py: festival has no voice {voice} ({need})")
    return pitched_voices(out, np.random.default_rng([seed, 3]), say_festival, FESTIVAL_VOICES, takes, "fest")


def pitched_voices(out, rng, say_fn, voices, takes, prefix):
    """Training rows of a synthesizer's voices ({name: (lowest, highest mean pitch in Hz)}): `takes`
    takes per voice and digit, each at a random duration stretch (0.75–1.4), pitch and level,
    written as synth/{prefix}-{voice}_{word}_{take}.wav."""
    rows = []
    for voice, (f0_lo, f0_hi) in voices.items():
        for word in DIGITS:
            for t in range(takes):
                x = say_fn(word, voice, rng.uniform(0.75, 1.4), rng.uniform(f0_lo, f0_hi))
                x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-20, -3) / 20)
                name = f"synth/{prefix}-{voice}_{word}_{t}.wav"
                write(out + "/" + name, x)
                rows.append((name, word))
        print(f"{prefix} {voice}: done", file=sys.stderr)
    return rows


def synthesize(command):
    """Runs a synthesizer that writes the WAV file named "{wav}" in command; resamples to RATE, trims."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run([f.name if a == "{wav}" else a for a in command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rate, x = wavfile.read(f.name)
    return resample_trim(x.astype(np.float64) / 32768.0, rate)


def resample_trim(x, rate):
    """A synthesizer's output at `rate` resampled to RATE, its leading and trailing silence trimmed."""
    g = np.gcd(RATE, rate)
    y = resample_poly(x, RATE // g, rate // g)
    # Trim the synthesizer's leading and trailing silence to 20 ms around the voice (as FSDD is).
    env = np.convolve(np.abs(y), np.ones(80) / 80, mode="same")
    on = np.nonzero(env > 0.02 * env.max())[0] if env.max() > 0 else []
    if len(on):
        y = y[max(0, on[0] - 160):min(len(y), on[-1] + 160)]
    return y


def check_variants(extra):
    """Stops at once, naming them, if this espeak-ng lacks any of the variants the set uses (the
    extra ones only when their takes or their whispered takes are asked for)."""
    listed = subprocess.run(["espeak-ng", "--voices=variant"], check=True, capture_output=True, text=True).stdout
    have = {line.split()[4][3:] for line in listed.splitlines()[1:] if len(line.split()) > 4 and line.split()[4].startswith("!v/")}
    missing = [v for v in VARIANTS + (EXTRA_VARIANTS if extra else []) if v not in have]
    if missing:
        sys.exit(f"make-digits.py: this espeak-ng has no voice variant {', '.join(missing)} (espeak-ng --voices=variant)")


def variant_takes(out, rng, variants, takes, prefix, path=None):
    """Training rows: `takes` takes per espeak-ng variant (of the data folder under `path`, if given)
    and digit, each in a random training accent at a random speed, pitch and level, written as
    synth/{prefix}{variant}_{word}_{take}.wav."""
    accents = [x for x in ACCENTS if x not in TEST_ACCENTS]
    rows = []
    for variant in variants:
        for word in DIGITS:
            for t in range(takes):
                accent = accents[rng.integers(len(accents))]
                x = say(word, f"{accent}+{variant}", int(rng.uniform(110, 220)), int(rng.uniform(15, 85)), path)
                x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-20, -3) / 20)
                name = f"synth/{prefix}{variant}_{word}_{t}.wav"
                write(out + "/" + name, x)
                rows.append((name, word))
    return rows


def extra_voices(out, seed, takes):
    """EXTRA_VARIANTS' takes (training rows), from their own random stream [seed, 2], so that adding
    them left every other recording as it was."""
    rows = variant_takes(out, np.random.default_rng([seed, 2]), EXTRA_VARIANTS, takes, "x-")
    if takes:
        print(f"espeak-ng's {len(EXTRA_VARIANTS)} other variants: done", file=sys.stderr)
    return rows


# What makes a variant whisper: its voiced source nearly off and breath noise on the formants (the
# lines of espeak-ng's training variant whisperf; the test variant whisper has the same breath).
WHISPER_LINES = "voicing 20\nbreath 75 75 50 40 15 10\nbreathw 150 150 200 200 400 400\n"


def espeak_data():
    """The espeak-ng-data folder this espeak-ng reads (its --version names it)."""
    text = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    path = text.split("Data at:")[-1].strip() if "Data at:" in text else ""
    if not os.path.isdir(os.path.join(path, "voices", "!v")):
        sys.exit(f"make-digits.py: cannot find espeak-ng's voice variants (espeak-ng --version: {text.strip()})")
    return path


def whispered_voices(out, seed, takes):
    """Whispered versions of every training variant not named klatt* or *whisper*
    (WHISPER_LINES added to the variant's own file: its formants and pitch, whispered), `takes` per
    variant and digit, each in a random training accent (training rows), from their own random
    stream [seed, 4]. espeak-ng reads them from a copy of its data folder made of links and the new
    variant files (in a temporary folder)."""
    if not takes:
        return []
    data = espeak_data()
    bases = [v for v in [v for v in VARIANTS if v not in TEST_VARIANTS] + EXTRA_VARIANTS
             if not v.startswith("klatt") and "whisper" not in v]
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "espeak-ng-data")
        os.makedirs(os.path.join(root, "voices", "!v"))
        for entry in os.listdir(data):
            if entry != "voices":
                os.symlink(os.path.join(data, entry), os.path.join(root, entry))
        for entry in os.listdir(os.path.join(data, "voices")):
            if entry != "!v":
                os.symlink(os.path.join(data, "voices", entry), os.path.join(root, "voices", entry))
        for variant in bases:
            with open(os.path.join(data, "voices", "!v", variant)) as src:
                text = src.read()
            with open(os.path.join(root, "voices", "!v", "w-" + variant), "w") as dst:
                dst.write(text.rstrip("\n") + "\n" + WHISPER_LINES)
        rows = variant_takes(out, np.random.default_rng([seed, 4]), ["w-" + v for v in bases], takes, "", path=tmp)
    print(f"whispered versions of {len(bases)} training variants: done", file=sys.stderr)
    return rows


def noise(kind, n, rng):
    w = rng.standard_normal(n)
    if kind == "pink":
        b, a = [0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875, -0.522189400]
        w = lfilter(b, a, w)
    elif kind == "brown":
        w = np.cumsum(w); w -= np.linspace(w[0], w[-1], n)
    elif kind == "hum":
        t = np.arange(n) / RATE
        w = np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6.3)) + 0.3 * np.sin(2 * np.pi * 150 * t) + 0.05 * w
    return w / (np.sqrt(np.mean(w ** 2)) + 1e-12)


def add_noise(x, snr_db, rng):
    kind = rng.choice(["white", "pink"])
    n = noise(kind, len(x), rng)
    p = np.mean(x ** 2)
    return x + n * np.sqrt(p / 10 ** (snr_db / 10))


def noise_folder(out, seed):
    """OUT/noise/{white,pink}.wav: 30 s of each, peak 0.5, from their own random stream [seed, 5]
    (so that adding them left every other recording as it was)."""
    rng = np.random.default_rng([seed, 5])
    os.makedirs(out + "/noise", exist_ok=True)
    for kind in ["white", "pink"]:
        x = noise(kind, 30 * RATE, rng)
        write(f"{out}/noise/{kind}.wav", x / np.abs(x).max() * 0.5)


def fsdd_rows(folder):
    """[(speaker, (path, word))] of the FSDD recordings ({digit}_{speaker}_{take}.wav) in folder, by name."""
    rows = []
    for f in sorted(os.listdir(folder)):
        if not f.endswith(".wav"):
            continue
        parts = f.split("_")
        if len(parts) != 3 or len(parts[0]) != 1 or not parts[0].isdigit():
            sys.exit(f"make-digits.py: {os.path.join(folder, f)}: not an FSDD name ({{digit}}_{{speaker}}_{{take}}.wav)")
        digit, speaker = parts[:2]
        rows.append((speaker, (os.path.join(os.path.abspath(folder), f), DIGITS[int(digit)])))
    return rows


def write_manifest(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "label"])
        w.writerows(rows)


def write(path, x):
    x = np.clip(x, -1, 1)
    wavfile.write(path, RATE, (x * 32767).astype(np.int16))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--fsdd", required=True, help="folder of FSDD recordings ({digit}_{speaker}_{take}.wav)")
    ap.add_argument("--takes", type=int, default=4, help="takes per voice and digit")
    ap.add_argument("--flite-takes", type=int, default=16, help="takes per flite voice and digit (training only)")
    ap.add_argument("--extra-takes", type=int, default=4,
                    help="takes per extra espeak-ng variant and digit (training only; 0: none)")
    ap.add_argument("--whisper-takes", type=int, default=1,
                    help="takes per whispered training variant and digit (training only; 0: none)")
    ap.add_argument("--festival-takes", type=int, default=0,
                    help="takes per festival voice and digit (training only; 0: none)")
    ap.add_argument("--pico-takes", type=int, default=0,
                    help="takes per SVOX Pico voice and digit (training only; 0: none)")
    ap.add_argument("--human-repeat", type=int, default=3, help="times each human training recording is listed")
    ap.add_argument("--human-test", default="nicolas", help="FSDD speaker held out for testing")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.path.isdir(a.fsdd):
        sys.exit(f"make-digits.py: --fsdd {a.fsdd}: no such folder (the FSDD recordings, {{digit}}_{{speaker}}_{{take}}.wav)")
    fsdd = fsdd_rows(a.fsdd)
    speakers = sorted({speaker for speaker, _ in fsdd})
    if a.human_test not in speakers:
        sys.exit(f"make-digits.py: --human-test {a.human_test}: {a.fsdd} has no recordings of that speaker"
                 f" (its speakers: {', '.join(speakers) or 'none'})")
    check_variants(a.extra_takes > 0 or a.whisper_takes > 0)
    if a.pico_takes and importlib.util.find_spec("ttspico") is None:
        sys.exit("make-digits.py: --pico-takes needs SVOX Pico's Python module (pip install ttspico)")
    rng = np.random.default_rng(a.seed)
    out = os.path.abspath(a.out)
    os.makedirs(out + "/synth", exist_ok=True)
    os.makedirs(out + "/silence", exist_ok=True)
    train, test_synth = [], []  # train: espeak-ng's training takes and the noise-only clips, so far
    test_clips = []  # (x, digit, voice) for the stream recording
    for accent in ACCENTS:
        for variant in VARIANTS:
            voice = f"{accent}+{variant}"
            is_test = accent in TEST_ACCENTS or variant in TEST_VARIANTS
            for d, word in enumerate(DIGITS):
                for t in range(a.takes):
                    x = say(word, voice, int(rng.uniform(110, 220)), int(rng.uniform(15, 85)))
                    x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-20, -3) / 20)
                    name = f"synth/{accent}_{variant}_{word}_{t}.wav"
                    if is_test:
                        test_clips.append((x.copy(), word, voice))
                        x = add_noise(x, rng.uniform(5, 30), rng)
                        test_synth.append((name, word))
                    else:
                        train.append((name, word))
                    write(out + "/" + name, x)
        print(f"{accent}: done", file=sys.stderr)
    for i in range(300):
        kind = ["white", "pink", "brown", "hum", "quiet"][i % 5]
        n = int(rng.uniform(0.3, 1.2) * RATE)
        level = 10 ** (rng.uniform(-60 if kind == "quiet" else -40, -15) / 20)
        x = noise("white" if kind == "quiet" else kind, n, rng) * level
        name = f"silence/{kind}_{i}.wav"
        write(out + "/" + name, x)
        (train if i % 6 else test_synth).append((name, "silence"))
    # flite's voices, training only, from their own random stream (so that adding them left every
    # espeak recording, the silence set and the stream recording as they were).
    voices_after = pitched_voices(out, np.random.default_rng([a.seed, 1]), say_flite, FLITE_VOICES, a.flite_takes, "flite")
    voices_after += extra_voices(out, a.seed, a.extra_takes)
    voices_after += festival_voices(out, a.seed, a.festival_takes)
    voices_after += whispered_voices(out, a.seed, a.whisper_takes)
    voices_after += pico_voices(out, a.seed, a.pico_takes)
    noise_folder(out, a.seed)

    def split(held_out):
        """(training rows, human test rows) with `held_out`'s recordings as the test set."""
        human = [row for speaker, row in fsdd if speaker != held_out for _ in range(a.human_repeat)]
        return train + human + voices_after, [row for speaker, row in fsdd if speaker == held_out]

    train_rows, test_human = split(a.human_test)
    for name, rows in [("train.csv", train_rows), ("test-synth.csv", test_synth), ("test-human.csv", test_human)]:
        write_manifest(out + "/" + name, rows)
        print(f"{name}: {len(rows)} recordings", file=sys.stderr)
    # Every speaker held out in turn (scripts/loo-digits.sh): loo-train-SPEAKER.csv, loo-test-SPEAKER.csv.
    for speaker in speakers:
        rows, test = split(speaker)
        write_manifest(f"{out}/loo-train-{speaker}.csv", rows)
        write_manifest(f"{out}/loo-test-{speaker}.csv", test)
    print(f"loo-*.csv: {len(speakers)} splits, one per held-out speaker ({', '.join(speakers)})", file=sys.stderr)
    # A stream: the ten digits in random order, each by a different test voice, 0.6–1.2 s pauses,
    # low noise throughout.
    picks, voices = [], set()
    for word in rng.permutation(DIGITS):
        takes = [c for c in test_clips if c[1] == word and c[2] not in voices]
        x, _, voice = takes[rng.integers(len(takes))]
        picks.append((x, word)); voices.add(voice)
    parts, times, t = [np.zeros(int(0.5 * RATE))], [], int(0.5 * RATE)
    for x, word in picks:
        x = x / (np.abs(x).max() + 1e-9) * 0.5
        times.append((t / RATE, (t + len(x)) / RATE, word))
        parts.append(x); t += len(x)
        gap = np.zeros(int(rng.uniform(0.6, 1.2) * RATE)); parts.append(gap); t += len(gap)
    s = np.concatenate(parts)
    s = s + noise("pink", len(s), rng) * 10 ** (-50 / 20)
    write(out + "/stream.wav", s)
    with open(out + "/stream.txt", "w") as fh:
        for a0, a1, w in times:
            fh.write(f"{a0:.3f} {a1:.3f} {w}\n")


if __name__ == "__main__":
    main()
