"""Monitoring runs in the service: store a ``monitoring.run.MonitoringResult`` with its alerts and
Evidently report, read them back, and turn the stored JSON into light server-side SVG charts.

A run is one ``monitoring_results`` row (``kind="monitoring"``, ``as_of`` = the current as-of date,
``payload`` = the result JSON plus ``summary`` and ``report_html``); each alert is one ``alerts``
row whose ``payload`` carries ``monitoring_id``, ``subject_of_alert`` and the evidence.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import Alert, MonitoringResult
from serving.i18n import ALERT_TEXTS, page_text

if TYPE_CHECKING:
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


def alert_message(rule: str, subject_of_alert: str, evidence: Mapping[str, Any], lang: str = "zh") -> str:
    """One sentence naming the subject, the observed value and the threshold crossed."""
    subject = subject_of_alert
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
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("monitoring")
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


# --------------------------------------------------------------------------- one call for tiers demo


def run_and_store(session: Session, settings: Settings, *, reference: date, current: date,
                  grades_files: Sequence[Path], profiles_files: Sequence[Path] = (), store: Path | None = None,
                  model_version: str | None = None, expected_auc: float | None = None,
                  config: Path | None = None, run_evidently: bool = True) -> int:
    """Compute a monitoring run between two as-of dates and store it (with the Evidently report
    under ``settings.data_dir``); return the run id.

    Scores come from ``grades_files`` (uscc, as_of, score, grade); profiles from ``profiles_files``
    or are built from the record ``store`` (which also feeds the data-health and flow checks).
    Raises ValueError naming the input on bad data.
    """
    import tempfile

    import pandas as pd

    from monitoring.alerts import load_alert_config
    from monitoring.inputs import frames_at
    from monitoring.run import monitor

    if current <= reference:
        raise ValueError(f"current {current}: must be after reference {reference}")
    if not grades_files:
        raise ValueError("grades_files: empty (rule: at least one grade table)")
    if not profiles_files and store is None:
        raise ValueError("profiles_files / store: neither given (rule: profiles come from a table or a store)")

    def read(paths: Sequence[Path]) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(p) if Path(p).suffix.lower() == ".parquet"
                          else pd.read_csv(p, dtype={"uscc": str}) for p in paths], ignore_index=True)

    def at(name: str, frame: pd.DataFrame, day: date) -> pd.DataFrame:
        if "as_of" not in frame.columns:
            return frame.reset_index(drop=True)
        rows = frame.loc[(pd.to_datetime(frame["as_of"]).dt.date == day).to_numpy()].reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"{name}: no rows with as_of {day} (rule: the table must cover both dates)")
        return rows

    grades_table = read(grades_files)
    scores = {d: at("grades_files", grades_table, d) for d in (reference, current)}
    records = quarantine = ingested = None
    if profiles_files:
        table = read(profiles_files)
        profiles = {d: at("profiles_files", table, d) for d in (reference, current)}
    else:
        from features.profiles import build_profiles

        profiles = {d: build_profiles(store, as_of=d) for d in (reference, current)}
    if store is not None:
        from features.store import read_latest
        from serving.cli.monitor import _store_quarantine

        records = read_latest(store, "records")
        quarantine, ingested = _store_quarantine(store)
    ref = frames_at(reference, profiles=profiles[reference], scores=scores[reference])
    cur = frames_at(current, profiles=profiles[current], scores=scores[current], records=records,
                    quarantine=quarantine, ingested=ingested)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html" if run_evidently else None
        result = monitor(ref, cur, config=load_alert_config(config), expected_auc=expected_auc,
                         run_evidently=run_evidently, html_path=html)
        return store_result(session, result, model_version=model_version,
                            report_html=html if html is not None and html.is_file() else None,
                            artifact_dir=Path(settings.data_dir))


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
                               silent: Sequence[str] = ()) -> Markup:
    """One small bar chart per department (records per month); silent feeds drawn in red."""
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
        parts.append(f'<text x="{ox + 4}" y="{oy + 12}" font-size="11">{escape(dept)}</text>')
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
                                                  silent=[f["department"] for f in health["feeds"] if f["silent"]])
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
