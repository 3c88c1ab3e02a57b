"""The curriculum as a static site that works offline: ``python -m helpers.course.site`` (``make site``).

It does not execute anything: it publishes the executed copies that ``make run`` wrote to ``build/notebooks/``
(a lesson without one is published unexecuted, with a notice), with

- an index (``index.html``) from ``build/summary.md``: lesson, measured run time, key figures, status;
- each page titled from the notebook's first heading, with links to the previous lesson, the index and the next;
- every ``# SOLUTION ... # END SOLUTION`` block replaced in the shown code by a one-line placeholder, the
  reference code in a collapsed "Reference solution" box after the cell;
- MathJax served from the site itself (the MathJax 2.7 files of the ``jupyter-server-mathjax`` package, copied
  to ``_static/mathjax``), no require.js, no widget or mermaid script from a CDN: pages open from ``file://``.

Example:
    >>> shown, solutions = hide_solutions("x = 1\\n# SOLUTION: double it\\ny = 2 * x\\n# END SOLUTION\\nprint(y)")
    >>> print(shown)
    x = 1
    # Exercise: double it  (reference solution below)
    print(y)
    >>> solutions
    ['y = 2 * x']
"""
from __future__ import annotations

import argparse
import copy
import html
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import Optional, Sequence

import nbformat

from helpers.course.notebooks import NOTEBOOK_DIR, ROOT
from helpers.course.outline import Lesson, Run, read_lesson, read_summary
from helpers.course.student import END, START

MATHJAX_URL = "_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
STYLE = """<style>
nav.al-nav { display: flex; justify-content: space-between; gap: 1em; padding: .6em 0; font-family: sans-serif; }
nav.al-nav a { text-decoration: none; }
details.al-solution { margin: .3em 0 1em 0; }
details.al-solution summary { cursor: pointer; color: #555; font-family: sans-serif; }
.al-notice { background: #fff4d6; border-left: 4px solid #e0a800; padding: .5em 1em; font-family: sans-serif; }
</style>"""
# the lab template, without the scripts it would fetch from CDNs (require.js; mermaid loads only for diagrams)
PAGE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}""" + STYLE + """{%- endblock extra_css -%}
"""


class SiteError(RuntimeError):
    """Something the site cannot be built without (MathJax files, notebooks)."""


def hide_solutions(source: str) -> tuple[str, list[str]]:
    """The code with each marked solution replaced by a placeholder line, and the solutions' code."""
    shown: list[str] = []
    solutions: list[str] = []
    current: Optional[list[str]] = None
    for line in source.splitlines():
        start = START.match(line)
        if start and not END.match(line) and current is None:
            what = start["what"].strip() or "complete this block"
            indent = start["indent"]
            shown += textwrap.wrap(f"Exercise: {what}  (reference solution below)", width=88 - len(indent),
                                   initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#   ")
            current = []
        elif END.match(line) and current is not None:
            solutions.append(_dedent(current))
            current = None
        elif current is not None:
            current.append(line)
        else:
            shown.append(line)
    if current is not None:  # unclosed: hide the rest too (student.py reports the error at `make student`)
        solutions.append(_dedent(current))
    return "\n".join(shown), solutions


def _dedent(lines: list[str]) -> str:
    return textwrap.dedent("\n".join(lines)).strip("\n")


def nav_html(prev: Optional[Lesson], nxt: Optional[Lesson]) -> str:
    """The bar of links between lessons (``<nav class="al-nav">``)."""
    def link(lesson: Optional[Lesson], arrow: str) -> str:
        if lesson is None:
            return "<span></span>"
        text = f"← {lesson.title}" if arrow == "prev" else f"{lesson.title} →"
        return f'<a class="al-{arrow}" href="{lesson.stem}.html">{html.escape(text)}</a>'
    return (f'<nav class="al-nav">{link(prev, "prev")}<a class="al-index" href="index.html">All lessons</a>'
            f'{link(nxt, "next")}</nav>')


def site_notebook(nb: nbformat.NotebookNode, lesson: Lesson, prev: Optional[Lesson] = None,
                  nxt: Optional[Lesson] = None, executed: bool = True) -> nbformat.NotebookNode:
    """A copy of ``nb`` ready to publish: title, navigation, solutions hidden."""
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.from_dict({**nb.metadata, "title": lesson.title})
    nb.metadata.pop("widgets", None)  # explorers were rendered as static figures; no widget manager needed
    cells = [nbformat.v4.new_markdown_cell(nav_html(prev, nxt))]
    if not executed:
        cells.append(nbformat.v4.new_markdown_cell(
            '<div class="al-notice">This lesson has not been run yet: no executed copy in build/notebooks/. '
            "Run <code>make run</code> and then <code>make site</code> to see its outputs.</div>"))
    for cell in nb.cells:
        cell.pop("id", None)
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        cell.source, solutions = hide_solutions(cell.source)
        for code in solutions:
            cells.append(nbformat.v4.new_markdown_cell(
                '<details class="al-solution"><summary>Reference solution</summary>\n\n'
                f"```python\n{code}\n```\n\n</details>"))
    cells.append(nbformat.v4.new_markdown_cell(nav_html(prev, nxt)))
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        cell.setdefault("id", nbformat.corpus.words.generate_corpus_id())
    return nb


def exporter():
    """nbconvert's JupyterLab HTML exporter with the site's template and the local MathJax."""
    import jinja2
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="lab", template_file="al_site.html.j2", mathjax_url=MATHJAX_URL,
                        extra_loaders=[jinja2.DictLoader({"al_site.html.j2": PAGE_TEMPLATE})])


