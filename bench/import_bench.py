"""Time ``cti db init`` + ``cti customers import FILE`` on a fresh SQLite database, phase by phase.

    .venv/bin/python bench/make_customers.py 1000000 /tmp/customers-1m.csv
    flock /tmp/bench.lock .venv/bin/python bench/import_bench.py /tmp/customers-1m.csv --rounds 3
    git archive BASE | tar -x -C /tmp/cti-base-src   # then add --src /tmp/cti-base-src for the baseline

Each round gets a fresh database and sounds directory under --workdir (default /tmp/cti-import-bench).
The row phase ends when the CLI prints its ``imported N row(s)`` line; the greeting phase is the rest.
Medians of the rounds are printed last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CTI = [sys.executable, "-c", "import sys; from cti.cli import main; sys.argv[0] = 'cti'; main()"]


def one_round(csv: Path, work: Path, extra: list[str], src: Path | None) -> tuple[float, float, float, str]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, CTI_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'cti.db'}", CTI_GREETING_SOUNDS_DIR=str(work / "sounds"))
    if src is not None:  # another checkout (e.g. `git archive BASE | tar -x -C DIR`): same-run baseline
        env["PYTHONPATH"] = str(src)
    t0 = time.monotonic()
    # cwd: `python -c` puts the current directory first on sys.path, ahead of PYTHONPATH
    subprocess.run([*CTI, "db", "init"], env=env, check=True, stdout=subprocess.DEVNULL, cwd=work)
    proc = subprocess.Popen(
        [*CTI, "customers", "import", str(csv.resolve()), *extra], env=env, cwd=work,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    t_rows, lines = None, []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if t_rows is None and line.startswith("imported "):
            t_rows = time.monotonic()
    rc = proc.wait()
    t_end = time.monotonic()
    if rc != 0:
        raise SystemExit(f"import failed (exit {rc}): {lines[-5:]}")
    t_rows = t_rows or t_end
    return t_rows - t0, t_end - t_rows, t_end - t0, " | ".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cti-import-bench"))
    ap.add_argument("--src", type=Path, default=None, help="Run the cti package found in this directory (PYTHONPATH).")
    ap.add_argument("--keep", action="store_true", help="Keep the last round's database and sounds.")
    ap.add_argument("extra", nargs="*", help="Extra arguments for `cti customers import` (after --).")
    args = ap.parse_args()
    results = []
    for i in range(args.rounds):
        rows, greet, total, out = one_round(args.csv, args.workdir, args.extra, args.src)
        results.append((rows, greet, total))
        print(f"round {i + 1}: db init + rows {rows:.1f} s, greetings {greet:.1f} s, total {total:.1f} s  [{out}]", flush=True)
    med = [statistics.median(r[k] for r in results) for k in range(3)]
    print(f"median of {len(results)}: db init + rows {med[0]:.1f} s, greetings {med[1]:.1f} s, total {med[2]:.1f} s")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
