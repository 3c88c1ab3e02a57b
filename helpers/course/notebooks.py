"""Find the curriculum's notebooks and read and validate their ``parameters`` cells.

papermill only warns about a parameter the notebook does not have; here an unknown name,
or a value of the wrong type, is an error that names the valid parameters.
"""
from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import nbformat

ROOT = Path(__file__).resolve().parents[2]  # the repository (helpers/course/notebooks.py -> ../..)
NOTEBOOK_DIR = ROOT / "notebooks"
REQUIRED_PARAMETERS = ("device", "seed", "scale")
KEY_LINE = re.compile(r"^KEY\s+([A-Za-z0-9_.\-]+)=(.*)$", re.MULTILINE)


class NotebookError(ValueError):
    """A notebook that breaks the curriculum's conventions, or a bad notebook selection."""


class ParameterError(ValueError):
    """An unknown parameter name or a value of the wrong type."""


def find_notebooks(selection: Iterable[str] = (), folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks matching ``selection`` (numbers like ``"04"``, stems, or paths); all if empty.

    Example:
        >>> [p.name for p in find_notebooks(["00"])]   # doctest: +SKIP
        ['00_tour.ipynb']
    """
    everything = sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))
    chosen: list[Path] = []
    for item in selection:
        path = Path(item)
        if path.suffix == ".ipynb" and path.exists():
            hits = [path]
        else:
            hits = [p for p in everything if p.stem == item or p.stem.split("_")[0] == item.zfill(2)
                    or p.stem.startswith(item + "_")]
        if not hits:
            valid = ", ".join(p.stem for p in everything)
            raise NotebookError(f"No notebook matches {item!r}. Valid: {valid}")
        chosen += [h for h in hits if h not in chosen]
    return chosen if chosen else everything


def parameters_cell(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookError(f"{name} has {len(cells)} cells tagged 'parameters'; it needs exactly one "
                            f"(with at least {', '.join(REQUIRED_PARAMETERS)}).")
    return cells[0]


def notebook_parameters(path: Path | str) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell, as ``{name: value}``.

    Only plain assignments of literals are allowed there (``seed = 0``), so the defaults can
    be read without running anything.
    """
    path = Path(path)
    cell = parameters_cell(nbformat.read(path, as_version=4), path.name)
    params: dict[str, Any] = {}
    for node in ast.parse(cell.source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if not isinstance(target, ast.Name) or node.value is None:
            raise NotebookError(f"{path.name}: the parameters cell may hold only `name = literal` lines; "
                                f"found {ast.unparse(node)!r}")
        try:
            params[target.id] = ast.literal_eval(node.value)
        except ValueError as e:
            raise NotebookError(f"{path.name}: parameter {target.id!r} is not a literal ({ast.unparse(node.value)})") from e
    missing = [p for p in REQUIRED_PARAMETERS if p not in params]
    if missing:
        raise NotebookError(f"{path.name}: the parameters cell lacks {missing}; every notebook has "
                            f"{', '.join(REQUIRED_PARAMETERS)}.")
    return params


def _coerce(name: str, value: Any, default: Any, notebook: str) -> Any:
    """Parse a command-line string into the default's type, or raise ParameterError."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # stays a string; the type check below reports it
    expected = type(default)
    ok = (default is None
          or (expected is float and isinstance(value, (int, float)) and not isinstance(value, bool))
          or (expected is int and isinstance(value, int) and not isinstance(value, bool))
          or (expected is bool and isinstance(value, bool))
          or (expected not in (int, float, bool) and isinstance(value, expected)))
    if not ok:
        raise ParameterError(f"{notebook}: parameter {name!r} takes a {expected.__name__} "
                             f"(default {default!r}), got {value!r} ({type(value).__name__}).")
    return float(value) if expected is float else value


def validate_parameters(path: Path | str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the notebook's parameters; return them converted to the right types.

    Example:
        >>> validate_parameters("notebooks/00_tour.ipynb", {"seed": "3"})   # doctest: +SKIP
        {'seed': 3}
    """
    path = Path(path)
    defaults = notebook_parameters(path)
    out = {}
    for name, value in given.items():
        if name not in defaults:
            close = difflib.get_close_matches(name, defaults, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
            raise ParameterError(f"{path.name} has no parameter {name!r}.{hint} Valid parameters: {valid}")
        out[name] = _coerce(name, value, defaults[name], path.name)
    return out


def key_figures(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``KEY name=value`` lines printed by an executed notebook, in order."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                for key, value in KEY_LINE.findall(output.get("text", "")):
                    found[key] = value.strip()
    return found