def mathjax_source() -> Path:
    """The MathJax 2.7 folder that the ``jupyter-server-mathjax`` package installs."""
    try:
        import jupyter_server_mathjax
    except ImportError as err:
        raise SiteError("MathJax is missing: `pip install jupyter-server-mathjax` (a dependency of the project; "
                        "`make setup` installs it).") from err
    folder = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (folder / "MathJax.js").exists():
        raise SiteError(f"{folder} has no MathJax.js; reinstall jupyter-server-mathjax")
    return folder


def index_html(lessons: list[Lesson], runs: dict[str, Run], guide: bool = False) -> str:
    """The index page: one row per lesson with its measured run time, status and key figures."""
    rows = []
    for lesson in lessons:
        run = runs.get(lesson.stem)
        seconds = f"{run.seconds:.0f} s" if run else "–"
        status = html.escape(run.status) if run else "not run"
        keys = "".join(f"<li><code>{html.escape(k)}={html.escape(v)}</code></li>" for k, v in (run.keys if run else {}).items())
        figures = f"<details><summary>{len(run.keys)} figures</summary><ul>{keys}</ul></details>" if keys else "–"
        rows.append(f'<tr><td><a href="{lesson.stem}.html">{html.escape(lesson.title)}</a></td>'
                    f'<td class="al-seconds">{seconds}</td><td class="al-status">{status}</td><td>{figures}</td></tr>')
    guide_link = '<p><a href="guide.html">Instructor guide</a> (goals, prerequisites, run times, exercises)</p>' if guide else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>activation-lab: the lessons</title>
<style>body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; }} td, th {{ padding: .3em .8em;
vertical-align: top; text-align: left; border-bottom: 1px solid #ddd; }} .al-seconds {{ text-align: right; }}</style>
</head><body>
<h1>activation-lab</h1>
<p>A Jupyter-first curriculum on the activations of neural networks. Each page is a lesson executed by
<code>make run</code>; run times are measured on the machine that built this site.</p>
{guide_link}
<table class="al-index"><thead><tr><th>lesson</th><th>run time</th><th>status</th><th>key figures</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def build_site(out: Path, executed_dir: Path = ROOT / "build" / "notebooks", summary: Path = ROOT / "build" / "summary.md",
               source_dir: Path = NOTEBOOK_DIR, selection: Sequence[str] = ()) -> list[Path]:
    """Write the site to ``out``; returns the pages written (index first)."""
    from helpers.course.notebooks import find_notebooks

    sources = find_notebooks(selection, source_dir)
    if not sources:
        raise SiteError(f"no notebooks in {source_dir}")
    mathjax = mathjax_source()
    out.mkdir(parents=True, exist_ok=True)
    target = out / "_static" / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(mathjax, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    lessons = [read_lesson(p) for p in sources]
    runs = read_summary(summary)
    export = exporter()
    pages = []
    for i, (path, lesson) in enumerate(zip(sources, lessons)):
        executed = executed_dir / path.name
        nb = nbformat.read(executed if executed.exists() else path, as_version=4)
        page = site_notebook(nb, lesson, lessons[i - 1] if i else None,
                             lessons[i + 1] if i + 1 < len(lessons) else None, executed.exists())
        body, _ = export.from_notebook_node(page)
        pages.append(out / f"{lesson.stem}.html")
        pages[-1].write_text(body, encoding="utf-8")
    from helpers.course.guide import guide_html, guide_markdown
    (out / "guide.html").write_text(guide_html(guide_markdown(lessons, runs)), encoding="utf-8")
    (out / "index.html").write_text(index_html(lessons, runs, guide=True), encoding="utf-8")
    return [out / "index.html", out / "guide.html", *pages]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers, names or paths; default all in notebooks/")
    parser.add_argument("--out", default=str(ROOT / "build" / "site"))
    parser.add_argument("--executed", default=str(ROOT / "build" / "notebooks"), help="executed copies (make run)")
    parser.add_argument("--summary", default=str(ROOT / "build" / "summary.md"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        pages = build_site(Path(args.out), Path(args.executed), Path(args.summary), selection=args.notebooks)
    except SiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    missing = [p.stem for p in pages[2:] if not (Path(args.executed) / f"{p.stem}.ipynb").exists()]
    print(f"{len(pages) - 2} lessons, index and guide in {args.out} ({time.perf_counter() - t0:.1f} s); "
          f"open {Path(args.out) / 'index.html'}")
    if missing:
        print(f"not executed yet (run `make run` first): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
