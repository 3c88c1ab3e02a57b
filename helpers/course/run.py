"""Run the curriculum's notebooks headlessly with papermill: ``python -m helpers.course.run``.

    python -m helpers.course.run                      # every notebook
    python -m helpers.course.run 00 04 -p seed 1      # two notebooks, one parameter
    python -m helpers.course.run 04 -p device=cuda -p scale=4
    python -m helpers.course.run --jobs 2                 # two notebooks at a time, one CPU thread each
    python -m helpers.course.run 13 --grid seed 0 1 2 3 4 --jobs 2   # one notebook over five seeds

Executed copies go to ``build/notebooks/`` (``make site`` publishes them as offline HTML), and a table of
notebook, seconds, status and the ``KEY name=value`` figures to ``build/summary.md``.
Exits non-zero when any notebook fails, naming the notebook, the cell and the error.

``--jobs N`` runs N notebooks (or grid points) at once, each in its own process and kernel, with the
machine's CPU threads divided between them (``ACTIVATION_LAB_THREADS`` = cores // N, at least 1, for
each kernel); the summary is written once, at the end, in the order the jobs were listed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import nbformat

from helpers.course.notebooks import (NotebookError, ParameterError, ROOT, find_notebooks, key_figures,
                               validate_parameters)


@dataclass
class NotebookResult:
    notebook: str
    seconds: float
    status: str  # "ok" or "failed"
    error: str = ""
    keys: dict[str, str] = field(default_factory=dict)


def parse_params(pairs: Sequence[Sequence[str]]) -> dict[str, str]:
    """``[["seed", "1"], ["device=cuda"]]`` -> ``{"seed": "1", "device": "cuda"}``."""
    params: dict[str, str] = {}
    for pair in pairs:
        if len(pair) == 1 and "=" in pair[0]:
            name, value = pair[0].split("=", 1)
        elif len(pair) == 2:
            name, value = pair
        else:
            raise ParameterError(f"Cannot read parameter {' '.join(pair)!r}: write `-p name value` or `-p name=value`.")
        params[name.strip()] = value
    return params


# What the Jupyter kernel prints on every run although nothing is wrong:
# - ipykernel warns at start that its local sockets use TCP without encryption (the kernel is ours, on
#   127.0.0.1, started and stopped by this run);
# - jupyter_client interrupts the kernel before shutting it down, and ipykernel logs that interrupt as an
#   error when it arrives while a message is still being handled.
KERNEL_NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")


def is_kernel_noise(line: str) -> bool:
    """True for a line the kernel prints on every run (see ``KERNEL_NOISE``).

    Example:
        >>> is_kernel_noise("[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All ...")
        True
        >>> is_kernel_noise("Traceback (most recent call last):")
        False
    """
    return any(marker in line for marker in KERNEL_NOISE)


@contextmanager
def quiet_kernel() -> Iterator[None]:
    """Drop the kernel's noise lines, pass on everything else it writes to stdout or stderr.

    The kernel is a child process that writes to the file descriptors it inherits, so Python-level
    redirection cannot reach it: file descriptors 1 and 2 point to temporary files while the block
    runs, and afterwards every line that is not noise is written to the real stdout / stderr.
    """
    saved = []
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        try:
            original = os.dup(fd)
        except OSError:  # no such descriptor (a detached process): nothing to filter
            continue
        stream.flush()
        tmp = tempfile.TemporaryFile()
        saved.append((fd, stream, original, tmp))
        os.dup2(tmp.fileno(), fd)
    try:
        yield
    finally:
        for fd, stream, original, tmp in saved:
            stream.flush()
            os.dup2(original, fd)
            os.close(original)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            tmp.close()
            kept = [line for line in text.splitlines(keepends=True) if not is_kernel_noise(line)]
            if kept:
                stream.write("".join(kept))
                stream.flush()


def _describe_failure(err: BaseException, notebook: str) -> str:
    cell = getattr(err, "exec_count", None)
    index = getattr(err, "cell_index", None)
    where = f"cell {index}" + (f" (In [{cell}])" if cell is not None else "") if index is not None else "setup"
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    return f"{notebook}, {where}: {ename}: {str(evalue).strip().splitlines()[0] if str(evalue).strip() else ''}"


def run_notebook(path: Path, out_dir: Path, params: dict[str, Any], timeout: Optional[float],
                 html_dir: Optional[Path] = None, label: str = "") -> NotebookResult:
    """Execute one notebook with papermill; never raises for a failing cell, returns its result.

    ``label`` (e.g. ``"seed=1"``) tells grid points apart: it goes into the executed copy's name and the summary.
    """
    import papermill as pm

    os.environ.setdefault("ACTIVATION_LAB_STATIC", "1")  # explorers draw their default state (helpers.course.explorers)
    stem = path.stem + (f"[{label}]" if label else "")
    out_path = out_dir / (stem + path.suffix)
    t0 = time.perf_counter()
    try:
        with quiet_kernel():
            pm.execute_notebook(str(path), str(out_path), parameters=params, kernel_name="python3",
                                progress_bar=False, cwd=str(path.parent), execution_timeout=timeout,
                                request_save_on_cell_execute=False)
        status, error = "ok", ""
    except Exception as err:  # papermill raises PapermillExecutionError for a failing cell
        status, error = "failed", _describe_failure(err, path.name)
    seconds = time.perf_counter() - t0
    if status == "ok" and timeout is not None and seconds > timeout:
        status, error = "failed", f"{path.name}: took {seconds:.0f} s, over the {timeout:.0f} s budget"
    keys: dict[str, str] = {}
    if out_path.exists():
        executed = nbformat.read(out_path, as_version=4)
        keys = key_figures(executed)
        if html_dir is not None:
            from nbconvert import HTMLExporter
            body, _ = HTMLExporter().from_notebook_node(executed)
            (html_dir / (stem + ".html")).write_text(body, encoding="utf-8")
    return NotebookResult(path.name + (f" [{label}]" if label else ""), seconds, status, error, keys)


@dataclass
class Job:
    """One notebook with its parameters (one grid point)."""
    path: Path
    params: dict[str, Any]
    label: str = ""


def cpu_count() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_job(job: Job, out_dir: Path, timeout: Optional[float], html_dir: Optional[Path],
             threads: int) -> NotebookResult:
    os.environ["ACTIVATION_LAB_THREADS"] = str(threads)  # the kernel papermill starts inherits it
    return run_notebook(job.path, out_dir, job.params, timeout, html_dir, job.label)


def run_jobs(jobs: Sequence[Job], out_dir: Path, timeout: Optional[float], html_dir: Optional[Path],
             n_jobs: int = 1) -> list[NotebookResult]:
    """Run ``jobs``, ``n_jobs`` at a time in separate processes (threads divided between them); results in job order."""
    from tqdm.auto import tqdm
    if n_jobs <= 1:
        results = []
        for job in jobs:
            result = run_notebook(job.path, out_dir, job.params, timeout, html_dir, job.label)
            results.append(result)
            tqdm.write(f"{result.status:>6}  {result.seconds:6.1f} s  {result.notebook}")
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing
    threads = max(1, cpu_count() // n_jobs)
    print(f"{len(jobs)} job(s), {n_jobs} at a time, {threads} CPU thread(s) each")
    results: list[Optional[NotebookResult]] = [None] * len(jobs)
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_job, job, out_dir, timeout, html_dir, threads): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            tqdm.write(f"{result.status:>6}  {result.seconds:6.1f} s  {result.notebook}")
    return [r for r in results if r is not None]


def grid_jobs(paths: Sequence[Path], raw: dict[str, str], grid: Sequence[Sequence[str]]) -> list[Job]:
    """Every notebook at every combination of the ``--grid NAME V1 V2 ...`` values, parameters validated first.

    Example:
        >>> [j.label for j in grid_jobs([], {}, [["seed", "0", "1"]])]
        []
    """
    names = [g[0] for g in grid]
    for g in grid:
        if len(g) < 2:
            raise ParameterError(f"--grid {g[0]} needs at least one value: `--grid {g[0]} 0 1 2`")
        if g[0] in raw:
            raise ParameterError(f"{g[0]!r} is given both with -p and with --grid; keep one")
    jobs = []
    for path in paths:
        for values in itertools.product(*[g[1:] for g in grid]):
            point = dict(zip(names, values))
            label = ",".join(f"{k}={v}" for k, v in point.items())
            jobs.append(Job(path, validate_parameters(path, {**raw, **point}), label))
    return jobs


def write_summary(results: list[NotebookResult], params: dict[str, str], path: Path) -> str:
    lines = ["# Curriculum run", ""]
    lines.append("Parameters: " + (", ".join(f"`{k}={v}`" for k, v in params.items()) or "defaults"))
    lines += ["", "| notebook | seconds | status | key figures |", "|---|---:|---|---|"]
    for r in results:
        keys = "; ".join(f"{k}={v}" for k, v in r.keys.items()) or "-"
        status = r.status if not r.error else f"{r.status}: {r.error.replace('|', '/')}"
        lines.append(f"| {r.notebook} | {r.seconds:.1f} | {status} | {keys} |")
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers (04), names (04_cam) or paths; default all")
    parser.add_argument("-p", "--param", nargs="+", action="append", default=[], metavar="NAME VALUE",
                        help="a parameter: `-p seed 1` or `-p seed=1` (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "build" / "notebooks"), help="folder for executed copies")
    parser.add_argument("--html", default="", help="also a quick nbconvert HTML per notebook into this folder (its "
                        "MathJax comes from a CDN; `python -m helpers.course.site` builds the offline site)")
    parser.add_argument("--summary", default=str(ROOT / "build" / "summary.md"))
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per notebook (and per cell); over it counts as a failure")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once, in separate processes")
    parser.add_argument("--grid", nargs="+", action="append", default=[], metavar="NAME VALUES",
                        help="run over values: `--grid seed 0 1 2` (repeatable: every combination)")
    args = parser.parse_args(argv)

    try:
        if args.jobs < 1:
            raise ParameterError(f"--jobs must be at least 1, got {args.jobs}")
        paths = find_notebooks(args.notebooks)
        raw = parse_params(args.param)
        # Validate every notebook's parameters (every grid point's) before running any of them.
        jobs = grid_jobs(paths, raw, args.grid)
    except (NotebookError, ParameterError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not paths:
        print("error: no notebooks found", file=sys.stderr)
        return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_dir = Path(args.html) if args.html else None
    if html_dir is not None:
        html_dir.mkdir(parents=True, exist_ok=True)

    results = run_jobs(jobs, out_dir, args.timeout, html_dir, args.jobs)
    write_summary(results, raw, Path(args.summary))
    failed = [r for r in results if r.status != "ok"]
    print(f"\n{len(results) - len(failed)} of {len(results)} notebooks ran; summary in {args.summary}")
    for r in failed:
        print(f"FAILED {r.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
