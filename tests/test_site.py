"""make site / make guide: the outline read from notebooks, the offline site, the instructor guide, paths."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import helpers
from helpers.core import paths
from helpers.course import guide, outline, run, site
from helpers.course.notebooks import NOTEBOOK_DIR

FIRST = """# 07 · A lesson about $x^2$

**What you will learn**
- to square a number;
- to check it.

**Papers.** *Squares* (Someone, 2020).

**Prerequisites.** Lesson 00.

**Run time.** About 5 s on a 2-core laptop CPU with the default parameters.
"""
EXERCISE_MD = ("Now you.\n\n**Exercise: square it** · difficulty 2/5 · importance 4/5 · about 10 min\n"
               "Write the square.\n<details><summary>Hint</summary> multiply </details>")
SOLVED = "def square(x):\n    # SOLUTION: multiply x by itself\n    return x * x\n    # END SOLUTION\nprint(square(3))"


def make_notebook(folder: Path, name: str, title: str, executed: bool) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("device = \"auto\"\nseed = 0\nscale = 1", metadata={"tags": ["parameters"]})
    code = nbformat.v4.new_code_cell(SOLVED)
    if executed:
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="9\nKEY squared=9\n")]
        code.execution_count = 2
    nb.cells = [nbformat.v4.new_markdown_cell(FIRST.replace("07 · A lesson", title)), params,
                nbformat.v4.new_markdown_cell("The formula is $$y = x^2$$."),
                nbformat.v4.new_markdown_cell(EXERCISE_MD), code]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def test_parse_exercise_lines():
    ex = outline.parse_exercise_line("**Exercise: manual capture** · difficulty 3/5 · importance 5/5 · about 15 min")
    assert (ex.title, ex.difficulty, ex.importance, ex.minutes, ex.rated) == ("manual capture", 3, 5, 15, True)
    old = outline.parse_exercise_line("text. **Exercise 2:** write `cett(a)` for activations. More.")
    assert old.title.startswith("write `cett(a)`") and not old.rated
    assert outline.parse_exercise_line("An exercise in patience, not **bold**.") is None


def test_read_lesson(tmp_path):
    lesson = outline.read_lesson(make_notebook(tmp_path, "07_sq.ipynb", "07 · Squares", executed=False))
    assert lesson.title == "07 · Squares about $x^2$"
    assert lesson.goals == ["to square a number;", "to check it."]
    assert lesson.prerequisites == "Lesson 00."
    assert lesson.stated_run_time.startswith("About 5 s")
    assert [(e.title, e.difficulty, e.importance, e.minutes, e.hint) for e in lesson.exercises] == [
        ("square it", 2, 4, 10, True)]


def test_every_notebook_has_a_title_and_goals():
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        lesson = outline.read_lesson(path)
        assert lesson.title.startswith(path.stem[:2]) and lesson.goals and lesson.prerequisites, path.name


def test_summary_written_by_the_runner_is_read_back(tmp_path):
    results = [run.NotebookResult("00_tour.ipynb", 12.34, "ok", keys={"a": "1", "b": "0.5"}),
               run.NotebookResult("01_x.ipynb", 3.0, "failed", error="01_x.ipynb, cell 3: ValueError: bad | worse")]
    run.write_summary(results, {}, tmp_path / "summary.md")
    runs = outline.read_summary(tmp_path / "summary.md")
    assert runs["00_tour"].seconds == 12.3 and runs["00_tour"].keys == {"a": "1", "b": "0.5"}
    assert runs["01_x"].status.startswith("failed: 01_x.ipynb, cell 3")
    assert outline.read_summary(tmp_path / "absent.md") == {}


def test_hide_solutions_keeps_indent_and_everything_else():
    shown, solutions = site.hide_solutions(SOLVED)
    assert shown == ("def square(x):\n    # Exercise: multiply x by itself  (reference solution below)\n"
                     "print(square(3))")
    assert solutions == ["return x * x"]
    assert site.hide_solutions("a = 1") == ("a = 1", [])
    long = "    # SOLUTION: " + "word " * 40 + "\n    pass\n    # END SOLUTION"
    lines = site.hide_solutions(long)[0].splitlines()
    assert len(lines) > 1 and all(len(line) <= 88 and line.startswith("    #") for line in lines)


def test_build_site(tmp_path):
    src, executed = tmp_path / "notebooks", tmp_path / "executed"
    make_notebook(src, "00_a.ipynb", "00 · First", executed=False)
    make_notebook(src, "01_b.ipynb", "01 · Second", executed=False)
    make_notebook(executed, "00_a.ipynb", "00 · First", executed=True)
    run.write_summary([run.NotebookResult("00_a.ipynb", 4.2, "ok", keys={"squared": "9"})], {}, tmp_path / "s.md")
    pages = site.build_site(tmp_path / "site", executed, tmp_path / "s.md", src)
    assert [p.name for p in pages] == ["index.html", "guide.html", "00_a.html", "01_b.html"]
    first, second = ((tmp_path / "site" / name).read_text() for name in ("00_a.html", "01_b.html"))
    assert "<title>00 · First about $x^2$</title>" in first
    # executed outputs are published, the solution is hidden behind a placeholder and a collapsed box
    assert "KEY squared=9" in first and "not been run yet" not in first
    assert "# SOLUTION" not in first and "END SOLUTION" not in first
    assert re.search(r'<details class="al-solution"><summary>Reference solution</summary>', first)
    assert "not been run yet" in second
    # navigation: first page links to the index and the next, the second back
    assert 'href="01_b.html"' in first and 'href="index.html"' in first and 'href="00_a.html"' in second
    # nothing is fetched from elsewhere: MathJax is local
    for page in pages:
        text = page.read_text()
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', text)
        assert not remote, (page.name, remote)
    assert f'src="{site.MATHJAX_URL}"' in first
    assert (tmp_path / "site" / "_static" / "mathjax" / "MathJax.js").exists()
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="00_a.html">00 · First' in index and "4 s" in index and "squared=9" in index
    assert "not run" in index  # the second lesson has no row in the summary
    assert "square it" in (tmp_path / "site" / "guide.html").read_text()


def test_guide_lists_ratings_and_measured_times(tmp_path):
    lesson = outline.read_lesson(make_notebook(tmp_path, "07_sq.ipynb", "07 · Squares", executed=False))
    lesson.exercises.append(outline.Exercise("an old one"))
    text = guide.guide_markdown([lesson], {"07_sq": outline.Run("07_sq.ipynb", 61.0, "ok")})
    assert "| square it | 2/5 | 4/5 | 10 min | yes |" in text
    assert "| an old one | not rated | not rated | – | no |" in text
    assert "61 s measured by `make run` (ok)" in text and "About 5 s" in text
    assert "--no-index --find-links" in text
    html_page = guide.guide_html(text)
    assert "<script" not in html_page and "<table>" in html_page
    unmeasured = guide.guide_markdown([lesson], {})
    assert "not measured yet" in unmeasured


def test_build_dir_is_absolute_and_refuses_escapes():
    assert helpers.build_dir("activations", "00_tour") == paths.ROOT / "build" / "activations" / "00_tour"
    for bad in ("../x", "/tmp/x"):
        with pytest.raises(ValueError, match="build_dir takes names inside build/"):
            helpers.build_dir(bad)


def test_notebooks_do_not_depend_on_the_working_folder():
    """A learner copy runs from build/student/: a path like "../build/..." would land in build/build/."""
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                assert not re.search(r"""["']\.\./""", source), (
                    f"{path.name}, cell {i}: a path relative to the working folder; use helpers.build_dir(...) "
                    "or helpers.core.paths")
