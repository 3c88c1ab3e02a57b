"""Notebook time budget under nbval: a notebook whose cells take longer than NOTEBOOK_BUDGET fails the run."""
from __future__ import annotations

import os
from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
# every kernel nbval starts inherits this: explorers draw a static figure of their default state
os.environ.setdefault("ACTIVATION_LAB_STATIC", "1")


def pytest_configure(config):
    # The unit tests run in this process: give it the thread count the Makefile exports (one by default), as
    # helpers.setup does for notebooks; on 2 shared cores a second torch thread can make tests many times slower.
    threads = os.environ.get("ACTIVATION_LAB_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch
        torch.set_num_threads(int(threads))


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_sessionfinish(session, exitstatus):
    if not _seconds:
        return
    budget = float(os.environ.get("NOTEBOOK_BUDGET", "120"))
    over = {nb: s for nb, s in _seconds.items() if s > budget}
    lines = [f"  {s:6.1f} s  {nb}" + ("  OVER BUDGET" if nb in over else "") for nb, s in sorted(_seconds.items())]
    print(f"\nnotebook run times (budget {budget:.0f} s each):\n" + "\n".join(lines))
    if over:
        session.exitstatus = 1
