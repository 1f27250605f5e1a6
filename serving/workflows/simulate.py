"""Generate a synthetic city (docs/data-contract.md names the files)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError


def simulation_config(*, subjects: int, seed: int, end: date, years: int, scenario: str, scenario_date: date,
                      clean: bool, file_format: str, chunk_size: int, city: Path | None = None) -> Any:
    """The simulation's settings (`simulation.SimulationConfig`), checked; ``city``: a city TOML
    (default Nanjing). A bad city file is a `WorkflowError` naming ``city``; a bad setting one naming
    ``config``, whose message begins with the setting's field name (``n_subjects``, ``end``, …)."""
    from simulation import CityConfig, SimulationConfig

    city_config = None
    if city is not None:
        if not city.is_file():
            raise WorkflowError("city", f"{str(city)!r} is not a file")
        try:
            city_config = CityConfig.from_toml(city)
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkflowError("city", f"{str(city)!r} is not a valid city: {exc}") from exc
    try:
        kwargs = {"city": city_config} if city_config is not None else {}
        return SimulationConfig(n_subjects=subjects, seed=seed, end=end, years=years, scenario=scenario,
                                scenario_date=scenario_date, dirt=not clean, file_format=file_format,
                                chunk_size=chunk_size, **kwargs)
    except ValueError as exc:
        raise WorkflowError("config", str(exc)) from exc


def simulate_city(config: Any, out: Path, *, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the simulated city of ``config`` into ``out`` (same settings: byte-identical files), in
    ``workers`` processes; returns the manifest."""
    from simulation import generate

    if progress is None:
        return generate(config, out, workers=workers)
    return generate(config, out, progress=progress, workers=workers)
