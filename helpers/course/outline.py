"""What a lesson says about itself, read from its notebook and from ``build/summary.md``.

The site (``helpers.course.site``) and the instructor guide (``helpers.course.guide``) are built from this:
the title (the first ``# `` heading), the learning goals, the prerequisites, the stated run time, the
exercises with their ratings, and the measured run of ``make run``.

An exercise is announced in the markdown cell before its code cell by a line like
``**Exercise: manual capture** · difficulty 2/5 · importance 4/5 · about 10 min`` (older lessons write
``**Exercise.** <task>`` without ratings; those are listed as not rated).

Example:
    >>> ex = parse_exercise_line("**Exercise: manual capture** · difficulty 2/5 · importance 4/5 · about 10 min")
    >>> (ex.title, ex.difficulty, ex.importance, ex.minutes)
    ('manual capture', 2, 4, 10)
    >>> parse_exercise_line("**Exercise.** Write the estimate.").title
    'Write the estimate.'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import nbformat

RATED = re.compile(r"^\s*\*\*Exercise:\s*(?P<title>[^*]+?)\s*\*\*\s*·\s*difficulty\s*(?P<d>\d)\s*/\s*5\s*·\s*"
                   r"importance\s*(?P<i>\d)\s*/\s*5\s*·\s*about\s*(?P<m>\d+)\s*min\b", re.IGNORECASE)
UNRATED = re.compile(r"\*\*Exercise(?:\s*\d+)?(?::\s*(?P<title>[^*]+?))?\s*[.:]?\*\*[.:]?\s*(?P<rest>.*)$")
SECTION = re.compile(r"^\*\*(?P<name>What you will learn|Prerequisites|Run time)\.?\*\*\.?\s*(?P<rest>.*)$")


@dataclass
class Exercise:
    title: str
    difficulty: Optional[int] = None  # 1-5, None when the notebook does not rate it
    importance: Optional[int] = None
    minutes: Optional[int] = None
    hint: bool = False
    cell: int = -1  # index of the markdown cell that announces it

    @property
    def rated(self) -> bool:
        return self.difficulty is not None


@dataclass
class Lesson:
    path: Path
    title: str
    goals: list[str] = field(default_factory=list)
    prerequisites: str = ""
    stated_run_time: str = ""
    exercises: list[Exercise] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.path.stem


@dataclass
class Run:
    """One row of ``build/summary.md``."""
    notebook: str
    seconds: float
    status: str
    keys: dict[str, str] = field(default_factory=dict)


def parse_exercise_line(line: str) -> Optional[Exercise]:
    """The exercise a markdown line announces, or None."""
    rated = RATED.match(line)
    if rated:
        return Exercise(rated["title"].strip(), int(rated["d"]), int(rated["i"]), int(rated["m"]))
    plain = UNRATED.search(line)
    if plain:
        title = (plain["title"] or plain["rest"].split(". ")[0] or "exercise").strip()
        return Exercise(title if len(title) <= 100 else title[:99] + "…")
    return None


def _sections(first_cell: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = None
    for line in first_cell.splitlines():
        match = SECTION.match(line.strip())
        if match:
            current = match["name"]
            found[current] = [match["rest"]] if match["rest"] else []
        elif current and line.strip().startswith("**") and line.strip()[2:3].isupper():
            current = None  # another bold section (Papers, ...) ends the one we were reading
        elif current is not None and line.strip():
            found[current].append(line.strip())
    return found


def read_lesson(path: Path | str) -> Lesson:
    """Title, goals, prerequisites, stated run time and exercises of one notebook (no execution)."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    markdown = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    title = next((line[2:].strip() for _, src in markdown for line in src.splitlines() if line.startswith("# ")),
                 path.stem)
    sections = _sections(markdown[0][1]) if markdown else {}
    goals = [g[1:].strip() for g in sections.get("What you will learn", []) if g.startswith(("-", "*"))]
    lesson = Lesson(path, title, goals, " ".join(sections.get("Prerequisites", [])),
                    " ".join(sections.get("Run time", [])))
    for i, src in markdown:
        for line in src.splitlines():
            ex = parse_exercise_line(line)
            if ex is not None:
                ex.cell, ex.hint = i, "<summary>Hint</summary>" in src
                lesson.exercises.append(ex)
    return lesson


def read_summary(path: Path | str) -> dict[str, Run]:
    """The rows of a ``build/summary.md`` written by ``helpers.course.run``, keyed by notebook stem.

    Example:
        >>> import tempfile, os
        >>> text = "| notebook | seconds | status | key figures |\\n|---|---:|---|---|\\n| 00_tour.ipynb | 41.5 | ok | a=1; b=x |\\n"
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = open(os.path.join(d, "s.md"), "w").write(text)
        ...     run = read_summary(os.path.join(d, "s.md"))["00_tour"]
        >>> (run.seconds, run.status, run.keys)
        (41.5, 'ok', {'a': '1', 'b': 'x'})
    """
    path = Path(path)
    if not path.exists():
        return {}
    runs: dict[str, Run] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].endswith(".ipynb"):
            continue
        name, seconds, status, keys = cells
        pairs = [k.split("=", 1) for k in keys.split("; ") if "=" in k]
        runs[Path(name).stem] = Run(name, float(seconds), status, {k.strip(): v.strip() for k, v in pairs})
    return runs
