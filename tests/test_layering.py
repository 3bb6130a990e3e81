"""The package's layering, beyond the import-linter contracts in pyproject.toml: no module of the
package imports, directly or not, a module that imports it back."""

from __future__ import annotations

import pytest


def test_no_module_of_the_package_is_in_an_import_cycle() -> None:
    grimp = pytest.importorskip("grimp")  # import-linter's graph library, in the dev extra
    graph = grimp.build_graph("scratchnet")
    cycles = [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if graph.chain_exists(importer=imported, imported=importer)
    ]
    assert cycles == []


def test_the_cli_is_imported_by_no_library_module() -> None:
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("scratchnet")
    importers = graph.find_modules_that_directly_import("scratchnet.cli")
    for module in graph.find_children("scratchnet.cli"):
        importers |= graph.find_modules_that_directly_import(module)
    # ``python -m scratchnet`` is the command line too
    assert {m for m in importers if not m.startswith("scratchnet.cli")} == {"scratchnet.__main__"}
