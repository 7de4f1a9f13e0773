"""The asv suite must stay importable and valid, so that it cannot rot between benchmark runs."""

import shutil
import subprocess
import sys
from pathlib import Path

ASV_DIR = Path(__file__).resolve().parent.parent / "asv_bench"


def test_asv_check_passes():
    asv = shutil.which("asv") or str(Path(sys.executable).with_name("asv"))
    result = subprocess.run(
        [asv, "check", "--python=same"], cwd=ASV_DIR, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found" in result.stdout + result.stderr
