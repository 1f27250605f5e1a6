"""`tiers demo`: the whole loop on a fresh clone, from a simulated city to a served site.

Each stage runs as its own `tiers … --json` process, just as an operator or a cron job would run
it. Its JSON summary is shown, and a failing stage stops the demo with that stage's own message.
Only the last steps (loading the results into the service database and serving) run in-process.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from serving.cli.app import app

console = Console(stderr=True)

# The simulated city: big enough that its largest section (F, about a third of the subjects) has
# the adverse outcomes a sector model of its own needs (TrainingConfig.min_sector_positives, 300:
# about 390 at 6,000 subjects, 197 at 3,000) and an out-of-time sample whose grades the promotion
# gate can find monotone. At 3,000 the section fell back to the general model recalibrated, so its
# "challenger" was the champion again, and the gate refused it on noise (bad rate B 0.139 > C 0.138,
# 8 bads in 58). tests/serving/test_srv_demo_challenger.py trains the demo's city and runs the gate.
DEMO_SUBJECTS = 6000
DEMO_SEED = 7


@dataclass
class StageResult:
    """What one stage did, for the closing summary."""

    name: str
    output: str
    summary: dict[str, Any] = field(default_factory=dict)


def run_stage(name: str, args: list[str], output: str) -> StageResult:
    """Run `tiers ARGS --json`; stop the demo with the stage's own error if it fails."""
    cmd = [sys.executable, "-m", "serving.cli.main", *args, "--json"]
    with console.status(f"[bold]{name}[/bold]: tiers {' '.join(args)}"):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  (this interpreter's own CLI, arguments built here, no shell)
    if proc.returncode != 0:
        console.print(f"[red]stage {name!r} failed (exit {proc.returncode})[/red]\n{proc.stderr[-4000:]}")
        raise typer.Exit(proc.returncode or 1)
    try:
        summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        summary = {"stdout": proc.stdout[-500:]}
    console.print(f"[green]✓[/green] {name}: {output}")
    return StageResult(name, output, summary if isinstance(summary, dict) else {"result": summary})


def _brief(summary: dict[str, Any]) -> str:
    """The few numbers of a stage summary worth a glance."""
    keys = ("subjects", "records", "read", "accepted", "quarantined", "rows", "models", "graded",
            "grade_shares", "auc", "drawn")
    parts = [f"{k}={summary[k]}" for k in keys if k in summary and not isinstance(summary[k], (dict, list))]
    return ", ".join(parts)[:120]


@app.command()
def demo(
    subjects: Annotated[int, typer.Option(min=200, max=200_000, help="Subjects in the simulated city.")] = DEMO_SUBJECTS,
    seed: Annotated[int, typer.Option(help="Seed of the simulated city and the models.")] = DEMO_SEED,
    workdir: Annotated[Path, typer.Option(help="Where every output of the demo goes.")] = Path("var/demo"),
    as_of: Annotated[str, typer.Option(help="Grading date: a quarter end, so the true risk of the simulated city is known for it (the city ends 2026-10-31).")] = "2025-09-30",
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the site at the end.")] = True,
) -> None:
    """Simulate → ingest → profile → train → grade → load → plan → serve, saying where everything went."""
    workdir.mkdir(parents=True, exist_ok=True)
    city, store = workdir / "city", workdir / "store"
    profiles = workdir / f"profiles_{as_of}.parquet"
    grades = workdir / f"grades_{as_of}.parquet"
    # the quarter end before: the reference date of the monitoring run
    import pandas as pd

    reference = (pd.Timestamp(as_of) - pd.offsets.QuarterEnd(1)).date()
    reference_grades = workdir / f"grades_{reference}.parquet"
    tracking = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    artifacts = workdir / "mlartifacts"
    stages = [
        run_stage("simulate", simulate_args(subjects, seed, city), f"{city}/ (subjects, records, inspectors, truth/)"),
    ]
    # the sector account's section: the largest one, trained twice so its page has a champion and a
    # challenger to compare and promote (the gate, end to end)
    section = demo_section(city / "subjects.csv")
    stages += [
        run_stage("ingest", ingest_args(city, store),
                  f"{store}/ (valid rows) and its quarantine/ (rejected rows with reasons)"),
        run_stage("profile", ["profile", "--store", str(store), "--as-of", as_of, "--out", str(profiles)],
                  str(profiles)),
        run_stage("train", train_args(store, seed, section, tracking, artifacts),
                  f"MLflow registry {tracking} (general; sector {section}: champion and challenger)"),
        run_stage("grade", ["grade", "--store", str(store), "--as-of", as_of, "--out", str(grades),
                            "--tracking-uri", tracking, "--artifacts", str(artifacts),
                            "--what-if", "--what-if-grades", "C,D"], f"{grades} (what-if for grades C and D)"),
        run_stage("grade (reference)", ["grade", "--store", str(store), "--as-of", str(reference), "--out",
                                        str(reference_grades), "--tracking-uri", tracking, "--artifacts",
                                        str(artifacts)], str(reference_grades)),
    ]

    from serving.cli.serve import public_url_for
    from serving.db.session import shown_url
    from serving.demo import demo_accounts_path
    from serving.demo_load import load_demo
    from serving.settings import get_settings

    # The scheduler reads the inspector pool and items of the demo city; the registry is the demo's;
    # store_dir turns on regrading after an upheld objection or an approved repair (and model health).
    # public_url: the reports' QR codes point to the port the demo serves on
    base = get_settings()
    settings = base.model_copy(update={"data_dir": city.resolve(), "mlflow_tracking_uri": tracking,
                                       "store_dir": store.resolve(),
                                       "public_url": public_url_for(base, host, port)})
    loaded = load_demo(settings, city=city, store=store, grades=grades, as_of=as_of, seed=seed,
                       sector_section=section)
    stages.append(StageResult("load", shown_url(settings.database_url), loaded.summary))
    stages.append(_monitor(settings, store=store, reference=reference, current=dt.date.fromisoformat(as_of),
                           grades_files=[reference_grades, grades]))

    table = Table(title="tiers demo — what ran and where it went")
    for col in ("stage", "output", "summary"):
        table.add_column(col)
    for st in stages:
        table.add_row(st.name, st.output, _brief(st.summary))
    console.print(table)

    accounts = Table(title=f"Open http://{host}:{port}/ and log in with one of these demo accounts")
    for col in ("user", "password", "role", "scope", "start page"):
        accounts.add_column(col)
    kept = demo_accounts_path(settings)
    for user, password, role, scope, page in loaded.accounts:
        accounts.add_row(user, password or f"(in {kept})", role, str(scope or ""), f"http://{host}:{port}{page}")
    console.print(accounts)
    # plain lines too: a table is cut to 80 columns when the output is not a terminal
    for user, password, role, _scope, page in loaded.accounts:
        console.print(f"  {role:<10} log in as {user} / {password or '(password in ' + str(kept) + ')'} → "
                      f"http://{host}:{port}{page}", soft_wrap=True, highlight=False)
    console.print(f"Demo passwords are random for this install and kept in {kept} (mode 0600); they "
                  "are printed only when the accounts are made.", highlight=False)
    console.print(f"API docs: http://{host}:{port}/docs · plan {loaded.plan_note}")
    if not serve:
        return
    import uvicorn

    from serving.app import create_app

    console.print(f"[bold]Serving on http://{host}:{port}[/bold] — Ctrl+C stops it.")
    from serving.cli.serve import proxy_options

    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", **proxy_options(settings))


def simulate_args(subjects: int, seed: int, city: Path) -> list[str]:
    """The demo's `tiers simulate` arguments (the tests train the same city)."""
    return ["simulate", "--subjects", str(subjects), "--seed", str(seed), "--out", str(city), "--format", "csv"]


def ingest_args(city: Path, store: Path) -> list[str]:
    return ["ingest", "--subjects", str(city / "subjects.csv"), "--records", str(city / "records.csv"),
            "--store", str(store)]


def train_args(store: Path, seed: int, section: str, tracking: str, artifacts: Path) -> list[str]:
    """`tiers train` as the demo runs it: the general model, and ``section``'s twice (champion and
    challenger)."""
    return ["train", "--store", str(store), "--seed", str(seed), "--challenger", section,
            "--tracking-uri", tracking, "--artifacts", str(artifacts)]


def demo_section(subjects_csv: Path) -> str:
    """The GB/T 4754 section with the most subjects in the simulated city (ties: the first letter)."""
    import pandas as pd

    counts = pd.read_csv(subjects_csv, usecols=["industry"], dtype=str)["industry"].value_counts()
    sections = sorted((-n, s) for s, n in counts.items() if isinstance(s, str) and len(s) == 1 and "A" <= s <= "T")
    return sections[0][1] if sections else "C"


def _monitor(settings: Any, *, store: Path, reference: dt.date, current: dt.date, grades_files: list[Path]) -> StageResult:
    """One monitoring run between the two graded dates, stored for the analyst page."""
    from sqlalchemy.orm import sessionmaker

    from serving.db.session import engine_for
    from serving.services.monitoring import get_run, run_and_store

    with (console.status("[bold]monitor[/bold]: drift, performance and data health"),
          sessionmaker(engine_for(settings.database_url))() as session):
        run_id = run_and_store(session, settings, reference=reference, current=current,
                               grades_files=grades_files, store=store, model_version="tiers-general@champion")
        summary = dict(get_run(session, run_id).payload.get("summary", {}))
    console.print(f"[green]✓[/green] monitor: run #{run_id} {reference} → {current}")
    brief = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    return StageResult("monitor", f"analyst page /analyst/monitoring/{run_id}", brief)
