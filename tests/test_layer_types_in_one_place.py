"""The layer registry is the one place that knows the layer types (issue 24).

Outside ``scratchnet/core/``, the two backends and ``scratchnet/interop/`` (whose exporters and
importers are per-type tables), no function names a layer type as a string and no ``isinstance``
names a layer class or one of its bases: per-type knowledge lives in tables and registrations at
module level (the explainers of ``scratchnet/teaching/layer_explainers.py``, the page's entries in
``scratchnet/serve/explanation_json.py``). Read with ``ast``, so that comments, docstrings' prose
and error messages do not count, and the test stays true as the code changes.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from scratchnet import loops, vectorized
from scratchnet.core import registry

PACKAGE = Path(__file__).resolve().parents[1] / "scratchnet"
ALLOWED = ("core", "loops", "vectorized", "interop")  # the registry, the two backends, the exporters and importers


def layer_class_names() -> set[str]:
    """The names of both backends' layer classes and of their bases (Pool2D, Elementwise, ...)."""
    names = set()
    for table in (loops.LAYERS, vectorized.LAYERS):
        for cls in table.values():
            assert isinstance(cls, type)
            for base in inspect.getmro(cls):
                if base.__module__.startswith("scratchnet."):
                    names.add(base.__name__)
    return names


def checked_files() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in ALLOWED)


def class_named(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def violations(path: Path, types: set[str], classes: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    where = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path.name
    functions = [
        node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    ]
    for function in functions:
        for node in ast.walk(function):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in types:
                found.append(f"{where}:{node.lineno}: the layer type {node.value!r} named in a function")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
            ):
                second = node.args[1]
                named = second.elts if isinstance(second, ast.Tuple) else [second]
                for item in named:
                    if class_named(item) in classes:
                        found.append(
                            f"{where}:{node.lineno}: {node.func.id} against the layer class {class_named(item)}"
                        )
    return sorted(set(found))


def test_the_patterns_are_found_where_they_are_written(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'TABLE = {"Dense": 1}\n'  # a table at module level: allowed
        "def f(layer, kind):\n"
        '    if kind == "Conv2D":\n'
        "        return isinstance(layer, (Pool2D, loops.Dense))\n"
        '    return f"a Dense layer {kind}"\n'  # prose in a message: not a name
    )
    found = violations(sample, {"Dense", "Conv2D"}, {"Dense", "Pool2D"})
    assert found == [
        "sample.py:3: the layer type 'Conv2D' named in a function",
        "sample.py:4: isinstance against the layer class Dense",
        "sample.py:4: isinstance against the layer class Pool2D",
    ]


def test_no_module_outside_the_registry_the_backends_and_interop_knows_a_layer_type() -> None:
    types = set(registry.LAYER_TYPES)
    classes = layer_class_names()
    assert {"Dense", "Conv2D", "BatchNorm"} <= types and {"Pool2D", "Elementwise", "Dense"} <= classes
    files = checked_files()
    assert any(path.name == "explain.py" for path in files) and any(path.name == "api.py" for path in files)
    found = [line for path in files for line in violations(path, types, classes)]
    assert not found, "\n".join(found)
