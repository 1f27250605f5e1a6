"""The models the service serves: per registered name, the last good load of ``models:/NAME@champion``.

A `ChampionHolder` loads a model on first use and reloads it when the champion alias moves. A
reload that fails (artifact missing, corrupt pickle, registry unreachable, alias gone) keeps the
last good model in service and records why, so regrading and what-if go on and ``/health``
reports ``degraded`` with that reason until the champion loads again.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from serving.errors import ModelUnavailable

CHAMPION = "champion"
# A failed load of a version is retried at most this often: /health asks on every probe, and a
# broken artifact should not be downloaded and unpickled again for each one.
RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class ServedModel:
    """A model in service: the registry version it came from and when it was loaded."""

    name: str
    version: int
    alias: str
    loaded_at: dt.datetime
    model: Any

    @property
    def model_version(self) -> str:
        """``NAME/VERSION``, as grades store it."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelHealth:
    """What ``/health`` says about one model name."""

    name: str
    alias: str
    served_version: int | None
    champion_version: int | None
    loaded_at: dt.datetime | None
    degraded: bool
    reason: str | None


@dataclass
class _Failure:
    version: int | None  # the champion version that failed to load; None: the lookup itself failed
    reason: str
    at: float
    lookup: bool = False


class ChampionHolder:
    """Serves, per model name, the last version of ``alias`` that loaded.

    ``registry`` returns a registry (``alias_version(name, alias)``, ``load_model(name, version)``,
    as `training.registry.ModelRegistry`) or None when there is none yet; it is called until it
    succeeds. ``names`` are reported by `health` before anything asked for them. Thread-safe:
    one load at a time.
    """

    def __init__(self, registry: Callable[[], Any], *, names: Iterable[str] = (), alias: str = CHAMPION,
                 retry_after: float = RETRY_AFTER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry_factory = registry
        self._registry: Any = None
        self.alias = alias
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._names: dict[str, None] = dict.fromkeys(names)
        self._served: dict[str, ServedModel] = {}
        self._failures: dict[str, _Failure] = {}
        self._champion: dict[str, int | None] = {}
        self._looked_up_at: dict[str, float] = {}  # when `refresh` last ran for a name

    def get(self, name: str) -> ServedModel:
        """The model served for ``name`` after a refresh: the champion if it loads, else the last
        good one. Raises `ModelUnavailable` when no version of ``name`` has ever loaded."""
        self.refresh(name)
        served = self._served.get(name)
        if served is None:
            failure = self._failures.get(name)
            raise ModelUnavailable(f"model {name}@{self.alias} cannot be loaded and no earlier version is in "
                                   f"service: {failure.reason if failure else 'unknown reason'}")
        return served

    def health(self, max_age_s: float = 0.0) -> list[ModelHealth]:
        """Report every known name (served vs. champion version, and why they differ), refreshing
        those whose champion was last looked up ``max_age_s`` or more seconds ago: a probe every
        second need not ask the registry every second."""
        out = []
        for name in list(self._names):
            looked_up = self._looked_up_at.get(name)
            if looked_up is not None and self._clock() - looked_up < max_age_s:
                with self._lock:
                    out.append(self._report(name))
            else:
                out.append(self.refresh(name))
        return out

    def refresh(self, name: str) -> ModelHealth:
        """Look up the champion of ``name``; load it when it is not the one served. A failure
        keeps the served model and is remembered (a failed version is retried after
        ``retry_after`` seconds, and so is a registry that could not be reached)."""
        with self._lock:
            self._names.setdefault(name, None)
            self._looked_up_at[name] = self._clock()
            served = self._served.get(name)
            failure = self._failures.get(name)
            if failure is not None and failure.lookup and self._clock() - failure.at < self.retry_after:
                return self._report(name)  # an unreachable registry may take long to time out
            try:
                registry = self._open_registry()
                champion = registry.alias_version(name, self.alias)
            except Exception as exc:  # unreachable registry: whatever MLflow or the network raises
                self._fail(name, None, f"registry unreachable ({type(exc).__name__}: {_short(exc)})", lookup=True)
                return self._report(name)
            self._champion[name] = champion
            if champion is None:
                self._fail(name, None, f"no version of {name} carries the alias {self.alias!r}")
            elif served is not None and served.version == champion:
                self._failures.pop(name, None)
            elif not self._recently_failed(name, champion):
                self._load(registry, name, champion)
            return self._report(name)

    # -- internals ------------------------------------------------------------------------------

    def _open_registry(self) -> Any:
        if self._registry is None:
            registry = self._registry_factory()
            if registry is None:
                raise LookupError("no model registry yet (run `tiers train`)")
            self._registry = registry
        return self._registry

    def _recently_failed(self, name: str, version: int) -> bool:
        failure = self._failures.get(name)
        return (failure is not None and failure.version == version
                and self._clock() - failure.at < self.retry_after)

    def _load(self, registry: Any, name: str, version: int) -> None:
        try:
            model = registry.load_model(name, version)
            # a booster or pickle that loads half-way can come back as the wrong object
            if not callable(getattr(model, "predict_proba", None)):
                raise TypeError(f"loaded a {type(model).__name__}, which has no predict_proba")
        except Exception as exc:  # missing artifact, truncated pickle, bad booster: keep the last good one
            self._fail(name, version, f"version {version} cannot be loaded ({type(exc).__name__}: {_short(exc)})")
            return
        self._served[name] = ServedModel(name=name, version=version, alias=self.alias,
                                         loaded_at=dt.datetime.now(dt.UTC), model=model)
        self._failures.pop(name, None)

    def _fail(self, name: str, version: int | None, reason: str, *, lookup: bool = False) -> None:
        self._failures[name] = _Failure(version, reason, self._clock(), lookup)

    def _report(self, name: str) -> ModelHealth:
        served, failure = self._served.get(name), self._failures.get(name)
        champion = self._champion.get(name)
        degraded = served is None or failure is not None or served.version != champion
        reason = None
        if degraded:
            serving = f"serving version {served.version}" if served else "nothing served"
            reason = f"{name}@{self.alias}: {failure.reason if failure else 'not loaded yet'}; {serving}"
        return ModelHealth(name=name, alias=self.alias, served_version=served.version if served else None,
                           champion_version=champion, loaded_at=served.loaded_at if served else None,
                           degraded=degraded, reason=reason)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
