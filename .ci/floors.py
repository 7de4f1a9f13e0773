"""Print pip constraints that pin every runtime dependency at the floor pyproject.toml declares.

``.ci/run`` installs fastgmm with these into a second venv and runs a quick subset of the
tests there, so a floor that stops being true (code that needs a newer release) fails CI.
Reading the floors from pyproject.toml keeps them written in one place.

    python .ci/floors.py             # numpy==1.23.5, scipy==1.15, ... one per line
    python .ci/floors.py --python    # the oldest Python pyproject.toml accepts: 3.11
"""

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
FLOOR = re.compile(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9a-z.]*)")


def main(argv):
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    if argv == ["--python"]:
        match = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"].strip())
        if not match:
            sys.exit(f"requires-python is not a plain floor: {project['requires-python']!r}")
        print(match.group(1))
        return
    for requirement in project["dependencies"]:
        match = FLOOR.fullmatch(requirement)
        if not match:
            sys.exit(f"dependency without a plain floor (name>=version): {requirement!r}")
        print(f"{match.group(1)}=={match.group(3)}")


if __name__ == "__main__":
    main(sys.argv[1:])
