"""Write ``numpy.inv``: an intersphinx inventory of the NumPy names fastgmm's docs link to.

Debian 12 ships no NumPy documentation package (there is no ``python-numpy-doc`` in
bookworm), and the build machines have no network, so NumPy's own ``objects.inv`` cannot be
used. This script writes an inventory in Sphinx's format (version 2) for the few NumPy names the
documentation refers to, each pointing at its page in NumPy's documentation
(``https://numpy.org/doc/stable/`` + the relative address below, the layout of NumPy 1.17 to
2.x). Add a name here when a docstring or a guide page links to one, then run::

    python docs/_intersphinx/make_numpy_inventory.py

and commit both files. tests/test_docs.py checks that ``numpy.inv`` matches this list.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "numpy.inv"
VERSION = "2"  # the addresses below hold for NumPy's stable documentation, 2.x

# name, role ('py:' unless a domain is given), address relative to
# https://numpy.org/doc/stable/ ('$' stands for the name)
ENTRIES = [
    ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html#$"),
    ("numpy.dtype", "class", "reference/generated/numpy.dtype.html#$"),
    ("numpy.memmap", "class", "reference/generated/numpy.memmap.html#$"),
    ("numpy.float32", "attribute", "reference/arrays.scalars.html#$"),
    ("numpy.float64", "attribute", "reference/arrays.scalars.html#$"),
    ("numpy.random.Generator", "class", "reference/random/generator.html#$"),
    ("numpy.random.RandomState", "class", "reference/random/legacy.html#$"),
    ("numpy.random.default_rng", "function", "reference/random/generator.html#$"),
    ("numpy.load", "function", "reference/generated/numpy.load.html#$"),
    ("numpy.save", "function", "reference/generated/numpy.save.html#$"),
    ("numpy.savez", "function", "reference/generated/numpy.savez.html#$"),
    ("numpy.lib.format.open_memmap", "function", "reference/generated/$.html#$"),
    ("array_like", "std:term", "glossary.html#term-array_like"),
]


def inventory_bytes() -> bytes:
    """The inventory file's content: a plain header, then the zlib-compressed entries."""
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: NumPy\n"
        f"# Version: {VERSION}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    # Sphinx's line format: name domain:role priority address display-name ('-': the name).
    lines = "".join(
        f"{name} {role if ':' in role else 'py:' + role} 1 {address} -\n"
        for name, role, address in ENTRIES
    )
    return header.encode() + zlib.compress(lines.encode(), 9)


if __name__ == "__main__":
    TARGET.write_bytes(inventory_bytes())
    print(f"wrote {TARGET} ({len(ENTRIES)} names)")
