"""ruff's security rules (flake8-bandit, ``S``) are part of the lint, clean, and every ignore says why."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from sec_fixtures import REPO


def test_ruff_security_rules_are_selected_and_clean():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"]
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--select", "S", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_every_security_rule_ignore_is_justified():
    """A ``# noqa: S…`` carries its reason on the same line; per-file ignores of S rules are commented."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True).stdout.split()
    bare = []
    for name in files:
        for n, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1):
            match = re.search(r"#\s*noqa:\s*(S\d+[^#]*)(#.*)?$", line)
            if match and not re.search(r"[A-Za-z]{3,}", (match.group(1).split(None, 1)[1:] or [""])[0]
                                       + (match.group(2) or "")):
                bare.append(f"{name}:{n}: {line.strip()}")
    assert bare == []
    text = (REPO / "pyproject.toml").read_text()
    for line in text.splitlines():
        if re.search(r'"S\d+"', line) and "ignore" in text:
            assert "#" in line, line
