"""The `path,label` manifests the training benchmarks read (as `ssm-stream train` and `eval` do), their
recordings, and `ssm-stream eval` on a list of recordings."""
import csv, json, os, subprocess, sys, tempfile


def read(path, tool):
    """The rows [path, label] of the manifest at `path` (a header line and `#` comments skipped) and the
    folder its relative paths start from; exits naming `tool` if it lists nothing."""
    rows = [r for r in csv.reader(open(path)) if r and not r[0].startswith("#")]
    if rows and rows[0][:2] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        sys.exit(f"{tool}: {path} lists no recordings")
    return rows, os.path.dirname(os.path.abspath(path))


def mono(path):
    """A recording as float samples in [-1, 1], channels averaged (as eval reads it), and its rate."""
    import numpy as np
    from scipy.io import wavfile
    rate, x = wavfile.read(path)
    if x.dtype == np.uint8:
        x = (x.astype(np.float64) - 128) / 128
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / (np.iinfo(x.dtype).max + 1)
    else:
        x = x.astype(np.float64)
    return (x.mean(axis=1) if x.ndim == 2 else x), rate


def evaluate(cli, model, rows, tool):
    """`ssm-stream eval MODEL --json` (the CLI at `cli`) on the recordings `rows` [path, label] (absolute
    paths), as a dict; exits naming `tool` with eval's own message if it cannot run or fails."""
    if not os.access(cli, os.X_OK):
        sys.exit(f"{tool}: no ssm-stream at {cli} (swift build -c release, or --cli PATH)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            w.writerows(rows)
        done = subprocess.run([cli, "eval", model, path, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{tool}: ssm-stream eval failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)
