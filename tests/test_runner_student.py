"""The notebook runner (parameter validation, failures, summary), the student build and the checks."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import capture
from helpers.course import checks
from helpers.course.notebooks import (NotebookError, ParameterError, find_notebooks, key_figures, notebook_parameters,
                               validate_parameters)
from helpers.course.run import main as run_main
from helpers.course.run import parse_params, run_notebook, write_summary
from helpers.course.student import MarkerError, strip_solutions, student_notebook

TOUR = Path(__file__).resolve().parent.parent / "notebooks" / "00_tour.ipynb"


def _notebook(tmp_path: Path, name: str, params: str | None, *cells: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# test")])
    if params is not None:
        nb.cells.append(new_code_cell(params, metadata={"tags": ["parameters"]}))
    nb.cells += [new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


PARAMS = 'device = "auto"\nseed = 0\nscale = 1\nrate = 0.5\nverbose = False'


def test_parameters_are_read_and_validated(tmp_path):
    path = _notebook(tmp_path, "01_x.ipynb", PARAMS)
    assert notebook_parameters(path) == {"device": "auto", "seed": 0, "scale": 1, "rate": 0.5, "verbose": False}
    assert validate_parameters(path, {"seed": "3", "rate": "1", "device": "cuda", "verbose": "True"}) == \
        {"seed": 3, "rate": 1.0, "device": "cuda", "verbose": True}
    with pytest.raises(ParameterError, match=r"no parameter 'sead'.*Did you mean seed.*Valid parameters: device='auto'"):
        validate_parameters(path, {"sead": "1"})
    with pytest.raises(ParameterError, match="'seed' takes a int"):
        validate_parameters(path, {"seed": "1.5"})
    with pytest.raises(ParameterError, match="'scale' takes a int"):
        validate_parameters(path, {"scale": "big"})
    with pytest.raises(ParameterError, match="takes a bool"):
        validate_parameters(path, {"verbose": "1"})


def test_notebooks_without_a_proper_parameters_cell_are_rejected(tmp_path):
    with pytest.raises(NotebookError, match="0 cells tagged 'parameters'"):
        notebook_parameters(_notebook(tmp_path, "02_a.ipynb", None, "x = 1"))
    with pytest.raises(NotebookError, match="lacks \\['scale'\\]"):
        notebook_parameters(_notebook(tmp_path, "03_b.ipynb", 'device = "auto"\nseed = 0'))
    with pytest.raises(NotebookError, match="only `name = literal`"):
        notebook_parameters(_notebook(tmp_path, "04_c.ipynb", PARAMS + "\nimport os"))


def test_selection_and_param_parsing(tmp_path):
    _notebook(tmp_path, "00_a.ipynb", PARAMS)
    _notebook(tmp_path, "01_b.ipynb", PARAMS)
    assert [p.name for p in find_notebooks(["1"], tmp_path)] == ["01_b.ipynb"]
    assert [p.name for p in find_notebooks([], tmp_path)] == ["00_a.ipynb", "01_b.ipynb"]
    with pytest.raises(NotebookError, match="Valid: 00_a, 01_b"):
        find_notebooks(["07"], tmp_path)
    assert parse_params([["seed", "1"], ["device=cuda"]]) == {"seed": "1", "device": "cuda"}
    with pytest.raises(ParameterError):
        parse_params([["a", "b", "c"]])


def test_cli_refuses_unknown_parameters_before_running(capsys):
    assert run_main(["00", "-p", "colour", "red", "--out", "/nonexistent/never"]) == 2
    err = capsys.readouterr().err
    assert "no parameter 'colour'" in err and "seed=0" in err and "scale=1" in err


def test_run_reports_key_figures_and_names_the_failing_cell(tmp_path):
    good = _notebook(tmp_path, "05_good.ipynb", PARAMS, "print(f'KEY doubled={seed * 2}')")
    bad = _notebook(tmp_path, "06_bad.ipynb", PARAMS, "x = 1", "assert seed == 0, 'seed was changed'")
    out = tmp_path / "out"
    out.mkdir()
    ok = run_notebook(good, out, {"seed": 21}, timeout=60)
    assert ok.status == "ok" and ok.keys == {"doubled": "42"}
    failed = run_notebook(bad, out, {"seed": 3}, timeout=60)
    assert failed.status == "failed"
    assert "06_bad.ipynb" in failed.error and "AssertionError" in failed.error and "seed was changed" in failed.error
    assert "cell" in failed.error
    text = write_summary([ok, failed], {"seed": "21"}, tmp_path / "summary.md")
    assert "| 05_good.ipynb |" in text and "doubled=42" in text and "failed" in text


def test_key_figures_are_parsed_from_stream_outputs():
    nb = new_notebook(cells=[new_code_cell("")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\nKEY acc=0.93\nKEY n=10\n")]
    assert key_figures(nb) == {"acc": "0.93", "n": "10"}


def test_strip_solutions_keeps_indentation_and_text():
    src = "def f(x):\n    y = 1\n    # SOLUTION: add one\n    return x + y\n    # END SOLUTION\nprint('after')"
    out = strip_solutions(src)
    assert out == ("def f(x):\n    y = 1\n    # Exercise 00.1: add one\n    # Write your code here, then delete the next line.\n"
                   "    raise NotImplementedError(\"exercise 00.1\")\nprint('after')")
    long = strip_solutions("    # SOLUTION: " + "word " * 60 + "\n    pass\n    # END SOLUTION", prefix="07", first=3)
    assert all(len(line) <= 88 for line in long.splitlines()) and 'NotImplementedError("exercise 07.3")' in long
    for broken in ("# SOLUTION\nx = 1", "# END SOLUTION", "# SOLUTION\n# SOLUTION\n# END SOLUTION"):
        with pytest.raises(MarkerError):
            strip_solutions(broken)


def _exercise_source(nb) -> str:
    return next(c.source for c in nb.cells if c.cell_type == "code" and "# SOLUTION" in c.source)


def test_tour_exercise_check_passes_on_solution_fails_on_stub_and_bugs():
    solution = _exercise_source(nbformat.read(TOUR, as_version=4))
    scope: dict = {"torch": torch, "nn": torch.nn}
    exec(solution, scope)
    assert "match helpers.capture" in checks.check_manual_capture(scope["manual_capture"])

    stub_scope: dict = {"torch": torch, "nn": torch.nn}
    student = student_notebook(TOUR)
    stub = _exercise_source_student(student)
    assert "NotImplementedError" in stub and "SOLUTION" not in stub
    exec(stub, stub_scope)
    with pytest.raises(checks.ExerciseNotDone, match="not done yet"):
        checks.check_manual_capture(stub_scope["manual_capture"])

    def forgets_to_remove(model, name, x):  # planted bug: the hook stays attached
        module = dict(model.named_modules())[name]
        store = {}
        module.register_forward_hook(lambda m, i, o: store.setdefault("o", o.detach()))
        model(x)
        return store["o"]

    with pytest.raises(AssertionError, match="still attached"):
        checks.check_manual_capture(forgets_to_remove)

    def returns_input(model, name, x):  # planted bug: the layer's input instead of its output
        with capture(model, name, inputs=True) as acts:
            model(x)
        return acts.inputs[name]

    with pytest.raises(AssertionError, match="shape|differ"):
        checks.check_manual_capture(returns_input)


def _exercise_source_student(nb) -> str:
    return next(c.source for c in nb.cells if c.cell_type == "code" and "NotImplementedError" in c.source)


def test_student_build_of_every_notebook_has_no_solution_left(tmp_path):
    from helpers.course.student import main as student_main
    assert student_main(["--out", str(tmp_path)]) == 0
    start = re.compile(r"^[ \t]*# SOLUTION\b", flags=re.M)
    for path in find_notebooks():
        original = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / path.name, as_version=4)
        assert [c.get("id") for c in student.cells] == [c.get("id") for c in original.cells]
        exercises = 0
        for i, (cell, learner) in enumerate(zip(original.cells, student.cells)):
            if cell.cell_type != "code":
                continue
            assert "# SOLUTION" not in learner.source and "END SOLUTION" not in learner.source
            # each marked solution became exactly one stub, in the same cell
            solutions = len(start.findall(cell.source))
            stubs = learner.source.count("raise NotImplementedError(") - cell.source.count("raise NotImplementedError(")
            assert stubs == solutions, f"{path.name} cell {i}: {solutions} solution(s) but {stubs} stub(s)"
            exercises += solutions
            # every learner cell is still valid Python (stubs at the right indent)
            source = "\n".join(l for l in learner.source.splitlines() if not l.lstrip().startswith(("%", "!")))
            compile(source, f"{path.name} cell {i}", "exec")
        assert exercises >= 1, f"{path.name} has no exercise marked # SOLUTION"


def test_check_against_and_assert_close():
    assert "2 case(s)" in checks.check_against(torch.square, lambda x: x * x, [(torch.ones(2),), (torch.arange(3.),)], "sq")
    with pytest.raises(AssertionError, match="max abs difference"):
        checks.check_against(lambda x: x * 2, lambda x: x * 3, [(torch.ones(2),)], "triple")
    with pytest.raises(AssertionError, match="keys"):
        checks.assert_close({"a": 1}, {"b": 1}, "d")


# before: every run printed "Kernel is running over TCP without encryption" and, when the shutdown
# interrupt landed while the kernel finished its last reply, "KeyboardInterrupt caught in kernel"
def test_runner_drops_kernel_noise_but_keeps_real_output_and_errors(tmp_path, capfd):
    noisy = _notebook(tmp_path, "a_ok.ipynb", PARAMS,
                      "import os\n"
                      "os.write(2, b'[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\\n')\n"
                      "os.write(2, b'a real message from the kernel process\\n')\n"
                      "print('KEY answer=42')")
    failing = _notebook(tmp_path, "b_bad.ipynb", PARAMS, "x = 1", "1 / 0")
    code = run_main([str(noisy), str(failing), "--out", str(tmp_path / "out"), "--html", "",
                     "--summary", str(tmp_path / "summary.md")])
    out, err = capfd.readouterr()
    assert code == 1
    assert "without encryption" not in out + err and "KeyboardInterrupt" not in out + err
    assert "a real message from the kernel process" in err  # what the kernel writes is not swallowed
    assert "FAILED b_bad.ipynb, cell 3" in err and "ZeroDivisionError: division by zero" in err
    assert "answer=42" in (tmp_path / "summary.md").read_text()


def _learner_shell(tmp_path, monkeypatch):
    """An IPython shell with the friendly handler and the hidden reference of exercise 99.1."""
    from IPython.core.interactiveshell import InteractiveShell
    from helpers.course.student import write_references

    reference = "def double(x):\n    # SOLUTION: twice x\n    return 2 * x\n    # END SOLUTION"
    write_references({"99.1": {"title": "double it", "source": reference}}, tmp_path)
    monkeypatch.setenv("ACTIVATION_LAB_REFERENCES", str(tmp_path / ".references.json"))
    from helpers.course import learner

    shell = InteractiveShell.instance()
    assert learner.install(shell)  # what importing helpers.course.checks does in a kernel
    shell.run_cell("from helpers.course import checks\nimport torch")
    return shell, strip_solutions(reference, prefix="99")


def test_an_unsolved_exercise_shows_one_box_and_the_notebook_goes_on_with_the_reference(tmp_path, monkeypatch, capsys):
    shell, stub = _learner_shell(tmp_path, monkeypatch)
    assert "2 * x" not in stub and "2 * x" not in (tmp_path / ".references.json").read_text()  # not in plain text
    assert shell.run_cell(stub).success
    check = "msg = checks.check_against(double, lambda x: x + x, [(torch.ones(2),)], 'double')\nafter = double(21)"
    result = shell.run_cell(check)
    out = capsys.readouterr().out
    assert result.success  # Run All goes on
    assert "Exercise not done yet: double it" in out and "runs on the reference solution" in out
    assert "Traceback" not in out and "helpers/course" not in out
    assert shell.user_ns["after"] == 42 and "1 case(s) match" in shell.user_ns["msg"]
    # a stub at the top level of a cell: the cell itself is replaced by its reference
    assert shell.run_cell('raise NotImplementedError("exercise 99.1")').success
    assert "Exercise not done yet" in capsys.readouterr().out


def test_a_wrong_answer_shows_not_quite_without_traceback_and_stops(tmp_path, monkeypatch, capsys):
    shell, _ = _learner_shell(tmp_path, monkeypatch)
    result = shell.run_cell("checks.check_against(lambda x: x * 3, lambda x: x + x, [(torch.ones(2),)], 'double')")
    out = capsys.readouterr().out
    assert not result.success  # Run All stops at a wrong answer
    assert "Not quite: double, case 0: values differ" in out and "Traceback" not in out and "checks.py" not in out
    assert len(out.strip().splitlines()) == 2
    # other errors keep their usual traceback
    result = shell.run_cell("raise NotImplementedError('a library feature')")
    assert not result.success and "NotImplementedError" in capsys.readouterr().out


def test_learner_notebook_runs_to_the_end_in_a_kernel_on_the_hidden_reference(tmp_path):
    """Run All in a real kernel (papermill): the unsolved exercise shows the box, later cells use the reference."""
    import papermill as pm
    from helpers.course.student import main as student_main

    source = tmp_path / "src"
    source.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# 98 test"), new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
                             new_code_cell("import torch\nfrom helpers.course import checks"),
                             new_markdown_cell("**Exercise: double it** · difficulty 1/5 · importance 1/5 · about 1 min"),
                             new_code_cell("def double(x):\n    # SOLUTION: twice x\n    return x + x\n    # END SOLUTION"),
                             new_code_cell("print(checks.check_against(double, lambda x: 2 * x, [(torch.ones(2),)], 'double'))"),
                             new_code_cell("print('KEY after=' + str(double(21)))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, source / "98_test.ipynb")
    out = tmp_path / "student"
    assert student_main([str(source / "98_test.ipynb"), "--out", str(out)]) == 0
    learner = (out / "98_test.ipynb").read_text()
    assert "x + x" not in learner and "exercise 98.1" in learner
    pm.execute_notebook(str(out / "98_test.ipynb"), str(tmp_path / "ran.ipynb"), kernel_name="python3",
                        progress_bar=False, cwd=str(out))  # raises if any cell fails
    ran = nbformat.read(tmp_path / "ran.ipynb", as_version=4)
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if o.output_type == "display_data" and "text/html" in o.get("data", {})]
    assert len(html) == 1 and 'class="al-exercise-notice"' in html[0] and "Exercise not done yet: double it" in html[0]
    assert key_figures(ran) == {"after": "42"}

    # a wrong answer fails the run (nbval and papermill see an error) with two lines and no traceback
    wrong = nbformat.read(source / "98_test.ipynb", as_version=4)
    wrong.cells[4].source = "def double(x):\n    return 3 * x"
    nbformat.write(wrong, tmp_path / "98_wrong.ipynb")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(tmp_path / "98_wrong.ipynb"), str(tmp_path / "ran_wrong.ipynb"), kernel_name="python3",
                            progress_bar=False, cwd=str(out))
    assert err.value.ename == "CheckFailed" and "helpers/course" not in "".join(err.value.traceback)
    assert err.value.traceback[0].startswith("Not quite: double, case 0")


FORMAT = re.compile(r"^\*\*Exercise: (?P<title>[^*]+)\*\* · difficulty (?P<d>[1-5])/5 · importance (?P<i>[1-5])/5 · "
                    r"about (?P<m>\d+) min$", flags=re.M)
FORMAT_PENDING: set[str] = set()  # notebooks not yet in the exercise format (none)


def test_every_notebook_has_two_rated_exercises_with_hints_apart_from_the_check():
    for path in find_notebooks():
        if path.name[:2] in FORMAT_PENDING:
            continue
        nb = nbformat.read(path, as_version=4)
        rated = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not re.search(r"^[ \t]*# SOLUTION\b", cell.source, flags=re.M):
                continue
            before = nb.cells[i - 1]
            assert before.cell_type == "markdown" and FORMAT.search(before.source), \
                f"{path.name} cell {i}: the markdown cell before an exercise needs the '**Exercise: ...** · difficulty' line"
            hint = re.search(r"<details><summary>Hint</summary>(.*?)</details>", before.source, flags=re.S)
            # the stub's one line names the task; it must not be the code itself
            what = re.search(r"# SOLUTION:?\s*(.*)", cell.source).group(1)
            assert len(what) <= 110 and not re.search(r"[=*@]|\.sum\(|\*\*", what), f"{path.name} cell {i}: stub gives code away: {what!r}"
            if hint:
                assert "SOLUTION" not in hint.group(1)
            rated += 1
        assert rated >= 2, f"{path.name}: {rated} rated exercise(s), at least 2 wanted"
