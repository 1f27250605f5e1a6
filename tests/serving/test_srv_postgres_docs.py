"""docs/postgres.md read by an operator (issue 22): its shell lines run as written, its URL survives
the shell, its cluster commands name one cluster, the demo it serves is the one `tiers demo` wrote;
and the commands say which database they use, refusing an unreachable one in one line."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "postgres.md"
BASH = shutil.which("bash")


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _lines() -> list[str]:
    """Every shell line of the doc, comments cut, continuation lines joined, and a command run as
    another user (``su postgres -c "…"``, as root) taken out of its quotes."""
    text = "\n".join(_blocks()).replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return [shlex.split(line)[3] if line.startswith("su postgres -c ") else line for line in lines]


def _bash(script: str, cwd: Path) -> str:
    return subprocess.run([BASH, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


def _option(line: str, flag: str) -> str | None:
    words = shlex.split(line)
    return words[words.index(flag) + 1] if flag in words else None


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_every_shell_block_parses():
    for block in _blocks():
        done = subprocess.run([BASH, "-n"], input=block, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (block, done.stderr)


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_each_url_reaches_the_environment_whole(tmp_path):
    """An unquoted `…?host=/tmp&port=N` sends the export to a background subshell: the variable is
    never set and the service stays on SQLite. Run as written, each URL line must export the whole
    URL, with the socket directory and the cluster's port."""
    from sqlalchemy.engine import make_url

    started = next(_option(line, "-o") for line in _lines() if "pg_ctl" in line and " start" in line)
    port, socket = re.search(r"-p (\d+) -k (\S+)", started).group(1, 2)
    urls = [line for line in _lines() if re.search(r"\b(TIERS|TEST)_DATABASE_URL=", line)]
    assert urls
    for line in urls:
        name = re.search(r"\b(\w+_DATABASE_URL)=", line).group(1)
        assignment = line.split(" .venv/")[0]  # `NAME=… command`: the assignment alone
        if not assignment.startswith("export "):
            assignment = f"export {assignment}"
        value = _bash(f'{assignment}\nprintf %s "${{{name}}}"', tmp_path)
        url = make_url(value)
        assert url.get_backend_name() == "postgresql", (line, value)
        assert url.query.get("host") == socket and url.query.get("port") == port, (line, value)


def test_the_cluster_started_is_the_one_stopped_and_removed():
    lines = _lines()
    initdb = next(line for line in lines if "initdb" in line)
    data = _option(initdb, "-D")
    start = next(line for line in lines if "pg_ctl" in line and " start" in line)
    for line in lines:  # as the user or as root: one cluster
        if "initdb" in line or "pg_ctl" in line:
            assert _option(line, "-D") == data, line
        if "pg_ctl" in line and " start" in line:
            assert _option(line, "-o") == _option(start, "-o") and _option(line, "-l") == _option(start, "-l"), line
    log = _option(start, "-l")
    removed = next(shlex.split(line)[2:] for line in lines if line.startswith("rm -rf"))
    assert data in removed and log in removed
    # every createdb reaches the started cluster's socket and port
    socket, port = re.search(r"-p (\d+) -k (\S+)", _option(start, "-o")).group(2, 1)
    for line in (line for line in lines if "createdb" in line):
        assert _option(line, "-h") == socket and _option(line, "-p") == port, line


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_the_demo_is_served_with_the_registry_store_and_city_tiers_demo_wrote(tmp_path):
    """`tiers demo` keeps its MLflow registry, feature store and city under var/demo: the serve
    block must name those, or `tiers serve` looks for var/mlflow.db and cannot regrade."""
    text = DOC.read_text(encoding="utf-8")
    demo = next(block for block in _blocks() if "tiers demo" in block)
    exports = "\n".join(line for line in demo.splitlines() if line.startswith("export "))
    shown = _bash(exports + '\nprintf "%s\\n" "$TIERS_MLFLOW_TRACKING_URI" "$TIERS_STORE_DIR" "$TIERS_DATA_DIR"',
                  tmp_path).splitlines()
    workdir = tmp_path.resolve() / "var" / "demo"  # tiers demo's default --workdir, from the root
    assert shown == [f"sqlite:///{workdir / 'mlflow.db'}", str(workdir / "store"), str(workdir / "city")]
    assert "tiers serve" in demo.split("tiers demo", 1)[1]
    assert "var/demo" in text


