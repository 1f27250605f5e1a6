"""``tiers db upgrade|prune-grades|load|refresh-checks``, ``tiers querylog check``, ``tiers users create|demo|deactivate|activate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app

db_app = typer.Typer(help="The operational database (migrations).", no_args_is_help=True)
querylog_app = typer.Typer(help="The tamper-evident query log (查询使用登记).", no_args_is_help=True)
users_app = typer.Typer(help="Service users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(querylog_app, name="querylog")
app.add_typer(users_app, name="users")


def settings_or_exit():
    """The settings, or exit 2 naming each bad TIERS_* field and the rule (values are not echoed:
    they may be secrets)."""
    from pydantic import ValidationError

    from serving.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            typer.echo(f"error: invalid settings: {field}: {err['msg']}", err=True)
        raise typer.Exit(2) from exc
    except (OSError, ValueError) as exc:  # the keys directory (serving.keys): unreadable, unsafe, empty
        typer.echo(f"error: keys: {exc}", err=True)
        raise typer.Exit(2) from exc


def database_or_exit(settings) -> None:
    """Say on stderr which database this command uses (an export lost to the shell would leave
    SQLite in place without a word), or exit 2 in one line when it cannot be reached."""
    from serving.db.session import collation_problem, shown_url, unreachable

    shown = shown_url(settings.database_url)
    reason = unreachable(settings.database_url)
    if reason is not None:
        typer.echo(f"error: database {shown}: cannot connect: {reason} (TIERS_DATABASE_URL; "
                   "PostgreSQL: docs/postgres.md)", err=True)
        raise typer.Exit(2)
    typer.echo(f"database: {shown}", err=True)
    sorted_by = collation_problem(settings.database_url)
    if sorted_by is not None:
        typer.echo(f"warning: database {shown} sorts text by {sorted_by}, not by code point: searches by USCC "
                   "prefix find nothing and lists by name follow that language's order; create it with "
                   "--locale=C.UTF-8 (docs/postgres.md)", err=True)


_settings = settings_or_exit


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="target revision"),
               as_json: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Apply the Alembic migrations to TIERS_DATABASE_URL."""
    from serving.cli.options import fail
    from serving.db.migrate import SchemaBeforeBaseline, current_revision, upgrade

    settings = _settings()
    database_or_exit(settings)
    try:
        upgrade(settings.database_url, revision)
    except SchemaBeforeBaseline as exc:
        fail(str(exc))
    now = current_revision(settings.database_url)
    typer.echo(json.dumps({"revision": now}) if as_json else f"database at revision {now}")


