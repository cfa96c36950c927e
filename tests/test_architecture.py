"""The architecture as checks (issue 16): the import contracts of pyproject.toml, one docstring per domain
package saying what it owns, and no path of a particular machine anywhere in the tree."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    """Layers (the domain knows no transport; views and API share services), and no import circle between
    sibling packages or modules: ``lint-imports`` reads them from pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_broken_layer_is_caught(tmp_path: Path) -> None:
    """The contract is not vacuous: a domain module importing a transport breaks it."""
    import grimp

    graph = grimp.build_graph("core", "dashboard", "worker", "mailgate")
    assert not graph.find_illegal_dependencies_for_layers(layers=["dashboard", "core"], containers=None)
    assert graph.find_illegal_dependencies_for_layers(layers=["core", "dashboard"], containers=None)


def test_every_domain_package_says_what_it_owns() -> None:
    for info in pkgutil.iter_modules(core.__path__, "core."):
        if info.ispkg and not info.name.endswith("migrations"):
            module = importlib.import_module(info.name)
            assert (module.__doc__ or "").strip(), f"{info.name} has no docstring saying what it owns"


MACHINE_PATH = re.compile(r"""["'`(\s](/work/|/root/|/home/[a-z]|/Users/|/tmp/ci/)""")


def test_no_path_of_a_particular_machine_in_the_tree() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".sh", ".cfg", ".ini", ".yml", ".yaml", ".html"}:
            continue
        if name == "tests/test_architecture.py" or not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not offenders, "\n".join(offenders)
