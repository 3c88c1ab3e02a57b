"""Write learner versions of the notebooks: ``python -m helpers.course.student`` (``make student``).

Each lesson is written once, with its solutions marked:

    def f(x):
        # SOLUTION: square every entry
        return x ** 2
        # END SOLUTION

In the learner's copy the marked body becomes, at the same indentation, the task as a comment
wrapped to a readable width and ``raise NotImplementedError("exercise NN.k")`` (NN the lesson,
k the exercise's number in it). The original cells are written next to the learner notebooks,
encoded (:data:`helpers.course.learner.REFERENCES`): while an exercise is unsolved, the check
shows one friendly box and the notebook goes on with the reference (:mod:`helpers.course.learner`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional, Sequence

import nbformat

from helpers.course.learner import REFERENCES, decode_references, encode_references
from helpers.course.notebooks import ROOT, find_notebooks

WIDTH = 88  # stubs are wrapped to this many columns
TITLE = re.compile(r"\*\*Exercise:\s*(?P<title>[^*]+)\*\*")

START = re.compile(r"^(?P<indent>[ \t]*)# SOLUTION\b:?\s*(?P<what>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION\b")


class MarkerError(ValueError):
    """Unbalanced ``# SOLUTION`` / ``# END SOLUTION`` markers."""


def stub(indent: str, what: str, ex_id: str) -> list[str]:
    """The learner's lines for one solution: the task as a wrapped comment, then the stub's ``raise``.

    Example:
        >>> print("\\n".join(stub("    ", "square every entry", "00.1")))
            # Exercise 00.1: square every entry
            # Write your code here, then delete the next line.
            raise NotImplementedError("exercise 00.1")
    """
    width = max(40, WIDTH - len(indent.expandtabs()))
    lines = textwrap.wrap(f"Exercise {ex_id}: {what}", width=width - 2, break_on_hyphens=False) or [""]
    return ([f"{indent}# {line}" for line in lines] + [f"{indent}# Write your code here, then delete the next line.",
            f'{indent}raise NotImplementedError({json.dumps("exercise " + ex_id)})'])


def strip_solutions(source: str, where: str = "cell", prefix: str = "00", first: int = 1) -> str:
    """Replace every marked solution in ``source`` by a stub (:func:`stub`); exercises are numbered from ``first``.

    Example:
        >>> print(strip_solutions("def f(x):\\n    # SOLUTION: square it\\n    return x ** 2\\n    # END SOLUTION"))
        def f(x):
            # Exercise 00.1: square it
            # Write your code here, then delete the next line.
            raise NotImplementedError("exercise 00.1")
    """
    out: list[str] = []
    inside = False
    number_ex = first
    for number, line in enumerate(source.splitlines(), start=1):
        start = START.match(line)
        if start and not END.match(line):
            if inside:
                raise MarkerError(f"{where}, line {number}: '# SOLUTION' inside another solution")
            inside = True
            what = start["what"].strip() or "complete this block"
            out.extend(stub(start["indent"], what, f"{prefix}.{number_ex}"))
            number_ex += 1
        elif END.match(line):
            if not inside:
                raise MarkerError(f"{where}, line {number}: '# END SOLUTION' without '# SOLUTION'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: '# SOLUTION' is never closed by '# END SOLUTION'")
    return "\n".join(out)


def student_notebook(path: Path, references: Optional[dict] = None) -> nbformat.NotebookNode:
    """The learner's version of a notebook: solutions stubbed, outputs cleared.

    ``references`` (a dict) receives, per exercise id, its title and the original cell (the hidden reference).
    """
    nb = nbformat.read(path, as_version=4)
    prefix = path.name[:2] if path.name[:2].isdigit() else "00"
    count, title, imported = 1, "", False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = TITLE.search(cell.source)
            title = found["title"].strip() if found else ""
            continue
        if cell.cell_type != "code":
            continue
        original = cell.source
        solutions = sum(bool(START.match(l)) and not END.match(l) for l in original.splitlines())
        cell.source = strip_solutions(original, f"{path.name}, cell {i}", prefix, count)
        if solutions and not imported:  # the friendly handler must be installed before the first stub can raise
            cell.source = "from helpers.course import checks  # friendly messages for the exercises\n" + cell.source
        imported = imported or "helpers.course import checks" in original or bool(solutions)
        for k in range(count, count + solutions):
            if references is not None:
                references[f"{prefix}.{k}"] = {"title": title or f"exercise {prefix}.{k}", "source": original}
        count += solutions
        cell.outputs = []
        cell.execution_count = None
    return nb


def write_references(references: dict, out: Path) -> Path:
    """Merge ``references`` into ``out / REFERENCES`` (encoded) and return its path."""
    target = out / REFERENCES
    merged = decode_references(json.loads(target.read_text())["data"]) if target.is_file() else {}
    merged.update(references)
    target.write_text(json.dumps({"format": "json, zlib, base64 (helpers.course.learner)",
                                  "data": encode_references(merged)}))
    return target


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.student", description="Write learner versions.")
    parser.add_argument("notebooks", nargs="*", help="numbers, names or paths; default all")
    parser.add_argument("--out", default=str(ROOT / "build" / "student"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    references: dict = {}
    for path in find_notebooks(args.notebooks):
        nbformat.write(student_notebook(path, references), out / path.name)
        print(f"wrote {out / path.name}")
    print(f"wrote {write_references(references, out)} ({len(references)} hidden reference solutions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
