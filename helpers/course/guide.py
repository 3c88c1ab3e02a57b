"""The instructor guide, generated from the notebooks: ``python -m helpers.course.guide`` (``make guide``).

Per lesson: its goals, prerequisites, the run time measured by ``make run`` (``build/summary.md``; the
machine it ran on is the one that wrote the file, 2 cores in this project's CI) next to the time the notebook
states, and its exercises with difficulty, importance and minutes (see ``helpers.course.outline`` for the
format). Written to ``build/guide.md``; ``make site`` also publishes it as ``guide.html``.

Example:
    >>> from pathlib import Path
    >>> from helpers.course.outline import Exercise, Lesson, Run
    >>> lesson = Lesson(Path("00_tour.ipynb"), "00 · Tour", ["capture"], "Python", "About 20 s",
    ...                 [Exercise("manual capture", 2, 4, 10)])
    >>> text = guide_markdown([lesson], {"00_tour": Run("00_tour.ipynb", 12.0, "ok")})
    >>> "| manual capture | 2/5 | 4/5 | 10 min | no |" in text and "12 s measured" in text
    True
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from helpers.course.notebooks import NOTEBOOK_DIR, ROOT, find_notebooks
from helpers.course.outline import Lesson, Run, read_lesson, read_summary

PREPARE = """## Before the workshop

1. On a machine with internet: `make wheelhouse` downloads every wheel the project needs (and the zoo's
   pretrained packages) into `build/wheelhouse/`. Copy the repository with that folder to a USB stick.
2. On each laptop, without internet:
   `python3 -m venv .venv && .venv/bin/pip install --no-index --find-links build/wheelhouse -e ".[dev]"`
   then `.venv/bin/pip install --no-index --find-links build/wheelhouse --no-deps -r requirements-zoo.txt`.
3. `make student` writes the learner notebooks to `build/student/`; `make lab` opens JupyterLab on the
   project (as root too), with the news prompt off. In a learner notebook an exercise left undone shows a
   notice and the rest runs on the reference solution, so Run All reaches the end.
4. `make run && make site` publishes every executed lesson to `build/site/` (opens offline, from a USB stick).
"""


def _minutes(lesson: Lesson) -> int:
    return sum(e.minutes or 0 for e in lesson.exercises)


def lesson_markdown(lesson: Lesson, run: Optional[Run]) -> str:
    """One lesson's section of the guide."""
    lines = [f"## {lesson.title}", ""]
    if lesson.goals:
        lines += ["**Goals**", ""] + [f"- {g}" for g in lesson.goals] + [""]
    lines += [f"**Prerequisites.** {lesson.prerequisites or 'none stated'}", ""]
    measured = f"{run.seconds:.0f} s measured by `make run` ({run.status})" if run else "not measured yet (`make run`)"
    lines += [f"**Run time.** {measured}; the notebook states: {lesson.stated_run_time or 'nothing'}", ""]
    if lesson.exercises:
        rated = [e for e in lesson.exercises if e.rated]
        lines += [f"**Exercises** ({len(lesson.exercises)}; about {_minutes(lesson)} min for the rated ones)", "",
                  "| exercise | difficulty | importance | time | hint |", "|---|---|---|---|---|"]
        for e in lesson.exercises:
            if e.rated:
                lines.append(f"| {e.title} | {e.difficulty}/5 | {e.importance}/5 | {e.minutes} min | "
                             f"{'yes' if e.hint else 'no'} |")
            else:
                lines.append(f"| {e.title} | not rated | not rated | – | {'yes' if e.hint else 'no'} |")
        if len(rated) < len(lesson.exercises):
            lines += ["", f"{len(lesson.exercises) - len(rated)} exercise(s) without ratings in the notebook."]
    else:
        lines += ["**Exercises.** none marked in this notebook."]
    return "\n".join(lines) + "\n"


def guide_markdown(lessons: list[Lesson], runs: dict[str, Run]) -> str:
    """The whole guide: an overview table, how to prepare a workshop, then one section per lesson."""
    total = sum(r.seconds for r in runs.values())
    lines = ["# activation-lab: instructor guide", "",
             f"{len(lessons)} lessons; measured run time of all of them: {total / 60:.1f} min "
             f"({len(runs)} measured in `build/summary.md`).", "",
             "| lesson | run time | exercises | exercise minutes |", "|---|---:|---:|---:|"]
    for lesson in lessons:
        run = runs.get(lesson.stem)
        lines.append(f"| {lesson.title} | {f'{run.seconds:.0f} s' if run else '–'} | {len(lesson.exercises)} | "
                     f"{_minutes(lesson)} |")
    lines += ["", PREPARE]
    return "\n".join(lines) + "\n" + "\n".join(lesson_markdown(l, runs.get(l.stem)) for l in lessons)


def guide_html(markdown: str) -> str:
    """The guide as one standalone HTML page (no script, no remote asset)."""
    import mistune
    body = mistune.html(markdown)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>activation-lab: instructor guide"
            "</title><style>body { font-family: sans-serif; max-width: 60em; margin: 2em auto; } td, th { padding: .2em .6em;"
            " border-bottom: 1px solid #ddd; text-align: left; }</style></head><body>\n<p><a href=\"index.html\">All lessons"
            f"</a></p>\n{body}\n</body></html>\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.guide", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers, names or paths; default all")
    parser.add_argument("--out", default=str(ROOT / "build" / "guide.md"))
    parser.add_argument("--summary", default=str(ROOT / "build" / "summary.md"))
    args = parser.parse_args(argv)
    lessons = [read_lesson(p) for p in find_notebooks(args.notebooks, NOTEBOOK_DIR)]
    text = guide_markdown(lessons, read_summary(args.summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"instructor guide for {len(lessons)} lessons in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
