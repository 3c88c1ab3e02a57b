"""benchmarks/RESULTS.md is shared by several benchmark scripts: each rewrites only its own section.

A section is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; a missing section is
appended, so the scripts can run in any order and one never erases another's figures.
"""
from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Benchmark results"


def write_section(path: str | Path, name: str, text: str) -> str:
    """Replace (or append) section ``name`` of the Markdown file ``path`` with ``text``; return the file's text.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "R.md")
        >>> _ = write_section(p, "a", "first"); _ = write_section(p, "b", "second")
        >>> "second" in write_section(p, "a", "again") and "first" not in Path(p).read_text()
        True
    """
    path = Path(path)
    old = path.read_text() if path.exists() else f"{TITLE}\n"
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: block, old)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
    return new
