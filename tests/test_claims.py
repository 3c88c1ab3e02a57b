"""helpers.course.claims and the any-model rerun's planning and verdicts."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers.course import any_model
from helpers.course.claims import ClaimError, Claims
from helpers.course.notebooks import ROOT
from helpers.course.run import Job, NotebookResult

DEFAULT = SimpleNamespace(is_default=True, spec="tinyworld-gpt")
OTHER = SimpleNamespace(is_default=False, spec="random:gpt2")


def test_checked_on_the_default_reported_elsewhere(capsys):
    claims = Claims()
    assert claims.check("a", True, on=DEFAULT)
    with pytest.raises(ClaimError, match="'b' does not hold on tinyworld-gpt: 0.1 < 0.2"):
        claims.check("b", False, "0.1 < 0.2", on=DEFAULT)
    assert not claims.check("c", False, "x", on=OTHER)
    assert "REPORT c: does not hold on random:gpt2" in capsys.readouterr().out
    with pytest.raises(ClaimError):
        claims.always("d", False, on=OTHER)
    assert claims.counts() == {"checked": 3, "reported": 1, "held": 1}


def test_strict_asserts_on_any_model():
    with pytest.raises(ClaimError):
        Claims(strict=True).check("a", False, on=OTHER)
    with pytest.raises(TypeError, match="strict must be True or False"):
        Claims(strict="yes")
    with pytest.raises(TypeError, match="on= must be the model"):
        Claims().check("a", True, on="random:gpt2")


def test_summary_prints_keys(capsys):
    claims = Claims()
    claims.check("x", True, on=OTHER)
    claims.always("y", True)
    claims.summary()
    out = capsys.readouterr().out
    assert "| x | random:gpt2 | reported | yes |" in out and "KEY claims_checked=1" in out and "KEY claims_reported=1" in out


def _notebook(tmp_path: Path, kinds, with_open=True) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# t"]},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ['model = ""\n', "seed = 0\n", 'device = "cpu"\n', "scale = 1\n"],
              "outputs": [], "execution_count": None},
             {"cell_type": "code", "metadata": {}, "source": ["import helpers\n"], "outputs": [], "execution_count": None}]
    if with_open:
        cells.append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": ["lm = helpers.zoo.open_model(model)\n"]})
    nb = {"cells": cells, "metadata": {"activation_lab": {"any_model": {"kinds": kinds, "quick": {"seed": 1}}}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_t.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_plan_and_verdicts(tmp_path):
    path = _notebook(tmp_path, ["text"])
    planned = any_model.plan([path])
    assert [(j.label, e) for j, e in planned] == [("model=random:gpt2", "ok"), ("model=random:llama", "ok"),
                                                  ("model=random:resnet50", "wrong kind")]
    assert planned[0][0].params == {"seed": 1, "model": "random:gpt2"}
    assert any_model.first_model_cell(path) == 4  # after papermill's injected-parameters cell
    job = planned[2][0]
    good = NotebookResult("t", 1.0, "failed", "99_t.ipynb, cell 4 (In [3]): WrongKindError: This lesson studies text")
    assert any_model.verdict(job, "wrong kind", good) == ""
    late = NotebookResult("t", 1.0, "failed", "99_t.ipynb, cell 14 (In [9]): WrongKindError: This lesson studies text")
    assert "first open_model cell" in any_model.verdict(job, "wrong kind", late)
    assert "ran to the end" in any_model.verdict(job, "wrong kind", NotebookResult("t", 1.0, "ok"))
    assert "claims table" in any_model.verdict(planned[0][0], "ok", NotebookResult("t", 1.0, "ok"))
    assert any_model.verdict(planned[0][0], "ok", NotebookResult("t", 1.0, "ok", keys={"claims_checked": "3"})) == ""
    with pytest.raises(ValueError, match="no cell calls"):
        any_model.first_model_cell(_notebook(tmp_path, ["text"], with_open=False))


def test_both_kinds_run_four_architectures(tmp_path):
    planned = any_model.plan([_notebook(tmp_path, ["image", "text"])])
    assert [j.params["model"] for j, _ in planned] == ["random:resnet50", "random:vit_b_16", "random:gpt2",
                                                       "random:llama", "wild-generator"]


def test_every_lesson_studies_a_given_model_or_is_an_exception():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = path.name[:2]
        spec = any_model.any_model_spec(path)
        assert (spec is None) == (number in any_model.EXCEPTIONS), path.name
        if spec is None:
            assert f"| {number} " in readme.split("Run a lesson on your model")[1], f"README does not list {number}'s reason"
        else:
            any_model.first_model_cell(path)
