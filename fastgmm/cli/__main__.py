"""``python -m fastgmm.cli``: the same as ``python -m fastgmm`` and the ``fastgmm`` command."""

import sys

from fastgmm.cli import main

if __name__ == "__main__":
    sys.exit(main())
