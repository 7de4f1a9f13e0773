"""Collect the JSON reports of an array run (fastgmm_array.sbatch) and pick K.

Usage: ``python collect.py RESULTS_DIR``. Reads every ``fit_k*.json`` (written by ``fastgmm fit
--json``), the matching ``score_k*.json`` and held-out scores ``heldout_k*.npy``, prints one row
per K and writes ``RESULTS_DIR/summary.json`` with the table and two choices: the lowest BIC on
the training rows, and the highest mean log-likelihood on the held-out rows. Exits with 1 when a
task is missing or failed, so that a dependent job sees it. Run it with the Python that has
fastgmm installed (it needs NumPy to read the ``.npy`` scores).
"""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np


def read_task(out, fit_path):
    """One row of the table from a task's fit and score reports."""
    k = int(re.fullmatch(r"fit_k(\d+)\.json", fit_path.name).group(1))
    fit = json.loads(fit_path.read_text())
    row = {"k": k, "status": fit["status"], "model_file": fit["outputs"].get("model")}
    if fit["status"] != "ok":
        row["error"] = fit.get("error")
        return row
    model = fit["model"]
    row.update(
        covariance_type=model["covariance_type"],
        converged=model["converged"],
        n_iter=model["n_iter"],
        n_parameters=model["n_parameters"],
        bic=model["bic"],
        aic=model["aic"],
        fit_seconds=fit["timings"].get("fit"),
        threads=fit["threads"],
        kernels_compiled=fit.get("kernels", {}).get("compiled"),
    )
    score_path = out / f"score_k{k}.json"
    if score_path.exists():
        score = json.loads(score_path.read_text())
        if score["status"] == "ok":
            scores = np.load(score["outputs"]["scores"], mmap_mode="r")
            row["heldout_mean_log_likelihood"] = float(np.mean(scores))
            row["heldout_rows"] = int(scores.shape[0])
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = Path(argv[0])
    rows = sorted((read_task(out, p) for p in out.glob("fit_k*.json")), key=lambda row: row["k"])
    if not rows:
        print(f"collect: no fit_k*.json in {out}", file=sys.stderr)
        return 1
    print("   K  conv  iter  params            BIC            AIC  held-out ll/row  compiled")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['k']:>4}  failed: {r.get('error')}")
            continue
        heldout = r.get("heldout_mean_log_likelihood", math.nan)
        print(
            f"{r['k']:>4}  {'yes' if r['converged'] else 'no':>4}  {r['n_iter']:>4}"
            f"  {r['n_parameters']:>6}  {r['bic']:>13.2f}  {r['aic']:>13.2f}"
            f"  {heldout:>15.4f}  {r['kernels_compiled']:>8}"
        )
    ok = [r for r in rows if r["status"] == "ok"]
    summary = {"results": rows, "best_bic": None, "best_heldout": None}
    if ok:
        summary["best_bic"] = min(ok, key=lambda r: r["bic"])
        scored = [r for r in ok if "heldout_mean_log_likelihood" in r]
        if scored:
            summary["best_heldout"] = max(scored, key=lambda r: r["heldout_mean_log_likelihood"])
    for name, label in (("best_bic", "lowest BIC"), ("best_heldout", "best held-out fit")):
        best = summary[name]
        if best is not None:
            print(f"{label}: K={best['k']} ({best['model_file']})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / 'summary.json'}")
    failed = [r["k"] for r in rows if r["status"] != "ok"]
    if failed:
        print(f"collect: tasks failed for K = {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
