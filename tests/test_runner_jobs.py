"""``python -m helpers.course.run --jobs N --grid NAME V ...``: parallel notebooks with the CPU threads divided."""
from __future__ import annotations

import pytest

from helpers.course.notebooks import ParameterError
from helpers.course.run import cpu_count, grid_jobs
from helpers.course.run import main as run_main
from tests.test_runner_student import PARAMS, _notebook


def test_grid_and_jobs_run_every_point_once_with_threads_divided(tmp_path):
    nb = _notebook(tmp_path, "07_grid.ipynb", PARAMS,
                   "import os\nprint(f'KEY seed_seen={seed}')\nprint(f'KEY threads={os.environ[\"ACTIVATION_LAB_THREADS\"]}')",
                   "assert seed != 2, 'seed 2 fails on purpose'")
    summary = tmp_path / "summary.md"
    code = run_main([str(nb), "--grid", "seed", "0", "1", "2", "--jobs", "2", "--out", str(tmp_path / "out"),
                     "--html", "", "--summary", str(summary)])
    assert code == 1  # seed 2 failed, and the run says so
    rows = [line for line in summary.read_text().splitlines() if line.startswith("| 07_grid")]
    assert [r.split("|")[1].strip() for r in rows] == [f"07_grid.ipynb [seed={s}]" for s in (0, 1, 2)]  # job order
    threads = max(1, cpu_count() // 2)
    for s, row in zip((0, 1), rows):
        assert f"seed_seen={s}" in row and f"threads={threads}" in row and "| ok |" in row
    assert "seed 2 fails on purpose" in rows[2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"07_grid[seed={s}].ipynb" for s in (0, 1, 2)]


def test_grid_is_validated_before_anything_runs(tmp_path):
    nb = _notebook(tmp_path, "08_x.ipynb", PARAMS, "x = 1")
    with pytest.raises(ParameterError, match="colour"):
        grid_jobs([nb], {}, [["colour", "red"]])
    with pytest.raises(ParameterError, match="both with -p and with --grid"):
        grid_jobs([nb], {"seed": "1"}, [["seed", "0"]])
    with pytest.raises(ParameterError, match="at least one value"):
        grid_jobs([nb], {}, [["seed"]])
    assert [j.label for j in grid_jobs([nb], {}, [["seed", "0", "1"], ["scale", "1", "2"]])] == \
        ["seed=0,scale=1", "seed=0,scale=2", "seed=1,scale=1", "seed=1,scale=2"]
    assert run_main([str(nb), "--jobs", "0"]) == 2
