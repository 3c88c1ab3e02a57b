"""Rerun every model-studying lesson on models it was not written for: ``python -m helpers.course.any_model``.

    python -m helpers.course.any_model --jobs 2          # every lesson, every matching architecture, wrong kinds
    python -m helpers.course.any_model 12 16             # two lessons

A lesson that studies a model says so in its metadata, ``metadata["activation_lab"]["any_model"]``:
``{"kinds": ["text"], "quick": {"real_lm": false, ...}}``. For each such lesson this runs, through papermill,

* one run per matching architecture (randomly initialised, offline: ``random:gpt2`` and ``random:llama`` for text
  lessons, ``random:resnet50`` and ``random:vit_b_16`` for image lessons) with the ``quick`` parameters; each must
  finish and print its claims table (``KEY claims_checked=...``);
* one run with a model of the wrong kind, which must fail in the lesson's first ``open_model`` cell with the
  message that names the kinds the lesson accepts.

The lessons in :data:`EXCEPTIONS` do not study a given model; the README says why.
Exits non-zero, naming the run, when any expectation fails; the table goes to ``build/any_model/summary.md``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from helpers.course.notebooks import ROOT, find_notebooks, validate_parameters
from helpers.course.run import Job, NotebookResult, run_jobs

ARCHITECTURES = {"text": ["random:gpt2", "random:llama"], "image": ["random:resnet50", "random:vit_b_16"]}
WRONG_KIND = {("text",): "random:resnet50", ("image",): "random:gpt2", ("image", "text"): "wild-generator"}
EXCEPTIONS = {
    "01": "builds and trains its own small networks to compare activation functions; there is no model to bring",
    "02": "fits learnable activation functions (KANs, DARUAN, a formula search) from scratch",
    "07": "studies a real-or-generated detector that the lesson itself trains on the zoo generator's fakes",
    "19": "trains its own mixture-of-experts and gated models from scratch to study their routing",
}


def any_model_spec(path: Path) -> Optional[dict]:
    """The lesson's ``any_model`` metadata, or None for lessons that do not study a given model."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    spec = nb.get("metadata", {}).get("activation_lab", {}).get("any_model")
    if spec is None:
        return None
    kinds = tuple(sorted(spec.get("kinds", [])))
    if kinds not in WRONG_KIND:
        raise ValueError(f"{path.name}: any_model kinds must be ['text'], ['image'] or both; got {spec.get('kinds')}.")
    return {"kinds": kinds, "quick": dict(spec.get("quick", {}))}


def first_model_cell(path: Path) -> int:
    """Index, in the executed copy, of the first code cell that calls ``open_model``/``open_models`` (where a wrong
    kind must fail); papermill inserts one cell of injected parameters after the ``parameters`` cell."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    injected = 0
    for i, cell in enumerate(nb["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            injected = 1
        if cell["cell_type"] == "code" and "open_model" in "".join(cell["source"]):
            return i + injected
    raise ValueError(f"{path.name} has any_model metadata but no cell calls helpers.zoo.open_model.")


def plan(paths: Sequence[Path]) -> list[tuple[Job, str]]:
    """``(job, expectation)`` pairs: expectation ``"ok"`` or ``"wrong kind"``; parameters validated first."""
    jobs = []
    for path in paths:
        spec = any_model_spec(path)
        if spec is None:
            continue
        archs = [a for kind in spec["kinds"] for a in ARCHITECTURES[kind]]
        for arch in archs:
            params = validate_parameters(path, {**spec["quick"], "model": arch})
            jobs.append((Job(path, params, f"model={arch}"), "ok"))
        wrong = WRONG_KIND[spec["kinds"]]
        jobs.append((Job(path, validate_parameters(path, {"model": wrong}), f"model={wrong}"), "wrong kind"))
    return jobs


def verdict(job: Job, expectation: str, result: NotebookResult) -> str:
    """``""`` when the run did what was expected, else what went wrong."""
    if expectation == "ok":
        if result.status != "ok":
            return f"failed: {result.error}"
        if "claims_checked" not in result.keys:
            return "finished without printing its claims table (claims.summary() in the last cell)"
        return ""
    if result.status == "ok":
        return "ran to the end with a model of the wrong kind"
    if "WrongKindError" not in result.error or "This lesson studies" not in result.error:
        return f"failed, but not with the wrong-kind message: {result.error}"
    cell = first_model_cell(job.path)
    if not re.search(rf"\bcell {cell}\b", result.error):
        return f"failed elsewhere than its first open_model cell ({cell}): {result.error}"
    return ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.any_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers (12) or names; default every lesson")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in separate processes")
    parser.add_argument("--out", default=str(ROOT / "build" / "any_model"))
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run (a failure when over)")
    args = parser.parse_args(argv)
    paths = find_notebooks(args.notebooks)
    missing = [p.name for p in paths if any_model_spec(p) is None and p.name[:2] not in EXCEPTIONS]
    if missing:
        print(f"No any_model metadata and not an exception: {', '.join(missing)}", file=sys.stderr)
        return 1
    planned = plan(paths)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = run_jobs([job for job, _ in planned], out, args.timeout, None, args.jobs)
    total = time.perf_counter() - t0
    lines = ["# Lessons on other models", "", "| run | expected | seconds | verdict | claims checked / reported |",
             "|---|---|---:|---|---|"]
    problems = []
    for (job, expectation), result in zip(planned, results):
        problem = verdict(job, expectation, result)
        if problem:
            problems.append(f"{result.notebook}: {problem}")
        counts = f"{result.keys.get('claims_checked', '-')} / {result.keys.get('claims_reported', '-')}"
        lines.append(f"| {result.notebook} | {expectation} | {result.seconds:.1f} | "
                     f"{'as expected' if not problem else problem.replace('|', '/')} | {counts} |")
    lines.append(f"\n{len(results)} runs in {total:.0f} s ({args.jobs} at a time).")
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    for problem in problems:
        print("PROBLEM " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
