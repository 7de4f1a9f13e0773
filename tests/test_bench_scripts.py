"""The side-by-side and scaling scripts of ``asv_bench/`` run end to end on tiny data.

They are run by hand for the performance figures in README; this keeps them from rotting. The
figures themselves are never asserted: the machines are shared and noisy.
"""

import json
import subprocess
import sys
from pathlib import Path

ASV_DIR = Path(__file__).resolve().parent.parent / "asv_bench"


def _run(script, *args, cwd):
    result = subprocess.run(
        [sys.executable, str(ASV_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _compare_tiny(tmp_path, *options):
    """Run compare.py on 3000 rows of configuration (a); its one result and its output."""
    out = tmp_path / "out.json"
    tiny = ["--config", "a", "--n-samples", "3000", "--iters", "2", "--repeat", "1"]
    stdout = _run(
        "compare.py", *tiny, *options, "--gemm-size", "256", "--json", str(out), cwd=tmp_path
    )
    (result,) = json.loads(out.read_text())["results"]
    return result, stdout


def test_compare_times_fastgmm_and_sklearn_on_the_same_fits(tmp_path):
    result, _ = _compare_tiny(tmp_path, "--peers", "sklearn")
    assert set(result["peers"]) == {"fastgmm", "sklearn"}
    # Both ran the same iterations from the same start, and agree (the timings are not asserted).
    assert result["peers"]["fastgmm"]["n_iter"] == result["peers"]["sklearn"]["n_iter"] == 3
    assert result["checks"]["fastgmm_vs_sklearn_lower_bound_rel_diff"] < 1e-8


def test_compare_float32_also_times_and_checks_own_float64(tmp_path):
    result, stdout = _compare_tiny(tmp_path, "--dtype", "float32", "--peers", "")
    assert set(result["peers"]) == {"fastgmm", "fastgmm_float64"}
    # Present, not positive: a difference of two tiny fits can come out negative on a loaded
    # machine (the figures are never asserted, see the module docstring).
    assert "ratio_to_fastgmm" in result["peers"]["fastgmm_float64"]
    assert result["checks"]["float32_vs_float64_lower_bound_rel_diff"] < 1e-5
    assert result["checks"]["float32_vs_float64_label_disagreement"] < 1e-3
    assert "fastgmm float64 / float32" in stdout


def test_scaling_reports_threads_sizes_and_memory(tmp_path):
    stdout = _run(
        "scaling.py",
        "--config",
        "a",
        "--threads",
        "--sizes",
        "2000,4000",
        "--memory",
        "--init",
        "--n-samples",
        "3000",
        "--iters",
        "1",
        "--repeat",
        "1",
        cwd=tmp_path,
    )
    lines = stdout.strip().splitlines()
    assert len(lines) == 5, stdout
    assert "speed-up=" in lines[0]
    assert "N=2000" in lines[1] and "N=4000" in lines[2]
    assert "relative to smallest N=1" in lines[1]
    assert "peak during fit MB=" in lines[3] and "X MB=0.04578" in lines[3]
    assert "init in EM iterations=" in lines[4]


def test_mclust_grid_and_streamed_scripts_run(tmp_path):
    """asv_bench/mclust_vs_r.py on tiny data (R is not needed with --no-r)."""
    out = tmp_path / "speed.json"
    stdout = _run(
        "mclust_vs_r.py", "speed", "--n-samples", "600", "--repeat", "1", "--no-r",
        "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert "fastgmm's choice" in stdout and json.loads(out.read_text())["fastgmm"] > 0
    out = tmp_path / "streamed.json"
    _run(
        "mclust_vs_r.py", "streamed", "--n-samples", "5000", "--max-iter", "1",
        "--tmpdir", str(tmp_path), "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["failed"] == [] and report["peak_rss_mb"] > 0


def test_bayesian_compare_times_both_on_the_same_fits(tmp_path):
    out = tmp_path / "bgm.json"
    stdout = _run(
        "bayesian_compare.py",
        "--config",
        "b",
        "--types",
        "diag",
        "--n-samples",
        "3000",
        "--iters",
        "2",
        "--repeat",
        "1",
        "--gemm-size",
        "256",
        "--json",
        str(out),
        cwd=tmp_path,
    )
    result = json.loads(out.read_text())
    (row,) = result["results"]
    assert set(row["peers"]) == {"fastgmm", "sklearn"}
    # Same data, same start, same iterations: the lower bounds agree (timings not asserted).
    assert row["lower_bound_rel_diff"] < 1e-8
    assert len(result["load_average_before"]) == 3 and result["gemm_peak_gflops"] > 0
    assert "DGEMM peak" in stdout and "load average" in stdout


def test_compare_times_each_covariance_type_on_blobs_with_its_floor(tmp_path):
    out = tmp_path / "out.json"
    stdout = _run(
        "compare.py",
        *("--shape", "3000,3,2", "--data", "blobs", "--covariance-type", "tied,spherical"),
        *("--peers", "kmeans", "--iters", "2", "--repeat", "1", "--gemm-size", "256"),
        *("--json", str(out)),
        cwd=tmp_path,
    )
    results = json.loads(out.read_text())["results"]
    assert [r["covariance_type"] for r in results] == ["tied", "spherical"]
    for result in results:
        assert result["data"] == "blobs"
        assert set(result["peers"]) == {"fastgmm", "kmeans"}
        assert result["floor_seconds"] > 0 and result["fastgmm_over_floor"] > 0
    assert "x the floor of" in stdout and "GB/s" in stdout


def test_missing_values_times_both_iterations_side_by_side(tmp_path):
    out = tmp_path / "missing.json"
    stdout = _run(
        "missing_values.py",
        "--n-samples",
        "3000",
        "--features",
        "4",
        "--fractions",
        "0.2",
        "--repeat",
        "2",
        "--json",
        str(out),
        cwd=tmp_path,
    )
    (row,) = json.loads(out.read_text())["results"]
    assert row["n_features"] == 4 and row["fraction_missing"] == 0.2
    assert 0.3 < row["rows_with_nan"] < 0.8
    assert row["complete_s"] > 0 and row["missing_s"] > 0
    assert "load average before" in stdout and "ratio" in stdout
