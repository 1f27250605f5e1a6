"""A sector department fits its own model from a labelled file: the file is checked row by row
(a refusal names the line, the field and the rule, in the reader's language), then fitted in a
background thread by `serving.workflows.training.fit_labelled` (the one training step) into a
registered version of ``tiers-sector-<section>`` (a challenger once the section has a champion),
its progress kept in ``fit_jobs`` for the page that polls it.

The file: one row per subject and as-of date, UTF-8 (or GB18030, as Excel saves it) CSV with
the columns ``uscc``, ``as_of`` (YYYY-MM-DD), ``label`` (1: the adverse outcome happened within
the horizon after as_of, else 0) and every model input of the profile (``FEATURE_COLUMNS``;
``industry`` optional, and then the section's letter). Empty cells are missing values. The other
columns of the service's own profiles (``tiers profile``: counts and codes the model does not
take) are left aside; any other column is refused, every such heading named in one refusal.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import FitJob
from serving.errors import Conflict, InvalidInput, NotFound
from serving.i18n import page_text
from serving.labels import model_label
from serving.security import Principal
from serving.services import jobs
from serving.validation import binary_target, decode_table_text
from uscc import is_valid_uscc

logger = logging.getLogger(__name__)

KEY_COLUMNS = ("uscc", "as_of", "label")
MAX_ROWS = 200_000
HORIZON_MONTHS = 12
# what an upload fits: the glass-box candidates (exact reasons by table lookup), the report's
# bootstrap; tests make them smaller
KIND = "sector_fit"  # (serving.services.jobs)
FIT_OPTIONS: dict[str, Any] = {"candidates": ("scorecard", "gbm_additive"), "n_boot": 200, "min_positives": 300}
_TRUE, _FALSE = {"1", "true", "是", "y", "yes"}, {"0", "false", "否", "n", "no"}


@lru_cache
def feature_columns() -> tuple[tuple[str, str, str, bool], ...]:
    """(name, label_zh, label_en, categorical) of every model input of the profile."""
    from features.specs import FEATURE_SPECS
    from training.pipeline import feature_metas_from_specs

    return tuple((m.name, m.label_zh, m.label_en, m.categorical) for m in feature_metas_from_specs(FEATURE_SPECS))


# the key columns as a person heads them (the features by their own labels); a file may head each
# column by its code, its Chinese or its English name
_KEY_LABELS = {"uscc": ("统一社会信用代码", "Unified social credit code"), "as_of": ("评价基准日", "Evaluation date"),
               "label": ("是否发生不良结果", "Adverse outcome")}


@lru_cache
def column_names() -> dict[str, str]:
    """Every accepted heading of a column (code, Chinese, English) → the column's code."""
    named = {**{k: v for k, v in _KEY_LABELS.items()},
             **{name: (zh, en) for name, zh, en, _ in feature_columns()}}
    return {heading: code for code, (zh, en) in named.items() for heading in (code, zh, en)}


@lru_cache
def profile_columns_aside() -> frozenset[str]:
    """The columns of the service's own profiles (``features.specs.FEATURE_SPECS``, `tiers profile`)
    the fit does not take (e.g. n_admin_check_12m, district_code): a file carrying them is read
    without them."""
    from features.specs import FEATURE_SPECS

    return frozenset({spec.name for spec in FEATURE_SPECS} | {"profile_hash"}) - set(column_names())


def _is_lang(heading: str, lang: str) -> bool:
    chinese = bool(re.search("[\u4e00-\u9fff]", heading))
    return chinese if lang == "zh" else not chinese and " " in heading


def key_headings(lang: str) -> list[str]:
    """The key columns (uscc, as_of, label) as the template heads them in ``lang``."""
    return [_KEY_LABELS[k][0 if lang == "zh" else 1] for k in KEY_COLUMNS]


def template_csv(lang: str) -> str:
    """The header a file must have, each column headed in ``lang`` (a file may head them by code,
    Chinese or English name); the page lists the columns' meanings."""
    names = [*key_headings(lang), *(zh if lang == "zh" else en for _name, zh, en, _ in feature_columns())]
    return ",".join(f'"{n}"' if "," in n else n for n in names) + "\n"


