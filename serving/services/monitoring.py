"""Monitoring runs in the service: compute a run from files or a record store (:func:`run_monitoring`,
which `tiers monitor` and `tiers demo` call), store a ``monitoring.run.MonitoringResult`` with its
alerts and Evidently report, read them back, and turn the stored JSON into light server-side SVG
charts.

A run is one ``monitoring_results`` row (``kind="monitoring"``, ``as_of`` = the current as-of date,
``payload`` = the result JSON plus ``summary`` and ``report_html``); each alert is one ``alerts``
row whose ``payload`` carries ``monitoring_id``, ``subject_of_alert`` and the evidence.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import Alert, MonitoringResult
from serving.i18n import ALERT_TEXTS, page_text

if TYPE_CHECKING:
    import pandas as pd

    import monitoring.run
    from serving.settings import Settings

KIND = "monitoring"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

_SUBJECT_WORDS_ZH = {"sector": "行业", "district": "区县", "department": "部门", "feature": "特征", "grade": "等级",
                     "severity coding of department": "部门情节编码"}

def label(key: str, lang: str = "zh") -> str:
    return page_text("monitoring", key, lang)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_NAMED_SUBJECT = re.compile(r"^(.*\b(feature|department|sector)) (\S+)$")


def _named_subject(subject: str, lang: str) -> str:
    """``feature n_penalty_36m`` → ``feature 近36个月行政处罚次数`` (the noun is put in words after)."""
    from serving.labels import department_name, industry_name

    match = _NAMED_SUBJECT.match(subject)
    if not match:
        return subject
    head, noun, code = match.groups()
    name = {"feature": feature_label, "department": department_name, "sector": industry_name}[noun](code, lang)
    return f"{head} {name}"


def alert_message(rule: str, subject_of_alert: str, evidence: Mapping[str, Any], lang: str = "zh") -> str:
    """One sentence naming the subject, the observed value and the threshold crossed; a feature,
    department or sector by its name in ``lang``, not its code."""
    subject = _named_subject(subject_of_alert, lang)
    if lang == "zh":
        for en, zh in sorted(_SUBJECT_WORDS_ZH.items(), key=lambda kv: -len(kv[0])):
            if subject.startswith(en + " "):
                subject = zh + " " + subject[len(en) + 1:]
                break
    template = ALERT_TEXTS.get(rule, {}).get(lang, "{s}: {o} (threshold {t})" if lang == "en" else "{s}：{o}（阈值 {t}）")
    return template.format(s=subject, o=_fmt(evidence.get("observed")), t=_fmt(evidence.get("threshold")))


def _summary(payload: Mapping[str, Any]) -> dict[str, Any]:
    alerts = payload.get("alerts") or []
    perf = payload.get("performance")
    return {
        "reference_as_of": payload["reference_as_of"],
        "current_as_of": payload["current_as_of"],
        "n_reference": payload["n_reference"],
        "n_current": payload["n_current"],
        "score_psi": payload["score_psi"]["psi"],
        "n_alerts": len(alerts),
        "max_severity": max((a["severity"] for a in alerts), key=SEVERITY_RANK.__getitem__, default=None),
        "performance_provisional": None if perf is None else bool(perf.get("provisional")),
    }


def store_result(session: Session, result: monitoring.run.MonitoringResult, *, model_version: str | None = None,
                 report_html: Path | None = None, artifact_dir: Path | None = None) -> int:
    """Store one run and its alerts in one transaction; return the run id.

    Every alert must carry ``evidence["observed"]`` and ``evidence["threshold"]`` (else ValueError,
    nothing stored). ``report_html`` (Evidently's report) is copied to
    ``artifact_dir/monitoring/<id>.html`` and served by the analyst API.
    """
    payload = json.loads(result.to_json())  # NaN → null, dates ISO: what the API returns
    for a in payload["alerts"]:
        if not {"observed", "threshold"} <= set(a.get("evidence") or {}):
            raise ValueError(f"alert {a.get('rule')!r} on {a.get('subject_of_alert')!r} has no evidence "
                             "(rule: evidence needs observed and threshold)")
    if report_html is not None and not Path(report_html).is_file():
        raise ValueError(f"report_html {report_html}: no such file (rule: an HTML file written by Evidently)")
    if report_html is not None and artifact_dir is None:
        raise ValueError("artifact_dir: required with report_html (rule: the report is kept under the data dir)")
    run = MonitoringResult(kind=KIND, as_of=result.current_as_of, model_version=model_version,
                           payload={"summary": _summary(payload), "result": payload, "report_html": None})
    session.add(run)
    session.flush()  # the id names the artifact and links the alerts
    if report_html is not None:
        target = Path(artifact_dir) / "monitoring" / f"{run.id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report_html, target)
        run.payload = {**run.payload, "report_html": str(target.resolve())}
    for a in payload["alerts"]:
        session.add(Alert(severity=a["severity"], code=a["rule"], model_version=model_version,
                          message=alert_message(a["rule"], a["subject_of_alert"], a["evidence"], "zh"),
                          payload={"monitoring_id": run.id, "subject_of_alert": a["subject_of_alert"],
                                   "evidence": a["evidence"],
                                   "message_en": alert_message(a["rule"], a["subject_of_alert"], a["evidence"], "en")}))
    session.commit()
    return run.id


def list_runs(session: Session, *, limit: int = 100) -> list[MonitoringResult]:
    """Stored runs, newest first."""
    stmt = select(MonitoringResult).where(MonitoringResult.kind == KIND).order_by(MonitoringResult.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def get_run(session: Session, run_id: int) -> MonitoringResult | None:
    run = session.get(MonitoringResult, run_id)
    return run if run is not None and run.kind == KIND else None


def run_alerts(session: Session, run_id: int) -> list[Alert]:
    """The alerts stored with one run, most severe first."""
    # the link lives in the JSON payload; alerts are few, so filter here (portable SQLite/PostgreSQL)
    rows = [a for a in session.scalars(select(Alert).order_by(Alert.id))
            if (a.payload or {}).get("monitoring_id") == run_id]
    return sorted(rows, key=lambda a: -SEVERITY_RANK.get(a.severity, 0))


def report_path(run: MonitoringResult) -> Path | None:
    """The stored Evidently HTML of a run, if it was kept and still exists."""
    path = (run.payload or {}).get("report_html")
    return Path(path) if path and Path(path).is_file() else None


def log_to_mlflow(tracking_uri: str, result: monitoring.run.MonitoringResult, *, model: str,
                  report_html: Path | None = None, monitoring_id: int | None = None) -> str:
    """Log a run to MLflow (experiment ``monitoring``): headline metrics, the result JSON and the
    Evidently report; tagged with the model ``NAME@ALIAS``. Returns the MLflow run id."""
    import mlflow

    payload = json.loads(result.to_json())
    summary = _summary(payload)
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("monitoring")
    if experiment is None:
        from serving.services.model_registry import artifacts_dir_for

        # a SQLite store keeps its artifacts next to it, as the registry's (MLflow's default is
        # ./mlruns of whatever directory the process runs in)
        artifacts = artifacts_dir_for(tracking_uri)
        experiment_id = client.create_experiment(
            "monitoring", artifact_location=None if artifacts is None else artifacts.resolve().as_uri())
    else:
        experiment_id = experiment.experiment_id
    run = client.create_run(experiment_id, run_name=f"{model} {summary['reference_as_of']}→{summary['current_as_of']}",
                            tags={"model": model, "monitoring_id": str(monitoring_id),
                                  "current_as_of": summary["current_as_of"]})
    client.log_metric(run.info.run_id, "score_psi", float(summary["score_psi"]))
    client.log_metric(run.info.run_id, "n_alerts", float(summary["n_alerts"]))
    client.log_text(run.info.run_id, result.to_json(indent=2), "monitoring/result.json")
    if report_html is not None:
        client.log_artifact(run.info.run_id, str(report_html), "monitoring")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


# --------------------------------------------------------------------------- a run, from files to the DB


@dataclass(frozen=True)
class MonitoringRun:
    """A computed run and, when it was stored, its id."""

    result: monitoring.run.MonitoringResult
    run_id: int | None = None


def read_tables(name: str, paths: Sequence[Path]) -> pd.DataFrame:
    """CSV or Parquet tables (``uscc`` read as text) concatenated; ValueError naming ``name`` and
    the path when a file is missing or unreadable."""
    import pandas as pd

    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"{name} {path}: no such file (rule: a readable CSV or Parquet file)")
        try:
            frames.append(pd.read_parquet(path) if path.suffix.lower() == ".parquet"
                          else pd.read_csv(path, dtype={"uscc": str}))
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name} {path}: cannot be read ({exc})") from exc
    return pd.concat(frames, ignore_index=True)


def rows_at(name: str, frame: pd.DataFrame, as_of: date, required: tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``frame`` for one as-of date (all rows if the frame has no ``as_of`` column)."""
    import pandas as pd

    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing} (rule: the table needs {list(required)})")
    if "as_of" not in frame.columns:
        return frame.reset_index(drop=True)
    dates = pd.to_datetime(frame["as_of"], errors="coerce").dt.date
    at = frame.loc[(dates == as_of).to_numpy()].reset_index(drop=True)
    if at.empty:
        shown = sorted({str(d) for d in dates.dropna()})[:6]
        raise ValueError(f"{name}: no rows with as_of {as_of} (rule: the table must cover both dates; it has {shown})")
    return at


