"""Write learner versions of the notebooks: ``python -m helpers.course.student`` (``make student``).

Each lesson is written once, with its solutions marked:

    def f(x):
        # SOLUTION: square every entry
        return x ** 2
        # END SOLUTION

In the learner's copy the marked body becomes
``raise NotImplementedError("Exercise: square every entry")`` at the same indentation,
and the check cell that follows reports that the exercise is not done yet.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import nbformat

from helpers.course.notebooks import ROOT, find_notebooks

START = re.compile(r"^(?P<indent>[ \t]*)# SOLUTION\b:?\s*(?P<what>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION\b")


class MarkerError(ValueError):
    """Unbalanced ``# SOLUTION`` / ``# END SOLUTION`` markers."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every marked solution in ``source`` by a ``NotImplementedError`` stub.

    Example:
        >>> print(strip_solutions("def f(x):\\n    # SOLUTION: square it\\n    return x ** 2\\n    # END SOLUTION"))
        def f(x):
            raise NotImplementedError("Exercise: square it")
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        start = START.match(line)
        if start and not END.match(line):
            if inside:
                raise MarkerError(f"{where}, line {number}: '# SOLUTION' inside another solution")
            inside = True
            what = start["what"].strip() or "complete this block"
            # json.dumps gives a double-quoted literal that is valid Python too
            out.append(f'{start["indent"]}raise NotImplementedError({json.dumps("Exercise: " + what)})')
        elif END.match(line):
            if not inside:
                raise MarkerError(f"{where}, line {number}: '# END SOLUTION' without '# SOLUTION'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: '# SOLUTION' is never closed by '# END SOLUTION'")
    return "\n".join(out)


def student_notebook(path: Path) -> nbformat.NotebookNode:
    """The learner's version of a notebook: solutions stubbed, outputs cleared."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source, f"{path.name}, cell {i}")
        cell.outputs = []
        cell.execution_count = None
    return nb


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.student", description="Write learner versions.")
    parser.add_argument("notebooks", nargs="*", help="numbers, names or paths; default all")
    parser.add_argument("--out", default=str(ROOT / "build" / "student"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in find_notebooks(args.notebooks):
        nbformat.write(student_notebook(path), out / path.name)
        print(f"wrote {out / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