def _tiers(monkeypatch, tmp_path, url: str, *args: str):
    from serving.cli.main import app
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def test_db_upgrade_says_which_database_it_migrated(monkeypatch, tmp_path):
    """An export lost to the shell leaves SQLite in place without a word: say which database."""
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    result = _tiers(monkeypatch, tmp_path, url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert url in result.output


def test_an_unreachable_database_is_refused_in_one_line_naming_it_without_its_password(monkeypatch, tmp_path):
    """No server on the socket: exit 2 with one line naming the database (not a 500-line
    traceback), the password hidden."""
    url = f"postgresql+psycopg://tiers:s3cret-pw@/tiers?host={tmp_path}&port=55999"
    for args in (("db", "upgrade"), ("serve", "--port", "18999")):
        result = _tiers(monkeypatch, tmp_path, url, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) <= 3, result.output
        assert "s3cret-pw" not in result.output
        assert f"host={tmp_path}" in result.output and "55999" in result.output
        assert "docs/postgres.md" in result.output


def test_serve_says_which_database_it_serves(monkeypatch, tmp_path):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.append(kw))
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    result = _tiers(monkeypatch, tmp_path, url, "serve", "--port", "18998")
    assert result.exit_code == 0, result.output
    assert served and f"database: {url}" in result.output


def test_the_cluster_sorts_text_by_code_point():
    """A cluster made in the shell's locale (zh_CN.UTF-8, en_US.UTF-8) or with ICU sorts "~" before
    digits and letters: the lists' USCC-prefix search (a range up to PREFIX~) then finds nothing."""
    for initdb in (line for line in _lines() if "initdb" in line):  # as the user and as root
        assert re.search(r"--locale[= ](C|C\.UTF-8|POSIX)\b|--no-locale", initdb), initdb
    assert "--locale-provider=icu" not in DOC.read_text(encoding="utf-8")


def test_the_collation_check_names_what_a_database_sorts_by(tmp_path):
    from serving.db.session import collation_problem

    assert collation_problem(f"sqlite:///{tmp_path / 'tiers.db'}") is None  # code point order always


def test_what_the_doc_exports_it_unsets_when_done():
    exported = {re.match(r"export (\w+)=", line).group(1) for line in _lines() if line.startswith("export ")}
    unset = {name for line in _lines() if line.startswith("unset ") for name in line.split()[1:]}
    assert exported <= unset, exported - unset


def test_the_load_commands_read_files_the_demo_wrote():
    """The load section follows the demo: its subjects, its grades of its as-of date, its store."""
    import inspect

    from serving.cli.demo import demo

    as_of = inspect.signature(demo).parameters["as_of"].default
    loads = [line for line in _lines() if " db load " in line or " grade --store" in line]
    assert any(f"db load grades var/demo/grades_{as_of}.parquet" in line for line in loads), loads
    assert any("db load subjects var/demo/city/subjects.csv" in line for line in loads), loads
    assert all("--store var/demo/store" in line for line in loads if " grade --store" in line), loads


def test_serve_warns_when_its_pools_may_exceed_the_servers_connections(monkeypatch, tmp_path):
    import uvicorn

    import serving.db.session as session_module

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    monkeypatch.setattr(session_module, "connection_limit", lambda url: 97)  # PostgreSQL's default 100 − 3
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    fits = _tiers(monkeypatch, tmp_path, url, "serve", "--port", "18997", "--workers", "2")
    assert fits.exit_code == 0 and "max_connections" not in fits.output  # 2 × 41 = 82
    over = _tiers(monkeypatch, tmp_path, url, "serve", "--port", "18997", "--workers", "3")
    assert over.exit_code == 0 and "123" in over.output and "max_connections" in over.output
