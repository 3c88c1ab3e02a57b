"""Project conventions: dependencies agree, notebooks follow the curriculum's rules."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from helpers.course.notebooks import NOTEBOOK_DIR, REQUIRED_PARAMETERS, ROOT, notebook_parameters

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _normalise(req: str) -> str:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)(.*)$", req.strip()).groups()
    return name.lower().replace("_", "-") + spec.replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_normalise(r) for r in pip_section if not r.startswith("-")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_torch_is_not_pinned_to_one_release():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith("torch") and "==" in d]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ is empty"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path: Path):
    assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", path.name), "name notebooks NN_slug.ipynb"
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not [c for c in code if c.get("outputs") or c.get("execution_count")], "commit notebooks without outputs"
    params = notebook_parameters(path)  # raises unless exactly one parameters cell with literals
    assert set(REQUIRED_PARAMETERS) <= set(params) and params["device"] == "auto"
    # papermill reads the cell with its own regex: a comment holding "=" hides that line from it, so
    # `papermill --help-notebook` omits the parameter and `-p name value` warns "Passed unknown parameter"
    import papermill

    assert set(papermill.inspect_notebook(str(path))) == set(params), "papermill cannot parse a parameter line"
    first = "".join(nb["cells"][0]["source"])
    for part in ("What you will learn", "Papers", "Prerequisites", "Run time"):
        assert part in first, f"the first cell lacks '{part}'"
    sources = ["".join(c["source"]) for c in code]
    setup_cell = next(i for i, s in enumerate(sources) if "helpers.setup(" in s)
    params_cell = next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))
    assert setup_cell == params_cell + 1, "call helpers.setup(device=..., seed=...) right after the parameters"
    # claims.check / claims.always (helpers.course.claims) assert on the default model, like a plain assert
    assert any(w in s for s in sources for w in ("assert ", "claims.check(", "claims.always(")), \
        "a notebook asserts its claims"
    assert any("KEY " in s for s in sources), "a notebook prints its key figures as KEY name=value"
    assert not any("sys.path" in s for s in sources), "import helpers as an installed package"