def _say(lang: str, key: str, **values: Any) -> str:
    return page_text("sector_fit", key, lang).format(**values)


def _refuse(lang: str, line: int | None, field: str, rule: str) -> InvalidInput:
    where = _say(lang, "at_line", line=line) if line is not None else _say(lang, "in_file")
    return InvalidInput(_say(lang, "refusal", where=where, field=field, rule=rule), field=field)


def _decode(content: bytes, lang: str) -> str:
    decoded = decode_table_text(content)
    if decoded is None:
        raise _refuse(lang, None, _say(lang, "the_file"), _say(lang, "rule_encoding"))
    return decoded[0]


def parse_labelled_csv(content: bytes, section: str, lang: str = "zh") -> Any:
    """The file as a labelled dataset (`training.pipeline.assemble_dataset`'s shape), or
    `InvalidInput` naming the first line, field and rule it breaks (lines count from the header,
    line 1, as a spreadsheet shows them)."""
    import pandas as pd

    from training.pipeline import assemble_dataset

    if not content.strip():
        raise _refuse(lang, None, _say(lang, "the_file"), _say(lang, "rule_empty"))
    reader = csv.reader(io.StringIO(_decode(content, lang), newline=""))
    headings = [h.strip() for h in next(reader, [])]
    features = {name: categorical for name, _zh, _en, categorical in feature_columns()}
    names = column_names()
    # a file built from `tiers profile` carries columns the service computes and the model does
    # not take: left aside; any other unknown heading is refused, all of them named at once
    aside = profile_columns_aside()
    unknown = [h or "—" for h in headings if h not in names and h not in aside]
    if unknown:
        raise _refuse(lang, 1, "、".join(unknown), _say(lang, "rule_unknown_column"))
    width = len(headings)
    kept = [i for i, h in enumerate(headings) if h not in aside]
    headings = [headings[i] for i in kept]
    header = [names[h] for h in headings]
    shown = dict(zip(header, headings, strict=True))
    for heading, column in zip(headings, header, strict=True):
        if header.count(column) > 1:
            raise _refuse(lang, 1, heading, _say(lang, "rule_duplicate_column"))
    missing = [c for c in (*KEY_COLUMNS, *features) if c not in header and c != "industry"]
    if missing:
        labels = {code: heading for heading, code in names.items() if _is_lang(heading, lang)}
        named = "、".join(labels.get(c, c) for c in missing[:5]) + ("…" if len(missing) > 5 else "")
        raise _refuse(lang, 1, named, _say(lang, "rule_missing_columns", n=len(missing)))
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise _refuse(lang, line, _say(lang, "the_file"), _say(lang, "rule_max_rows", n=MAX_ROWS))
        if len(cells) != width:
            raise _refuse(lang, line, _say(lang, "the_row"), _say(lang, "rule_cells", n=width, got=len(cells)))
        cells = [cells[i] for i in kept]
        row = _row(dict(zip(header, (c.strip() for c in cells), strict=True)), features, section, line, lang, shown)
        key = (row["uscc"], row["as_of"])
        if key in seen:
            raise _refuse(lang, line, f"{shown['uscc']}, {shown['as_of']}", _say(lang, "rule_duplicate_row", first=seen[key]))
        seen[key] = line
        rows.append(row)
    if not rows:
        raise _refuse(lang, None, _say(lang, "the_file"), _say(lang, "rule_empty"))
    frame = pd.DataFrame(rows)
    for name, categorical in features.items():
        if name not in frame:
            frame[name] = section if name == "industry" else math.nan
        elif not categorical and frame[name].isna().all():
            raise _refuse(lang, None, shown[name], _say(lang, "rule_all_empty"))
    _check_dates(frame, lang, shown)
    frame["industry"] = section
    data = assemble_dataset(frame.drop(columns="label"), frame[["uscc", "as_of", "label"]])
    return data


