"""The project stands alone: no file refers to a place outside the repository (a clone has none)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "var", "node_modules", ".ruff_cache", ".pytest_cache", "__pycache__", "build"}
TEXT = {".py", ".md", ".toml", ".ipynb", ".sql", ".html", ".css", ".js", ".txt", ".cfg", ".ini", ".sh", ".yml",
        ".yaml", ".json", ".csv", ".mako", ""}
# spelled in pieces so that this file does not match itself
OUTSIDE = ("../" + "shared", "/" + "work/", "DOMAIN" + ".md", "ARCHITECTURE" + ".md")


def test_nothing_refers_outside_the_repository():
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        # .venv-py3.13 (make test-newest) too: 2.5 GB of installed libraries, not the project's files
        if any(part in SKIP or part.startswith(".venv") or part.endswith(".egg-info") for part in rel.parts) \
                or not path.is_file():
            continue
        if path.suffix not in TEXT or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{rel}: {needle}" for needle in OUTSIDE if needle in text]
    assert not found, found