def store_quarantine(store: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Quarantined rows and accepted counts per ingestion month, from the store's batch summaries."""
    import pandas as pd

    rows, accepted = [], []
    for summary_path in sorted((Path(store) / "batches").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        ingested_at = pd.Timestamp(summary["ingested_at"])
        if ingested_at.tzinfo is not None:  # Period has no time zone: count the batch in its UTC month
            ingested_at = ingested_at.tz_convert("UTC").tz_localize(None)
        month = str(ingested_at.to_period("M"))
        for f in summary.get("files", []):
            if f.get("table") != "records":
                continue
            accepted.append({"month": month, "records": int(f.get("accepted", 0))})
            rows += [{"month": month, "rule": rule} for rule, n in f.get("by_rule", {}).items() for _ in range(int(n))]
    if not accepted:
        return None, None
    return pd.DataFrame(rows, columns=["month", "rule"]), pd.DataFrame(accepted)


def score_with_model(model: str, profiles: Mapping[date, pd.DataFrame], tracking_uri: str,
                     *, name: str = "model") -> tuple[dict[date, pd.DataFrame], float | None]:
    """Grade each date's profiles with the registered model ``NAME@ALIAS``; also return its
    validation AUC if it was logged."""
    from training.grade import grade_with
    from training.registry import ModelRegistry

    model_name, alias = model.split("@", 1)
    registry = ModelRegistry(tracking_uri)
    try:
        version = registry.resolve(model_name, alias)
        loaded = registry.load_model(model_name, version.version)
    except (LookupError, OSError) as exc:
        raise ValueError(f"{name} {model!r}: {exc}") from exc
    # scores to monitor, never stored as grades: no profile hash, so a table holding only the
    # model's features will do
    scores = {d: grade_with(loaded, frame, name=model_name, version=version.version, hash_profiles=False)
              for d, frame in profiles.items()}
    metrics = registry.client.get_run(version.run_id).data.metrics
    return scores, metrics.get("oot_auc")


def run_monitoring(session: Session | None, settings: Settings | None, *, reference: date, current: date,
                   grades_files: Sequence[Path] = (), profiles_files: Sequence[Path] = (),
                   store: Path | None = None, model: str | None = None, tracking_uri: str | None = None,
                   model_version: str | None = None, expected_auc: float | None = None,
                   config: Path | None = None, run_evidently: bool = True, html_path: Path | None = None,
                   input_names: Mapping[str, str] | None = None,
                   progress: Callable[[str], None] | None = None) -> MonitoringRun:
    """Compute a monitoring run between two as-of dates; with a ``session``, store it.

    Scores come from ``grades_files`` (uscc, as_of, score, grade) or from the registered ``model``
    (``NAME@ALIAS``, graded on both dates' profiles); profiles from ``profiles_files`` or are built
    from the record ``store``, which also feeds the data-health and flow checks. ``html_path``
    keeps Evidently's report there; when storing without one, the report goes under
    ``settings.data_dir`` all the same. Stored with a ``model``, the run is also logged to MLflow.
    Bad input raises ValueError naming the input as ``input_names`` maps it (the CLI: its options).
    ``progress`` is told each step as it starts.
    """
    import tempfile

    from monitoring.alerts import AlertConfigError, load_alert_config

    names = {k: (input_names or {}).get(k, k) for k in
             ("reference", "current", "grades_files", "profiles_files", "store", "model", "config")}
    step = progress or (lambda _step: None)
    if current <= reference:
        raise ValueError(f"{names['current']} {current}: must be after {names['reference']} {reference}")
    if not profiles_files and store is None:
        raise ValueError(f"{names['profiles_files']} / {names['store']}: neither given (rule: profiles come "
                         "from a profile table or a record store)")
    if bool(grades_files) == (model is not None):
        raise ValueError(f"{names['grades_files']} / {names['model']}: give exactly one (rule: scores come from "
                         "a grade table or a registered model)")
    if model is not None and ("@" not in model or tracking_uri is None):
        raise ValueError(f"{names['model']} {model!r}: not NAME@ALIAS with a registry (rule: e.g. "
                         "tiers-general@champion)")
    if store is not None and not (Path(store) / "batches").is_dir():
        raise ValueError(f"{names['store']} {store}: no batches/ directory (rule: a store written by tiers ingest)")
    try:
        alert_config = load_alert_config(config)
    except AlertConfigError as exc:
        raise ValueError(f"{names['config']}: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        if html_path is None and session is not None and run_evidently:
            html_path = Path(tmp) / "report.html"  # stored with the run, under settings.data_dir
        result = _compute(reference, current, names=names, grades_files=grades_files,
                          profiles_files=profiles_files, store=store, model=model, tracking_uri=tracking_uri,
                          expected_auc=expected_auc, alert_config=alert_config, run_evidently=run_evidently,
                          html_path=html_path, step=step)
        if session is None:
            return MonitoringRun(result)
        if settings is None:
            raise ValueError("settings: required to store a run (rule: the report is kept under data_dir)")
        report = html_path if html_path is not None and html_path.is_file() else None
        run_id = store_result(session, result, model_version=model_version or model, report_html=report,
                              artifact_dir=Path(settings.data_dir))
        if model is not None:
            log_to_mlflow(tracking_uri, result, model=model, report_html=report, monitoring_id=run_id)
    return MonitoringRun(result, run_id)


def _compute(reference: date, current: date, *, names: Mapping[str, str], grades_files: Sequence[Path],
             profiles_files: Sequence[Path], store: Path | None, model: str | None, tracking_uri: str | None,
             expected_auc: float | None, alert_config: Any, run_evidently: bool, html_path: Path | None,
             step: Callable[[str], None]) -> monitoring.run.MonitoringResult:
    from monitoring.inputs import frames_at
    from monitoring.run import monitor

    dates = (reference, current)
    records = quarantine = ingested = None
    if store is not None:
        from features.store import read_latest

        records = read_latest(store, "records")
        quarantine, ingested = store_quarantine(store)
    step("profiles")
    # Both tables are checked before either is used, so one run names every bad table at once.
    problems: list[str] = []

    def tables_at(name: str, paths: Sequence[Path], required: tuple[str, ...]) -> dict[date, pd.DataFrame]:
        try:
            table = read_tables(name, paths)
            return {d: rows_at(name, table, d, required) for d in dates}
        except ValueError as exc:
            problems.append(str(exc))
            return {}

    profiles = tables_at(names["profiles_files"], profiles_files, ("uscc",)) if profiles_files else {}
    scores = tables_at(names["grades_files"], grades_files, ("uscc", "score", "grade")) if grades_files else {}
    if problems:
        raise ValueError("; ".join(problems))
    if not profiles_files:
        from features.profiles import build_profiles

        try:
            profiles = {d: build_profiles(store, as_of=d) for d in dates}
        except ValueError as exc:
            raise ValueError(f"{names['store']} {store}: {exc}") from exc
    step("scores")
    if not grades_files:
        scores, auc = score_with_model(model, profiles, tracking_uri, name=names["model"])
        expected_auc = expected_auc if expected_auc is not None else auc
    step("drift")
    ref = frames_at(reference, profiles=profiles[reference], scores=scores[reference])
    cur = frames_at(current, profiles=profiles[current], scores=scores[current], records=records,
                    quarantine=quarantine, ingested=ingested)
    return monitor(ref, cur, config=alert_config, expected_auc=expected_auc, run_evidently=run_evidently,
                   html_path=html_path)


def run_and_store(session: Session, settings: Settings, *, reference: date, current: date,
                  grades_files: Sequence[Path], profiles_files: Sequence[Path] = (), store: Path | None = None,
                  model_version: str | None = None, expected_auc: float | None = None,
                  config: Path | None = None, run_evidently: bool = True) -> int:
    """Compute a monitoring run from grade tables and store it (see :func:`run_monitoring`);
    return the run id. Raises ValueError naming the input on bad data."""
    return run_monitoring(session, settings, reference=reference, current=current, grades_files=grades_files,
                          profiles_files=profiles_files, store=store, model_version=model_version,
                          expected_auc=expected_auc, config=config, run_evidently=run_evidently).run_id


# --------------------------------------------------------------------------- inline SVG charts

_REF_COLOUR, _CUR_COLOUR, _ALERT_COLOUR, _OK_COLOUR = "#9aa5b1", "#1f6feb", "#c62828", "#2e7d32"


def psi_bars_svg(items: Sequence[tuple[str, float | None]], *, threshold: float, title: str,
                 lang: str = "zh") -> Markup:
    """Horizontal PSI bars (red above ``threshold``) with the threshold as a dashed line.

    Bars are labelled with the feature's name in ``lang`` (analysts read 近36个月行政处罚次数, not
    n_penalty_36m); the code stays in the bar's tooltip for looking it up in the reports.
    """
    values = [(name, v) for name, v in items if v is not None]
    width, left, row = 620, 250, 20
    height = row * len(values) + 30
    top = max([threshold * 1.25, *(v for _, v in values)]) or 1.0
    scale = (width - left - 60) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart psi" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
    for i, (name, v) in enumerate(values):
        y = 10 + i * row
        colour = _ALERT_COLOUR if v > threshold else _CUR_COLOUR
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="12">'
                     f'{escape(feature_label(name, lang))}<title>{escape(name)}</title></text>'
                     f'<rect x="{left}" y="{y + 2}" width="{v * scale:.1f}" height="{row - 6}" fill="{colour}">'
                     f'<title>{escape(name)}: {v:.4f}</title></rect>'
                     f'<text x="{left + v * scale + 4:.1f}" y="{y + 13}" font-size="11">{v:.3f}</text>')
    x = left + threshold * scale
    parts.append(f'<line class="threshold" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 16}" stroke="{_ALERT_COLOUR}" '
                 f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="{height - 4}" font-size="11" '
                 f'text-anchor="middle">{threshold:g}</text></svg>')
    return Markup("".join(parts))  # noqa: S704  (every text in it went through escape(); the rest are numbers and constants)


def grade_shares_svg(shares: Mapping[str, Any], *, title: str, lang: str = "zh") -> Markup:
    """Paired vertical bars per grade: reference (grey) and current (blue), in percent."""
    grades = list(shares["grades"])
    width, height, base, group = 80 * len(grades) + 60, 200, 170, 80
    top = max([*shares["reference"].values(), *shares["current"].values(), 0.01])
    scale = 140 / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart shares" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
    for i, g in enumerate(grades):
        x = 40 + i * group
        for j, (side, colour) in enumerate((("reference", _REF_COLOUR), ("current", _CUR_COLOUR))):
            v = float(shares[side][g])
            h = v * scale
            parts.append(f'<rect class="{side}" x="{x + j * 26}" y="{base - h:.1f}" width="24" height="{h:.1f}" '
                         f'fill="{colour}"/><text x="{x + j * 26 + 12}" y="{base - h - 3:.1f}" font-size="10" '
                         f'text-anchor="middle">{100 * v:.1f}%</text>')
        parts.append(f'<text x="{x + 25}" y="{base + 16}" font-size="13" text-anchor="middle">{escape(g)}</text>')
    parts.append(f'<rect x="{width - 150}" y="4" width="10" height="10" fill="{_REF_COLOUR}"/>'
                 f'<text x="{width - 136}" y="13" font-size="11">{escape(label("reference", lang))}</text>'
                 f'<rect x="{width - 80}" y="4" width="10" height="10" fill="{_CUR_COLOUR}"/>'
                 f'<text x="{width - 66}" y="13" font-size="11">{escape(label("current", lang))}</text></svg>')
    return Markup("".join(parts))  # noqa: S704  (every text in it went through escape(); the rest are numbers and constants)


def volume_small_multiples_svg(volume_by_month: Mapping[str, Mapping[str, int]], *, title: str,
                               silent: Sequence[str] = (), lang: str = "zh") -> Markup:
    """One small bar chart per department (records per month), headed by the department's name in
    ``lang`` (its code in the tooltip); silent feeds drawn in red."""
    from serving.labels import department_name

    departments = sorted(volume_by_month)
    cell_w, cell_h, cols = 180, 70, 3
    rows = max(1, -(-len(departments) // cols))
    width, height = cell_w * cols, cell_h * rows
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart volume" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
    for k, dept in enumerate(departments):
        months = sorted(volume_by_month[dept])
        counts = [int(volume_by_month[dept][m]) for m in months]
        ox, oy = (k % cols) * cell_w, (k // cols) * cell_h
        top = max([*counts, 1])
        bar = (cell_w - 20) / max(1, len(counts))
        colour = _ALERT_COLOUR if dept in silent else _CUR_COLOUR
        parts.append(f'<text x="{ox + 4}" y="{oy + 12}" font-size="11">{escape(department_name(dept, lang))}'
                     f'<title>{escape(dept)}</title></text>')
        for i, (m, n) in enumerate(zip(months, counts, strict=True)):
            h = 45 * n / top
            parts.append(f'<rect x="{ox + 4 + i * bar:.1f}" y="{oy + 62 - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(m)}: {n}</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every text in it went through escape(); the rest are numbers and constants)


def migration_cells(migration: Mapping[str, Any]) -> list[list[tuple[str, str]]]:
    """The migration matrix as (text, CSS class) cells: ``heat-0`` … ``heat-10``, darker blue = larger
    row share (classes of style.css, not inline styles: the pages' CSP allows no inline style)."""
    out = []
    for counts, shares in zip(migration["counts"], migration["row_shares"], strict=True):
        row = []
        for n, s in zip(counts, shares, strict=True):
            s = min(max(float(s or 0.0), 0.0), 1.0)
            row.append((f"{n} ({100 * s:.0f}%)", f"heat-{round(10 * s)}"))
        out.append(row)
    return out


def run_view(run: MonitoringResult, alerts: Sequence[Alert], lang: str = "zh") -> dict[str, Any]:
    """Everything the analyst monitoring page shows of one stored run (charts as inline SVG)."""
    res = run.payload["result"]
    thresholds = _thresholds()
    items = [("score", res["score_psi"]["psi"])] + [(f["feature"], f["psi"]) for f in res["feature_drift"]]
    health = res.get("data_health")
    perf = res.get("performance")
    return {
        "run": run,
        "summary": run.payload["summary"],
        "psi_svg": psi_bars_svg(items, threshold=thresholds["feature_psi"], title=label("feature_psi", lang),
                                lang=lang),
        "shares_svg": grade_shares_svg(res["grade_shares"], title=label("grade_shares", lang), lang=lang),
        "migration": {"grades": res["migration"]["grades"], "cells": migration_cells(res["migration"])},
        "volume_svg": (volume_small_multiples_svg(health["volume_by_month"], title=label("health", lang),
                                                  silent=[f["department"] for f in health["feeds"] if f["silent"]],
                                                  lang=lang)
                       if health and health.get("volume_by_month") else None),
        "performance": perf,
        "alerts": [{"severity": a.severity, "severity_text": label(f"severity_{a.severity}", lang), "code": a.code,
                    "message": a.message if lang == "zh" else a.payload.get("message_en", a.message),
                    "evidence": {k: _show(v) for k, v in a.payload.get("evidence", {}).items()}} for a in alerts],
        "has_report": report_path(run) is not None,
    }


def feature_label(name: str, lang: str = "zh") -> str:
    """A feature's label in ``lang`` from FEATURE_SPECS; the score and unknown codes as they are."""
    if name == "score":
        return label("score", lang)
    from features.specs import FEATURES_BY_NAME

    spec = FEATURES_BY_NAME.get(name)
    if spec is None:
        return name
    return spec.label_zh if lang == "zh" else spec.label_en


def _show(value: Any) -> str:
    """Evidence for people: floats to 4 significant digits, containers compactly."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return "—" if value is None else str(value)


def _thresholds() -> dict[str, float]:
    from monitoring.alerts import load_alert_config

    config = load_alert_config()
    return {"feature_psi": config.feature_psi.threshold, "score_psi": config.score_psi.threshold}