@db_app.command("prune-grades")
def db_prune_grades(keep: int | None = typer.Option(None, "--keep", min=1,
                                                    help="as-of dates to keep (default TIERS_GRADE_RETENTION_AS_OF)"),
                    as_json: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Delete the grades of all but the latest as-of dates (the retention of grade history)."""
    from serving.db.session import iter_session
    from serving.services.grades import prune_grades

    settings = _settings()
    keep = keep or settings.grade_retention_as_of
    if keep is None:
        typer.echo("error: --keep N or TIERS_GRADE_RETENTION_AS_OF (rule: how many as-of dates to keep); "
                   "nothing deleted", err=True)
        raise typer.Exit(2)
    session = next(iter_session(settings.database_url))
    try:
        dropped, deleted = prune_grades(session, keep)
    finally:
        session.close()
    summary = {"kept_as_of": keep, "dropped_as_of": [d.isoformat() for d in dropped], "grades_deleted": deleted}
    typer.echo(json.dumps(summary) if as_json else f"deleted {deleted} grades of {len(dropped)} as-of dates")


@db_app.command("load")
def db_load(kind: str = typer.Argument(..., help="subjects | grades"),
            path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Parquet or CSV file"),
            load_id: str | None = typer.Option(None, help="resume key (default: file name, size, mtime)"),
            quarantine: Path | None = typer.Option(None, help="CSV the rejected rows are appended to, with their input row number (from 1) and reason (field: rule)"),
            batch_rows: int = typer.Option(50_000, min=1, max=1_000_000, help="rows per batch (one transaction each)"),
            as_json: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Bulk-load subjects or grades into the service database (resumable: run it again after an
    interruption; rows already committed are not written twice)."""
    from serving.db.session import engine_for
    from serving.services.bulk import frames_of, load_grades, load_id_of, load_subjects

    if kind not in ("subjects", "grades"):
        typer.echo(f"error: kind {kind!r}: must be subjects or grades", err=True)
        raise typer.Exit(2)
    settings = _settings()
    report = (load_subjects if kind == "subjects" else load_grades)(
        engine_for(settings.database_url), frames_of(path, batch_rows), load_id=load_id or load_id_of(kind, path),
        quarantine=_quarantine_writer(quarantine),
        progress=None if as_json else lambda r: typer.echo(f"  {r.resumed_from + r.read} rows read, {r.stored} "
                                                           f"stored, {r.rejected} rejected", err=True))
    typer.echo(json.dumps(report.as_json(), ensure_ascii=False) if as_json else
               f"loaded {report.stored} {kind} ({report.rejected} rejected, resumed after {report.resumed_from}) "
               f"at {report.rows_per_s:,.0f} rows/s")
    if report.rejected and quarantine is None:  # rejected rows kept nowhere: say so by the exit code
        typer.echo(f"error: {report.rejected} rows rejected ({dict(report.reasons)}); pass --quarantine FILE "
                   "to keep them", err=True)
        raise typer.Exit(1)


@db_app.command("refresh-checks")
def db_refresh_checks(as_json: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Recompute every subject's joint-check basis (records in force today) so that checks are one
    indexed read: run it after midnight (Asia/Shanghai) and after loading records."""
    import time

    from serving.db.session import iter_session
    from serving.deps import get_today
    from serving.services.credit_checks import refresh_all

    settings = _settings()
    session = next(iter_session(settings.database_url))
    start = time.perf_counter()
    try:
        today = get_today()
        done = refresh_all(session, today)
    finally:
        session.close()
    summary = {"as_of": today.isoformat(), "subjects": done, "seconds": round(time.perf_counter() - start, 2)}
    typer.echo(json.dumps(summary) if as_json else
               f"joint-check basis of {done} subjects as of {today} in {summary['seconds']} s")


def _quarantine_writer(path: Path | None):
    if path is None:
        return None

    def write(rows) -> None:
        rows.to_csv(path, mode="a", header=not path.exists(), index=False, encoding="utf-8")

    return write


def _log_session(settings):
    """A session on the configured database, with its log's keys registered for this process."""
    from serving.db.session import iter_session
    from serving.services.querylog import LogKeys, use_keys

    use_keys(settings.database_url, LogKeys.of(settings))
    return next(iter_session(settings.database_url))


@querylog_app.command("check")
def querylog_check(
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
    checkpoints: Path | None = typer.Option(None, help="a copy of the checkpoint file (a second party's) "
                                                         "instead of the service's own"),
    public_key: Path | None = typer.Option(None, help="the PEM public key to verify those checkpoints with "
                                                       "(`tiers querylog public-key`)"),
    incremental: bool = typer.Option(False, "--incremental", help="only the entries from the latest checkpoint on "
                                     "(the earlier ones are vouched for by its signature; run the full check too, "
                                     "less often)"),
) -> None:
    """Verify the query log: every entry's MAC, the chain, the head and the signed checkpoints;
    exit 1 and name every break (deleted tail, truncated, missing head, rewritten row, replaced)."""
    from serving.services.checkpoints import load_public_key
    from serving.services.querylog_check import check_chain

    settings = _settings()
    key = load_public_key(public_key.read_bytes()) if public_key else None
    session = _log_session(settings)
    try:
        result = check_chain(session, checkpoint_file=checkpoints, public_key=key, incremental=incremental)
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    elif result.ok:
        anchored = (f"; latest checkpoint: entry {result.checkpoint.seq} at {result.checkpoint.at}"
                    if result.checkpoint else "; no checkpoint yet")
        walked = f" from entry {result.checked_from}" if result.checked_from > 1 else ""
        typer.echo(f"query log intact: {result.entries} entries{walked} ({result.legacy_entries} from before the "
                   f"keyed chain){anchored}")
    else:
        for found in result.breaks:
            where = f" at entry {found.seq}" if found.seq is not None else ""
            typer.echo(f"query log BROKEN ({found.kind}){where}: {found.detail}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@querylog_app.command("checkpoint")
def querylog_checkpoint(as_json: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Sign a checkpoint of the log's head now (the service also does so by itself)."""
    from dataclasses import asdict

    from serving.services.querylog import anchor_now

    settings = _settings()
    session = _log_session(settings)
    try:
        checkpoint = anchor_now(session)
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(asdict(checkpoint) if checkpoint else None))
    else:
        typer.echo(f"checkpoint of entry {checkpoint.seq} written to {settings.checkpoint_path}" if checkpoint
                   else "the log has no head row: nothing to anchor")


@querylog_app.command("public-key")
def querylog_public_key() -> None:
    """Print the PEM public key that verifies the checkpoints (for a second party to keep)."""
    from serving.keys import public_key_pem

    typer.echo(public_key_pem(_settings().secret("querylog_signing_key")).decode("ascii"), nl=False)


@users_app.command("create")
def users_create(
    username: str = typer.Option(..., help="login name"),
    role: str = typer.Option(..., help="regulator | sector | enterprise | analyst | admin"),
    department: str | None = typer.Option(None, help="regulator: department code"),
    section: str | None = typer.Option(None, help="sector: GB/T 4754 section A–T"),
    uscc: str | None = typer.Option(None, help="enterprise: its USCC"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create a user (password hashed with argon2)."""
    from pydantic import ValidationError

    from serving.db.session import iter_session
    from serving.errors import ServiceError
    from serving.schemas import UserCreate
    from serving.services.users import create_user

    settings = _settings()
    try:
        body = UserCreate(username=username, password=password, role=role, department=department,
                          section=section, uscc=uscc)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        typer.echo(f"error: {field}={err.get('input')!r}: {err['msg']}", err=True)
        raise typer.Exit(2) from exc
    session = next(iter_session(settings.database_url))
    try:
        user = create_user(session, body, data_dir=settings.data_dir)
    except ServiceError as exc:
        typer.echo(f"error: {exc.field or 'input'}: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    finally:
        session.close()
    typer.echo(f"created {user.role} {user.username}")


@users_app.command("demo")
def users_demo() -> None:
    """Seed the demo accounts of the four roles and admin (development only); prints passwords."""
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session
    from serving.demo import seed_demo_users
    from serving.errors import ServiceError

    settings = _settings()
    upgrade(settings.database_url)
    session = next(iter_session(settings.database_url))
    try:
        seed_demo_users(session, settings)
    except ServiceError as exc:
        typer.echo(f"error: environment: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    finally:
        session.close()


def _set_active(username: str, active: bool) -> None:
    from serving.db.session import iter_session
    from serving.errors import ServiceError
    from serving.services.users import set_active

    settings = _settings()
    session = next(iter_session(settings.database_url))
    try:
        set_active(session, username, active)
    except ServiceError as exc:
        typer.echo(f"error: {exc.field or 'input'}: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    finally:
        session.close()
    ttl = settings.credential_cache_ttl_s
    state = "active" if active else f"deactivated: their sessions and API keys stop working within {ttl:g} s"
    typer.echo(f"{username} {state}")


@users_app.command("deactivate")
def users_deactivate(username: str = typer.Argument(..., help="login name")) -> None:
    """Deactivate a user (e.g. staff who left): no login, and their tokens and keys stop working."""
    _set_active(username, False)


@users_app.command("activate")
def users_activate(username: str = typer.Argument(..., help="login name")) -> None:
    """Reactivate a deactivated user."""
    _set_active(username, True)
