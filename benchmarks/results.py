"""What the benchmark scripts share: one thread setup, one line about the machine, and RESULTS.md sections.

benchmarks/RESULTS.md is shared by several benchmark scripts: each rewrites only its own section.
A section is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; a missing section is
appended, so the scripts can run in any order and one never erases another's figures.
"""
from __future__ import annotations

import os
import platform
import re
import time
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


def pin_threads(threads: int) -> None:
    """CPU only, fixed seed, and exactly ``threads`` torch (and BLAS) threads for every timing of a script."""
    import torch

    import helpers

    os.environ["ACTIVATION_LAB_THREADS"] = str(threads)
    helpers.setup(device="cpu", seed=0, threads=threads)
    torch.set_num_threads(threads)


def machine_line(command: str, extra: str = "") -> str:
    """One sentence saying how, where and under what load a benchmark ran (read with its ratios).

    Example:
        >>> machine_line("python benchmarks/x.py").startswith("`python benchmarks/x.py` on ")
        True
    """
    import torch

    return (f"`{command}` on {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}{extra}, "
            f"{torch.get_num_threads()} thread(s); {time.strftime('%Y-%m-%d %H:%M')}; 1-minute load average at the "
            f"end {os.getloadavg()[0]:.1f} (above 1 means other processes shared the cores, and timings are noisier).")