def _row(values: dict[str, str], features: dict[str, bool], section: str, line: int, lang: str,
         shown: dict[str, str]) -> dict[str, Any]:
    # ``shown``: each column as the file heads it, so that a refusal names the column the user wrote
    uscc = values["uscc"].upper()
    if not is_valid_uscc(uscc):
        raise _refuse(lang, line, shown["uscc"], _say(lang, "rule_uscc", value=values["uscc"][:40]))
    try:
        as_of = dt.date.fromisoformat(values["as_of"])
    except ValueError:
        raise _refuse(lang, line, shown["as_of"], _say(lang, "rule_date", value=values["as_of"][:40])) from None
    label = binary_target(values["label"])
    if label is None:
        raise _refuse(lang, line, shown["label"], _say(lang, "rule_label", value=values["label"][:40]))
    row: dict[str, Any] = {"uscc": uscc, "as_of": as_of, "label": label}
    for name, categorical in features.items():
        if name not in values:
            continue
        raw = values[name]
        if categorical:
            if name == "industry" and raw and raw != section:
                raise _refuse(lang, line, shown[name], _say(lang, "rule_section", value=raw[:40], section=section))
            row[name] = raw or None
        elif raw == "":
            row[name] = math.nan
        elif raw.lower() in _TRUE | _FALSE and name == "thin_file":
            row[name] = 1.0 if raw.lower() in _TRUE else 0.0
        else:
            try:
                number = float(raw.replace(",", ""))
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise _refuse(lang, line, shown[name], _say(lang, "rule_number", value=raw[:40]))
            row[name] = number
    return row


def _check_dates(frame: Any, lang: str, shown: dict[str, str]) -> None:
    """The dates the fit needs: the latest as-of date validates out of time (both outcomes
    present), and an earlier one whose label window ends by it trains. A refusal names the
    column as the file heads it (``shown``)."""
    from dateutil.relativedelta import relativedelta

    days = sorted(set(frame["as_of"]))
    validate = days[-1]
    train = [d for d in days[:-1] if d + relativedelta(months=HORIZON_MONTHS) <= validate]
    if not train:
        raise _refuse(lang, None, shown["as_of"], _say(lang, "rule_dates", n=HORIZON_MONTHS, latest=validate.isoformat()))
    outcomes = set(frame.loc[frame["as_of"] == validate, "label"])
    if outcomes != {0, 1}:
        raise _refuse(lang, None, shown["label"], _say(lang, "rule_both_outcomes", day=validate.isoformat()))
    trained = set(frame.loc[frame["as_of"].isin(train), "label"])
    if trained != {0, 1}:
        raise _refuse(lang, None, shown["label"], _say(lang, "rule_both_outcomes_train"))


# -- jobs ----------------------------------------------------------------------------------------

def start_fit(session: Session, settings: Any, principal: Principal, dataset: Any, file_name: str,
              runner: Callable[..., Any] | None = None) -> FitJob:
    """Queue the fit of ``dataset`` for the principal's section and start it in a background
    thread; one fit per section at a time (409 while one runs)."""
    section = principal.section
    if section is None:
        raise NotFound("no section to fit a model for", field="section")
    busy = [j for j in session.scalars(select(FitJob).where(FitJob.kind == KIND, FitJob.section == section,
                                                           FitJob.status.in_(jobs.ACTIVE)))
            if not jobs.stale(j)]
    if busy:
        raise Conflict(f"a fit of section {section} is already running (job {busy[0].id})", field="file")
    job = jobs.queue(session, kind=KIND, section=section, requested_by=principal.username,
                     file_name=file_name[:200], rows=len(dataset))
    jobs.run_job_in_thread(settings, job.id, runner or run_fit, dataset, section, name=f"fit-job-{job.id}")
    return job


