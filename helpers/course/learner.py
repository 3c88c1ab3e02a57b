"""The learner's path in Jupyter: one friendly box instead of a traceback, and Run All that reaches the end.

In a learner notebook (``make student``) an unsolved exercise's stub raises
``NotImplementedError("exercise 00.1")``. The IPython handler installed by :func:`install`
(importing :mod:`helpers.course.checks` does it) catches it, or the :class:`ExerciseNotDone`
a check raises for it, and

1. shows one box: "Exercise not done yet: <title>" (HTML ``div.al-exercise-notice``, plain text too);
2. runs the exercise's hidden reference cell (stored encoded next to the learner notebooks,
   :func:`encode_references`) so the names it defines exist, then runs the current cell again;
3. marks the cell as succeeded, so Run All goes on.

A wrong answer (:class:`CheckFailed`) shows "Not quite: <what differs>" as a two-line error output
without a traceback, and stops Run All (and nbval, papermill) there.

Example:
    >>> blob = encode_references({"00.1": {"title": "t", "source": "x = 1"}})
    >>> decode_references(blob)["00.1"]["source"]
    'x = 1'
    >>> exercise_id(NotImplementedError("exercise 03.2"))
    '03.2'
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any, Optional

from helpers.core.paths import ROOT

REFERENCES = ".references.json"
STUB = re.compile(r"\bexercise (\d{2}\.\d+)\b")


class CheckFailed(AssertionError):
    """The learner's answer differs from the reference (the message says how, not what to write).

    In IPython it shows as two lines instead of a traceback (``_render_traceback_``), still as an error
    output, so Run All, nbval and papermill stop at it.
    """

    def _render_traceback_(self) -> list[str]:
        return ["Not quite: " + str(self).split("\n")[0],
                "Change your code in the exercise cell, run it, then run this check again."]


class ExerciseNotDone(CheckFailed):
    """The learner's function still raises the stub of ``make student``."""

    def _render_traceback_(self) -> list[str]:
        return [str(self).split("\n")[0]]


def encode_references(refs: dict[str, dict[str, str]]) -> str:
    """Hide reference cells from plain reading: JSON, zlib, base64 (not a secret, only not in plain text)."""
    return base64.b64encode(zlib.compress(json.dumps(refs, sort_keys=True).encode(), 9)).decode()


def decode_references(blob: str) -> dict[str, dict[str, str]]:
    """The inverse of :func:`encode_references`."""
    return json.loads(zlib.decompress(base64.b64decode(blob)).decode())


def reference_files() -> list[Path]:
    """Where the hidden references are looked for, in order: $ACTIVATION_LAB_REFERENCES, cwd, build/student."""
    paths = [Path(os.environ["ACTIVATION_LAB_REFERENCES"])] if os.environ.get("ACTIVATION_LAB_REFERENCES") else []
    return paths + [Path.cwd() / REFERENCES, ROOT / "build" / "student" / REFERENCES]


def load_reference(ex_id: str) -> Optional[dict[str, str]]:
    """The stored reference of exercise ``ex_id`` ("NN.k"), or None when no references file has it."""
    for path in reference_files():
        if path.is_file():
            refs = decode_references(json.loads(path.read_text())["data"])
            if ex_id in refs:
                return refs[ex_id]
    return None


def exercise_id(err: BaseException) -> Optional[str]:
    """The exercise id ("NN.k") named by a stub's or a check's message, else None."""
    match = STUB.search(str(err))
    return match.group(1) if match else None


def box(kind: str, title: str, lines: list[str]) -> dict[str, str]:
    """A display bundle: an HTML box of class ``al-<kind>`` and the same words as plain text."""
    colour = {"exercise-notice": "#2d6cdf"}[kind]
    body = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
    markup = (f'<div class="al-{kind}" style="border-left:4px solid {colour};padding:6px 10px;'
              f'background:rgba(127,127,127,0.08)"><b>{html.escape(title)}</b>{body}</div>')
    return {"text/html": markup, "text/plain": "\n".join([title, *lines])}


def _show(bundle: dict[str, str]) -> None:
    from IPython.display import display
    display(bundle, raw=True)


def _run(shell: Any, source: str, where: str) -> None:
    exec(compile(shell.transform_cell(source), where, "exec"), shell.user_ns)  # noqa: S102 - the learner's own cells


def handle(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Optional[int] = None) -> list[str]:
    """The IPython custom exception handler (see :func:`install`)."""
    ex_id = exercise_id(value)
    if isinstance(value, NotImplementedError) and ex_id is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)  # not an exercise stub: the usual traceback
        return []
    unsolved = isinstance(value, (ExerciseNotDone, NotImplementedError))
    reference = load_reference(ex_id) if ex_id and unsolved else None
    if reference is None:  # a wrong answer, or no hidden reference: a short error output (the cell fails)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return []
    title = reference["title"]
    _show(box("exercise-notice", f"Exercise not done yet: {title}",
              ["The rest of the notebook runs on the reference solution (this cell ran again with it), so Run All goes on.",
               "Write your own version in the exercise cell (replace the `raise NotImplementedError` line) "
               "and run it to use yours."]))
    result = getattr(shell.displayhook, "exec_result", None)  # the running cell's ExecutionResult
    current = result.info.raw_cell if result is not None and result.info is not None else ""
    try:
        _run(shell, reference["source"], f"<reference of exercise {ex_id}>")
        if f"exercise {ex_id}" not in current:  # raised by a later cell (the check): run it again
            _run(shell, current, "<this cell, with the reference solution>")
    except Exception as err:  # noqa: BLE001 - a later error is the learner's to see, as usual
        shell.showtraceback((type(err), err, err.__traceback__))
        return []
    if result is not None:
        result.error_in_exec = None  # handled: the cell counts as run, Run All continues
    return []


def install(shell: Any = None) -> bool:
    """Install :func:`handle` for exercise stubs and failed checks in the running IPython; False outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((NotImplementedError, CheckFailed), handle)
    return True
