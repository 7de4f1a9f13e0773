"""``python -m fastgmm``: the same as the ``fastgmm`` command."""

from fastgmm.cli import console_main

if __name__ == "__main__":
    console_main()
