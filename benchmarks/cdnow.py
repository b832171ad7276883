"""CDNOW through `scorer backtest`: our served models against BG/NBD + Gamma-Gamma fitted on
the same calibration data, on the field's two standard splits, with the targets beside.

CDNOW (tests/data/cdnow) is real: 23,570 customers who first bought in Q1 1997, every
purchase to the end of June 1998. Each run converts it to the backtest's CSV
(customer_id,date,amount: one order per row), then for each split runs
`scorer backtest --cutoff C --horizon-days H` on a scratch database (the command's own)
and prints the report's figures. A split the command refuses prints its one-line reason.

    .venv/bin/python benchmarks/cdnow.py [--split 1997-12-29:182] [--split 1997-09-30:273]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, scorer_command  # noqa: E402

MASTER = REPO / "tests" / "data" / "cdnow" / "CDNOW_master.txt"
SPLITS = ("1997-12-29:182", "1997-09-30:273")  # the second is the classic 39/39 weeks
TARGETS = (
    "RMSE <= 0.95x BG/NBD, Spearman >= BG/NBD + 0.03, total within 5%, AUC >= 0.82, "
    "ECE <= 0.03, interval coverage 75-85%"
)


def write_csv(path: Path) -> int:
    rows = 0
    with MASTER.open() as source, path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "date", "amount"])
        next(source)  # header
        for line in source:
            customer, day, _cds, dollars = line.split()
            writer.writerow([customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars])
            rows += 1
    return rows


def run_split(transactions: Path, split: str, folder: Path) -> str:
    cutoff, horizon = split.split(":")
    out = folder / f"backtest-{cutoff}.json"
    started = time.perf_counter()
    command = [
        *scorer_command(),
        "backtest",
        "--transactions",
        str(transactions),
        "--cutoff",
        cutoff,
        "--horizon-days",
        horizon,
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return f"| {cutoff}, {horizon} d | refused: {reason} | | | | | | ({seconds:.0f} s) |"
    report = json.loads(out.read_text())
    ours, theirs = report["pcltv"]["ours"], report["pcltv"]["bgnbd_gamma_gamma"]
    churn = report["churn"]
    rows = []
    for name, m in (("ours (served)", ours), ("BG/NBD + Gamma-Gamma", theirs)):
        auc = f"{churn['roc_auc']:.3f} / {churn['ece']:.3f}" if m is ours else "—"
        rows.append(
            f"| {cutoff}, {horizon} d | {name} | {m['rmse']:.2f} | {m['mae']:.2f} "
            f"| {m['spearman']:.3f} | {m['aggregate_error']:+.1%} | {auc} | ({seconds:.0f} s) |"
        )
    rows.append(
        f"| | served: churn {report['served']['churn']}, pCLTV {report['served']['pcltv']}; "
        f"80% interval coverage {report['pcltv']['interval_coverage']:.1%} | | | | | | |"
    )
    rows.append(
        f"| | ours / BG/NBD | {ours['rmse'] / theirs['rmse']:.3f}x | "
        f"{ours['mae'] / theirs['mae']:.3f}x | {ours['spearman'] - theirs['spearman']:+.3f} | | | |"
    )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split", action="append", help="CUTOFF:HORIZON_DAYS (default: both standard splits)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        transactions = folder / "cdnow.csv"
        print(f"CDNOW: {write_csv(transactions):,} purchases", file=sys.stderr)
        columns = ("model", "RMSE", "MAE", "Spearman", "total vs truth", "churn AUC / ECE")
        print(f"| cutoff, horizon | {' | '.join(columns)} | time |")
        print("|---|---|---:|---:|---:|---:|---|---|")
        for split in args.split or SPLITS:
            print(run_split(transactions, split, folder), flush=True)
    print(f"targets: {TARGETS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
