"""The one way a TOML configuration file is read: parsed, validated by a pydantic model, and
refused with a message naming the file, the field, the value and the broken rule.

A leaf package: it imports nothing of ours, and every package may import it (each keeps its own
error class, so callers catch what they always caught).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """Every problem of a validation error: ``field.path = value: rule``, joined by ``; ``."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])} = {err.get('input')!r}: {err['msg']}"
                     for err in exc.errors())


def refuse_repeats(codes: list[str], what: str) -> None:
    """Raise ``ValueError("<what> [codes] appear more than once")`` if a code of ``codes`` repeats
    (a catalogue's validator: pydantic names the field)."""
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated} appear more than once")


def parse_toml(text: str, where: str, error: type[Exception]) -> dict[str, Any]:
    """``text`` parsed, or ``error("<where>: not valid TOML (<why>)")``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML ({exc})") from exc


def load_toml(text: str, model: type[M], where: str, error: type[Exception]) -> M:
    """``text`` parsed and validated by ``model``, or ``error`` naming ``where`` and every problem."""
    raw = parse_toml(text, where, error)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{where}: {describe(exc)}") from exc


def load_toml_file(model: type[M], path: Path | str | None, *, package: str, name: str, label: str,
                   error: type[Exception]) -> M:
    """``model`` validated from the TOML file at ``path``, by default the file ``name`` shipped in
    ``package``; ``error("<label> <file>: <reason>")`` when it cannot be read, is not TOML or breaks
    the model."""
    if path is None:
        text, source = resources.files(package).joinpath(name).read_text(encoding="utf-8"), f"{package}/{name}"
    else:
        try:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise error(f"{label} {path}: cannot be read ({exc.strerror})") from exc
    return load_toml(text, model, f"{label} {source}", error)
