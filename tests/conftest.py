"""Settings for every test: Hypothesis keeps its files outside the checkout (the tests write
nothing into the repository) and saves no example database between runs (runs are reproducible
from the code alone). The one local Spark of a test process."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import configuration, settings

configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tiers-hypothesis")
settings.register_profile("tiers", database=None)
settings.load_profile("tiers")

# Keys the service generates for itself (JWT, query-log MAC and signing keys, demo passwords) go to
# a temporary directory, never into the checkout (tests that check the keys give their own).
os.environ.setdefault("TIERS_KEYS_DIR", tempfile.mkdtemp(prefix="tiers-test-keys-"))


@pytest.fixture
def refused_toml(tmp_path):
    """``refused_toml(load, error, text, match)``: loading a TOML file that holds ``text`` with ``load``
    raises ``error`` with a message matching ``match`` (the rules loaders name the field and value)."""
    path = tmp_path / "refused.toml"

    def refused(load, error: type[Exception], text: str, match: str) -> None:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(error, match=match):
            load(path)

    return refused


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute a notebook of ``notebooks/`` top to bottom; returns the text of its outputs."""

    def run(name: str, timeout: int) -> str:
        # the kernel inherits TMPDIR: the notebook's working directory (tempfile.mkdtemp) is then
        # pytest's, removed with it, not left in /tmp by every run
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        import nbformat
        from nbclient import NotebookClient

        path = Path(__file__).resolve().parents[1] / "notebooks" / name
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                       for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

    return run


# An app freezes the heap itself while it runs and lifts the freeze when it stops (serving.app), and
# tests/serving checks that a process starts with none: the service's tests are left to it.
_APPS_FREEZE_THE_HEAP = {Path(__file__).parent / "serving", Path(__file__).parent / "security"}


@pytest.fixture(scope="module", autouse=True)
def _heap_frozen(request):
    """The objects that exist when a test module starts (libraries, session fixtures, Hypothesis'
    strategies) are frozen out of the cyclic GC until it ends, as a running service freezes its
    start-up objects. A test process holds every library the suite imports (≈ 400,000 objects,
    3.5× `tiers ingest`'s) and each full collection walked them all: ingestion collects after
    every chunk (features.ingest), so a small ingest spent a third of its time there. Garbage the
    module makes is collected as before."""
    if _APPS_FREEZE_THE_HEAP & set(request.path.parents):
        yield
        return
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the session: local[1], no UI, 2 shuffle partitions (fast on 2 cores).
    Its Python workers (``mapInPandas``) run this interpreter, not whatever ``python3`` is first on
    the PATH."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]").appName("tiers-tests")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


_LONG_MARKS = ("slow", "spark", "browser")


def pytest_collection_modifyitems(config, items):
    """Run order only (every collected test still runs): the modules holding a long test
    (``slow``, ``spark``, ``browser``) go first, each module kept whole and in its own order.
    ``pytest -n 2 --dist loadgroup`` hands out the xdist groups (largest first) and then single
    tests in collection order: a long test collected last (e.g. a notebook in tests/training)
    otherwise starts when the other worker has nothing left, and the run waits for it alone."""
    long_files = {item.nodeid.split("::", 1)[0] for item in items
                  if any(item.get_closest_marker(m) for m in _LONG_MARKS)}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in long_files)  # stable