def run_fit(settings: Any, job_id: int, dataset: Any, section: str) -> None:
    """The background fit: progress into the job's row, then the registered version or the reason."""
    from serving.deps import new_session
    from serving.services.model_registry import artifacts_dir_for
    from serving.workflows import WorkflowError
    from serving.workflows.training import fit_labelled, open_registry

    session = new_session(settings)
    try:
        report = jobs.Progress(session, session.get(FitJob, job_id))
        report("reading", 0.02)
        uri = settings.mlflow_tracking_uri
        registry = open_registry(uri, artifacts_dir_for(uri))
        options = dict(FIT_OPTIONS)
        summary = fit_labelled(dataset, registry, sector=section, horizon=HORIZON_MONTHS,
                               min_positives=options["min_positives"], candidates=options["candidates"],
                               n_boot=options["n_boot"],
                               progress=lambda stage, fraction: report(stage, 0.05 + 0.85 * fraction))
        jobs.end(session, job_id, "succeeded", model_name=summary["model"], version=int(summary["version"]),
                 result={k: summary[k] for k in ("aliases", "metrics", "candidate", "kind", "notes", "train_as_of",
                                                 "validate_as_of", "on_general") if k in summary})
    except (WorkflowError, ValueError, KeyError) as exc:
        jobs.end(session, job_id, "failed", str(getattr(exc, "message", exc)))
    except Exception as exc:  # the thread must leave the job ended, whatever happened
        logger.exception("fit job %s failed", job_id)
        jobs.end(session, job_id, "failed", f"internal error: {type(exc).__name__}")
    finally:
        session.close()


def get_job(session: Session, principal: Principal, job_id: int) -> FitJob:
    """A job of the principal's section (admin: any); others answer 404 (no existence oracle)."""
    job = session.get(FitJob, job_id)
    if job is None or job.kind != KIND or (principal.role != "admin" and job.section != principal.section):
        raise NotFound(f"no fit job {job_id}", field="job_id")
    return job


def list_jobs(session: Session, principal: Principal, limit: int = 20) -> list[FitJob]:
    stmt = select(FitJob).where(FitJob.kind == KIND).order_by(FitJob.id.desc()).limit(limit)
    if principal.role != "admin":
        stmt = stmt.where(FitJob.section == principal.section)
    return list(session.scalars(stmt))


STAGE_KEYS = (("queued", "stage_queued"), ("reading", "stage_reading"), ("fitting", "stage_fitting"),
              ("recalibrating", "stage_recalibrating"), ("calibrating", "stage_calibrating"),
              ("setting grade", "stage_cutoffs"), ("validating", "stage_validating"),
              ("writing the validation report", "stage_report"), ("done", "stage_registering"),
              ("finished", "stage_finished"))


def _failure(message: str, lang: str) -> str:
    """Training's refusals that a file can still cause (after the checks above), in ``lang``."""
    if m := re.search(r"has (\d+) adverse outcomes in training \(< (\d+)\) and no general model", message):
        return _say(lang, "fail_no_general", n=m.group(1), min=m.group(2))
    if "need both outcomes in the fit and calibration parts" in message:
        return _say(lang, "fail_split")
    if message.startswith("internal error"):
        return _say(lang, "fail_internal")
    return message


def job_view(job: FitJob, lang: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the progress page shows (and its status endpoint answers) of a job, in ``lang``."""
    now = now or dt.datetime.now(dt.UTC)
    status = jobs.shown_status(job, now)
    key = next((k for prefix, k in STAGE_KEYS if job.stage.startswith(prefix)), None)
    stage = _say(lang, key) if key else job.stage
    if key == "stage_fitting":
        stage += " " + job.stage.removeprefix("fitting").strip()
    out: dict[str, Any] = {"id": job.id, "status": status, "status_text": _say(lang, f"status_{status}"),
                           "progress": job.progress, "percent": round(100 * job.progress), "stage": stage,
                           "rows": job.rows, "file_name": job.file_name, "section": job.section,
                           "done": status in ("succeeded", "failed", "interrupted")}
    if status == "failed":
        out["message"] = _say(lang, "failed_because", message=_failure(job.message or "", lang))
    if status == "succeeded" and job.model_name and job.version:
        aliases = (job.result or {}).get("aliases", [])
        out.update(model=job.model_name, version=job.version, aliases=aliases,
                   report_url=f"/sector/models/{job.model_name}/versions/{job.version}/report",
                   outcome=_say(lang, "registered_as", model=model_label(job.model_name, lang), version=job.version,
                                role=_say(lang, "as_challenger" if "challenger" in aliases else
                                          "as_champion" if "champion" in aliases else "as_version")))
    return out
