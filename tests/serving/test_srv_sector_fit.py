"""A sector user uploads a labelled CSV: a bad file is refused naming the line, the field and the
rule (in Chinese); a good one is fitted in the background (the page polls its progress) by the
training workflow and ends as a registered challenger, whose report page draws its charts
(issue 17 item 7). One tiny dataset and one registry for the module."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from srv_fixtures import TODAY, database_copy, form_login, make_uscc

from serving.app import create_app
from serving.db.session import dispose_engine
from serving.deps import get_today
from serving.errors import InvalidInput
from serving.keys import with_keys
from serving.services import sector_fit
from serving.settings import Settings

# the module fixture (app, database, models) is built once, on one worker
pytestmark = pytest.mark.xdist_group("sector_fit")

DATES = ("2024-03-31", "2024-09-30", "2025-09-30")


def labelled_csv(n: int = 120, seed: int = 3) -> str:
    """n subjects at each of DATES, every model input present, risk rising with penalties and
    arrears (so a model has something to find)."""
    rng = np.random.default_rng(seed)
    names = [name for name, *_ in sector_fit.feature_columns() if name != "industry"]
    rows = []
    for day in DATES:
        for i in range(n):
            row = dict.fromkeys(names, 0.0)
            row.update(n_penalty_12m=rng.poisson(0.6), n_arrears_unsettled=rng.poisson(0.4),
                       age_years=round(rng.uniform(0, 20), 1), employees=int(rng.integers(1, 300)),
                       fines_36m=round(rng.exponential(2000), 0))
            z = -2.0 + 1.1 * row["n_penalty_12m"] + 0.8 * row["n_arrears_unsettled"] - 0.04 * row["age_years"]
            rows.append({"uscc": make_uscc(f"91320100MA{i:07d}"), "as_of": day,
                         "label": int(rng.random() < 1 / (1 + np.exp(-z))), **row})
    frame = pd.DataFrame(rows)
    return frame.to_csv(index=False)


@pytest.fixture(scope="module")
def fit_env(_template_db, tmp_path_factory):
    """The app on a copy of the seeded DB with a registry whose tiers-sector-C already has a
    champion (fitted from the same kind of file, directly through the workflow)."""
    from serving.workflows.training import fit_labelled, open_registry

    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "sector_fit")
    tracking = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    settings = with_keys(Settings(database_url=database_url, run_migrations_on_startup=False, data_dir=database_url,
                                  mlflow_tracking_uri=tracking, keys_dir=tmp_path / "keys"))
    saved = dict(sector_fit.FIT_OPTIONS)
    sector_fit.FIT_OPTIONS.update(candidates=("gbm_additive",), n_boot=20, min_positives=20)
    registry = open_registry(tracking, tmp_path / "mlflow" / "mlartifacts")
    first = fit_labelled(sector_fit.parse_labelled_csv(labelled_csv(seed=1).encode(), "C"), registry, sector="C",
                         candidates=("gbm_additive",), n_boot=20, min_positives=20)
    assert first["aliases"] == ["champion"]
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    yield TestClient(app)
    sector_fit.FIT_OPTIONS.clear()
    sector_fit.FIT_OPTIONS.update(saved)
    dispose_engine(database_url)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _upload(client, text: str, name: str = "labels.csv", **params):
    page = client.get("/sector/fit")
    assert page.status_code == 200
    return client.post("/sector/fit", params=params, data={"csrf_token": _csrf(page.text)},
                       files={"file": (name, io.BytesIO(text.encode("utf-8")), "text/csv")}, follow_redirects=False)


def test_bad_files_are_refused_naming_line_field_and_rule(fit_env):
    client = fit_env
    assert form_login(client, "sector_c").status_code == 303
    good = labelled_csv(n=40).splitlines()
    header = good[0].split(",")
    label_at = header.index("label")

    def with_cell(line: int, column: int, value: str) -> str:
        lines = list(good)
        cells = lines[line - 1].split(",")
        cells[column] = value
        lines[line - 1] = ",".join(cells)
        return "\n".join(lines) + "\n"

    bad_label = _upload(client, with_cell(4, label_at, "2"))
    assert bad_label.status_code == 422
    assert "文件第 4 行" in bad_label.text and "label" in bad_label.text and "须为 0 或 1" in bad_label.text
    bad_date = _upload(client, with_cell(7, header.index("as_of"), "2025/09/30"))
    assert bad_date.status_code == 422 and "文件第 7 行" in bad_date.text and "不是日期" in bad_date.text
    bad_number = _upload(client, with_cell(3, header.index("fines_36m"), "五千"))
    assert "文件第 3 行" in bad_number.text and "fines_36m" in bad_number.text and "须为数字" in bad_number.text
    unknown = _upload(client, "\n".join([good[0] + ",colour,size", *(line + ",red,L" for line in good[1:])]))
    assert "文件第 1 行" in unknown.text and "colour" in unknown.text and "size" in unknown.text  # all at once
    one_date = "\n".join([good[0], *(line for line in good[1:] if ",2025-09-30," in line)])
    dates = _upload(client, one_date)
    assert dates.status_code == 422 and "as_of" in dates.text and "12 个月" in dates.text
    english = _upload(client, with_cell(4, label_at, "2"), lang="en")
    assert "Line 4" in english.text and "must be 0 or 1" in english.text
    client.get("/sector/fit", params={"lang": "zh"})  # back to Chinese (the toggle's cookie)
    template = client.get("/sector/fit/template.csv")
    assert template.status_code == 200 and template.text.startswith("统一社会信用代码,评价基准日,是否发生不良结果,")
    assert not re.search(r"[A-Za-z_]{3,}", template.text), "a column headed by its code"  # review17: 55 codes


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_file_headed_in_words_is_the_file_headed_by_codes(lang):
    """The template heads columns in the user's language (review17: 55 English codes such as
    n_penalty_12m); a file headed by codes, Chinese or English names is the same dataset, and a
    refusal names the column as the file heads it."""
    coded = labelled_csv(n=40)
    header, _, body = coded.partition("\n")
    names = {code: heading for heading, code in sector_fit.column_names().items()
             if heading != code and (bool(re.search("[\u4e00-\u9fff]", heading)) == (lang == "zh"))}
    heads = [names.get(c, c) for c in header.split(",")]  # an English name may be its code (employees)
    worded = ",".join(f'"{h}"' if "," in h else h for h in heads) + "\n" + body
    a, b = sector_fit.parse_labelled_csv(coded.encode(), "C"), sector_fit.parse_labelled_csv(worded.encode(), "C")
    pd.testing.assert_frame_equal(a, b)
    # a profile column the fit does not take (`tiers profile` writes it) is left aside (review17c)
    lines = coded.splitlines()
    profiled = "\n".join([lines[0] + ",n_admin_check_12m,district_code", *(x + ",3,320102" for x in lines[1:])])
    pd.testing.assert_frame_equal(a, sector_fit.parse_labelled_csv(profiled.encode(), "C"))
    bad = worded.splitlines()
    cells = bad[3].split(",")
    cells[header.split(",").index("label")] = "2"
    bad[3] = ",".join(cells)
    with pytest.raises(InvalidInput) as refused:
        sector_fit.parse_labelled_csv("\n".join(bad).encode(), "C", lang)
    assert refused.value.field == names["label"]


def test_upload_fits_in_the_background_and_ends_as_a_challenger_with_its_report(fit_env):
    client = fit_env
    assert form_login(client, "sector_c").status_code == 303
    started = _upload(client, labelled_csv(seed=2))
    assert started.status_code == 303
    job_url = started.headers["location"]
    assert re.fullmatch(r"/sector/fit/\d+", job_url)
    page = client.get(job_url)
    assert page.status_code == 200 and "<progress" in page.text and 'src="/static/job.js"' in page.text
    seen, status = [], {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(job_url + "/status").json()
        seen.append(status["progress"])
        if status["done"]:
            break
        time.sleep(0.3)
    assert status["status"] == "succeeded", status
    assert seen == sorted(seen) and status["percent"] == 100
    assert status["model"] == "tiers-sector-C" and status["version"] == 2 and status["aliases"] == ["challenger"]
    assert "候选版本" in status["outcome"]
    done_page = client.get(job_url)
    assert status["report_url"] in done_page.text and 'href="/sector"' in done_page.text
    # the sector page shows it as the challenger one can promote
    sector = client.get("/sector")
    assert 'action="/sector/models/tiers-sector-C/versions/2/promote"' in sector.text
    # the report page: Chinese, charts drawn on the server, a way back
    report = client.get(status["report_url"])
    assert report.status_code == 200
    for chart in ("calibration-chart", "grade-score-chart", "shape-charts"):
        assert f'id="{chart}"' in report.text
    assert "<svg" in report.text and "<script" not in report.text
    assert "校准" in report.text and 'href="/sector"' in report.text
    assert "近12个月行政处罚次数" in report.text  # features by name, not code
    english = client.get(status["report_url"] + "?lang=en")
    assert "Calibration" in english.text


def test_demo_trains_a_champion_and_a_challenger_for_its_largest_section(tmp_path):
    """The demo's sector account gets the city's largest section, trained with `--challenger`."""
    import inspect

    from serving.cli import demo

    (tmp_path / "subjects.csv").write_text("uscc,industry\n1,C\n2,F\n3,F\n4,\n5,C\n6,F\n", encoding="utf-8")
    assert demo.demo_section(tmp_path / "subjects.csv") == "F"
    source = inspect.getsource(demo.demo)
    assert "train_args(store, seed, section," in source and "sector_section=section" in source
    assert '"--challenger", section' in inspect.getsource(demo.train_args)


def test_job_view_says_failures_and_interruptions_in_chinese():
    import datetime as dt

    from serving.db.tables import FitJob
    from serving.services import jobs

    now = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
    failed = FitJob(id=1, section="C", requested_by="sector_c", file_name="a.csv", rows=10, status="failed",
                    progress=0.4, stage="fitting scorecard", updated_at=now,
                    message="sector C has 12 adverse outcomes in training (< 300) and no general model was given")
    view = sector_fit.job_view(failed, "zh", now=now)
    assert view["done"] and view["status_text"] == "失败" and "只有 12 个" in view["message"]
    running = FitJob(id=2, section="C", requested_by="sector_c", file_name="a.csv", rows=10, status="running",
                     progress=0.5, stage="fitting gbm_additive", updated_at=now)
    assert sector_fit.job_view(running, "zh", now=now)["stage"] == "拟合候选模型 gbm_additive"
    later = sector_fit.job_view(running, "zh", now=now + jobs.STALE_AFTER + dt.timedelta(seconds=1))
    assert later["status"] == "interrupted" and later["done"]
