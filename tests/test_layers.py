"""The package's shape: dependencies point down only, modules stay small, no function hides a module.

Every import in every module counts, also those inside functions and under ``TYPE_CHECKING``.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import helpers

ROOT = Path(helpers.__file__).parent
MAX_LINES = 320

# what each top-level part of helpers may import (besides itself)
BELOW = {
    "core": set(),
    "ops": {"core"},
    "data": {"core", "ops"},
    "models": {"core", "ops"},
    "zoo": {"core", "ops", "data", "models"},
}
LOWER_AND_UPPER = {"core", "ops", "data", "models", "zoo", "course"}
# every other folder of helpers is a topic package (a lesson's code): activation_functions, statistics, explain, ...
TOPICS = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} - LOWER_AND_UPPER
for _topic in TOPICS:
    BELOW[_topic] = {"core", "ops", "data", "models", "zoo"}
BELOW["plot"] = {"core", "ops"}
BELOW["course"] = {"core", "ops", "data", "models", "zoo", "plot"} | TOPICS
BELOW["__init__"] = {"core"}  # the subpackages load lazily through __getattr__


def modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def part_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_parts(path: Path) -> set[tuple[str, int]]:
    """(part of helpers, line) for every import of helpers in the file, at any depth of the syntax tree."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module or node.level else []
            if target == "helpers":  # from helpers import zoo, plot: each name is a part
                names = [f"helpers.{a.name}" for a in node.names]
        for name in names:
            if name == "helpers" or name.startswith("helpers."):
                parts = name.split(".")
                if len(parts) > 1 and (ROOT / parts[1]).exists() or (ROOT / f"{parts[1] if len(parts) > 1 else ''}.py").exists():
                    found.add((parts[1], node.lineno))
    return found


def test_the_rule_covers_every_part():
    parts = {part_of(p) for p in modules()}
    assert parts <= set(BELOW), f"parts without a rule in BELOW: {parts - set(BELOW)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dependencies_point_down(path):
    me = part_of(path)
    wrong = sorted((part, line) for part, line in imported_parts(path) if part != me and part not in BELOW[me])
    assert not wrong, (f"{path.relative_to(ROOT)} ({me}) imports {wrong}; {me} may import only "
                       f"{sorted(BELOW[me]) or 'nothing else of helpers'}")


def test_the_walker_sees_imports_inside_functions(tmp_path):
    # a check that can fail: an upward import hidden in a function body is found
    fake = ROOT / "core" / "_layer_probe.py"
    fake.write_text("def f():\n    from helpers.zoo import load\n    from ..explain import cam\n")
    try:
        assert {p for p, _ in imported_parts(fake)} == {"zoo", "explain"}
    finally:
        fake.unlink()


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines; split it by concern (limit {MAX_LINES})"


def test_no_attribute_hides_a_submodule():
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        module = importlib.import_module(info.name)
        parent_name, _, leaf = info.name.rpartition(".")
        parent = importlib.import_module(parent_name)
        assert getattr(parent, leaf) is module, (f"{parent_name}.{leaf} is {getattr(parent, leaf)!r}, "
                                                 f"which hides the module {info.name}")


def test_import_helpers_exposes_the_engine_and_is_light():
    import subprocess
    import sys
    code = ("import sys, helpers\n"
            "assert all(callable(getattr(helpers, n)) for n in ('setup', 'capture', 'edit', 'extract', 'layers'))\n"
            "heavy = [m for m in ('transformers', 'matplotlib', 'helpers.zoo', 'helpers.explain', 'nbformat') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "for name in helpers.__all__:\n"
            "    getattr(helpers, name)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
