"""Rules read from a TOML file and validated by a pydantic model: the one loader of the project's
rule files (features/quality.toml, monitoring/alerts.toml). Errors name the file, the field, the
value and the rule it breaks."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_toml_model(model: type[M], path: Path | str | None, *, package: str, name: str, label: str,
                    error: type[Exception]) -> M:
    """``model`` validated from the TOML at ``path`` (default: ``name`` packaged in ``package``).
    Raises ``error`` with "``label`` SOURCE: reason" when the file cannot be read, is not TOML or
    breaks the model."""
    if path is None:
        text, source = resources.files(package).joinpath(name).read_text(encoding="utf-8"), f"{package}/{name}"
    else:
        try:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise error(f"{label} {path}: cannot be read ({exc.strerror})") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{label} {source}: not valid TOML ({exc})") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])} = {err.get('input')!r}: {err['msg']}" for err in exc.errors()
        )
        raise error(f"{label} {source}: {problems}") from exc
