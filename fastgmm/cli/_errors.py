"""Exit codes and errors of the command line (the standard library only; imports nothing else).

Every other module of :mod:`fastgmm.cli` may import this one; it imports none of them.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3
# A signal's exit code is 128 + its number, as a shell reports it: 130 for Ctrl-C. SIGTERM's
# (143) is computed from the signal caught, so it needs no constant.
EXIT_SIGINT = 128 + signal.SIGINT


class UsageError(Exception):
    """A bad command-line value found after parsing (reported like argparse's errors, exit 2)."""


class CommandError(Exception):
    """A data, model or I/O problem found by a command (exit 1, one-line message)."""


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that ``finally`` blocks remove temporary files."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
