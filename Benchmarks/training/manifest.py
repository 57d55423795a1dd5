"""The `path,label` manifests the training benchmarks read (as `ssm-stream train` and `eval` do)."""
import csv, os, sys


def read(path, tool):
    """The rows [path, label] of the manifest at `path` (a header line and `#` comments skipped) and the
    folder its relative paths start from; exits naming `tool` if it lists nothing."""
    rows = [r for r in csv.reader(open(path)) if r and not r[0].startswith("#")]
    if rows and rows[0][:2] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        sys.exit(f"{tool}: {path} lists no recordings")
    return rows, os.path.dirname(os.path.abspath(path))
