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


# Configuration in one place (issue 16, step 4) ------------------------------------------------------------

# Copies of the whole environment handed to a child process, not settings read.
ENVIRONMENT_COPIES = {"core/extraction/ocr.py", "dashboard/devstack.py"}


def test_only_core_config_reads_the_environment() -> None:
    offenders = []
    for folder in ("core", "dashboard", "worker", "mailgate"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "core/config.py" or name in ENVIRONMENT_COPIES or "/migrations/" in name:
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"os\.environ|os\.getenv|getenv\(", text):
                offenders.append(name)
    assert not offenders, f"read settings through core.config.env (declared in VARIABLES): {offenders}"


def test_the_readme_configuration_table_is_the_declared_settings() -> None:
    from core.config import markdown_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block is not None, "README.md lost its generated configuration table"
    assert block.group(1) == markdown_table(), "regenerate it: python -m core.config"


def test_an_undeclared_setting_cannot_be_read() -> None:
    import pytest

    from core.config import env

    with pytest.raises(KeyError, match="not a declared setting"):
        env("SMTP_MAX_RECIPIENT")  # a typo is an error, not a silent default


def test_the_declared_defaults_are_the_ones_the_code_uses() -> None:
    """The table's numbers are the section dataclasses' defaults (SMTP limits, IMAP poller)."""
    from core.config import VARIABLES
    from mailgate.imap import PollerConfig
    from mailgate.smtp import Limits

    declared = {v.name: v.default for v in VARIABLES}
    names = {"IMAP_POLL_INTERVAL": PollerConfig.poll_interval, "IMAP_IDLE_TIMEOUT": PollerConfig.idle_timeout,
             "IMAP_BACKOFF_BASE": PollerConfig.backoff_base, "IMAP_BACKOFF_MAX": PollerConfig.backoff_max,
             "IMAP_RELOAD_INTERVAL": PollerConfig.reload_interval, "IMAP_TIMEOUT": PollerConfig.timeout,
             "IMAP_SHUTDOWN_GRACE": PollerConfig.shutdown_grace,
             "SMTP_MAX_RECIPIENTS": Limits.max_recipients, "SMTP_MAX_CONNECTIONS": Limits.max_connections,
             "SMTP_MAX_CONNECTIONS_PER_IP": Limits.max_connections_per_client,
             "SMTP_TIMEOUT": Limits.command_timeout, "SMTP_SWEEP_INTERVAL": Limits.sweep_interval,
             "SMTP_SHUTDOWN_GRACE": Limits.shutdown_grace, "SMTP_DATA_IDLE_TIMEOUT": Limits.data_idle_timeout,
             "SMTP_DATA_MIN_RATE": Limits.data_min_rate, "SMTP_MAX_REFUSED_RCPTS": Limits.max_refused_recipients,
             "SMTP_REFUSED_WINDOW": Limits.refused_window,
             "SMTP_RECIPIENT_CACHE_SECONDS": Limits.recipient_cache_seconds}
    wrong = {name: (declared[name], value) for name, value in names.items()
             if float(declared[name].split("`")[1]) != float(value)}
    assert not wrong, wrong


def test_only_the_embedded_demo_starts_the_local_oauth_provider() -> None:
    """dashboard/devoauth.py hands out tokens to anyone: only ``inbox start`` (devstack) may run it, never
    the processes production runs (web, worker, SMTP, IMAP)."""
    importers = []
    for folder in ("core", "dashboard", "worker", "mailgate"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name not in {"dashboard/devoauth.py", "dashboard/devstack.py"} and "devoauth" in path.read_text(
                    encoding="utf-8"):
                importers.append(name)
    assert not importers, importers
