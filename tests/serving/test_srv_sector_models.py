"""The sector department's model API and page on a real MLflow SQLite registry in tmp_path:
list, validation report, promotion through training's gate (refused → 409 with figures,
accepted, forced by admin), the audit in the service DB, and who may do what."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from srv_fixtures import form_login

from serving.db.tables import PromotionAudit
from serving.keys import with_keys
from serving.security import Principal, create_access_token, csrf_token, decode_access_token
from serving.services.model_registry import artifacts_dir_for, may_promote, may_see
from training.pipeline import TrainingConfig, register_result, train_model
from training.registry import ModelRegistry
from training.sector_policy import TrainingPolicy

# training's own synthetic helper (tests/training is not a package: load the file by path)
_spec = importlib.util.spec_from_file_location(
    "trn_synthetic_for_sector", Path(__file__).parents[1] / "training" / "trn_synthetic.py")
trn_synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trn_synthetic)

SECTOR_MODEL = "tiers-sector-C"
GENERAL = "tiers-general"
# key risk features removed: a clearly worse challenger the gate must refuse
KEY_FEATURES = ("penalties_general", "penalties_serious", "inspection_problems")
pytestmark = pytest.mark.xdist_group("srv_sector_models")


@pytest.fixture(scope="module")
def trained():
    """A good and a deliberately worse model trained by training's own API (small, fast)."""
    data = trn_synthetic.make_dataset(1500, seed=11)
    config = TrainingConfig(train_as_of=trn_synthetic.TRAIN_AS_OF, validate_as_of=trn_synthetic.VALIDATE_AS_OF,
                            candidates=("gbm_additive",), n_boot=30)
    good = train_model(data, trn_synthetic.FEATURES, config=config)
    worse = train_model(data, trn_synthetic.FEATURES, config=config,
                        policy=TrainingPolicy(exclude_features=KEY_FEATURES), champion=good.model)
    return good, worse


@pytest.fixture(scope="module")
def populated_store(tmp_path_factory, trained) -> Path:
    """A registry directory with tiers-general v1 (good) and tiers-sector-C v1 good (champion),
    v2 worse (challenger), v3 good (challenger); copied per test so promotions do not leak."""
    root = tmp_path_factory.mktemp("mlflow-sector")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = ModelRegistry(uri, artifact_location=artifacts_dir_for(uri))
    good, worse = trained
    register_result(registry, good)
    for result in (good, worse, good):
        register_result(registry, dataclasses.replace(result, name=SECTOR_MODEL))
    return root


@pytest.fixture
def registry(settings, populated_store) -> ModelRegistry:
    """The registry the service reads (settings.mlflow_tracking_uri), filled from the template."""
    uri = settings.mlflow_tracking_uri
    target = Path(uri.removeprefix("sqlite:///")).parent
    target.mkdir(parents=True, exist_ok=True)
    # artifact URIs in the store are absolute paths into the template's artifacts, only read here;
    # promotions change aliases, which live in the copied database
    shutil.copy(populated_store / "mlflow.db", target / "mlflow.db")
    return ModelRegistry(uri, artifact_location=artifacts_dir_for(uri))


def bearer(settings, principal: Principal) -> dict[str, str]:
    token, _ = create_access_token(principal, with_keys(settings).jwt_key, 30)
    return {"Authorization": f"Bearer {token}"}


def sector_h(client, auth, settings) -> dict[str, str]:
    """A sector user of section H (created: a token for a user who does not exist is refused)."""
    r = client.post("/api/v1/admin/users", headers=auth("admin"), json={
        "username": "sector_h", "password": "long-random-password", "role": "sector", "section": "H"})
    assert r.status_code in (201, 409), r.text
    return bearer(settings, Principal(username="sector_h", role="sector", section="H"))


def audit_rows(session) -> list[PromotionAudit]:
    session.expire_all()
    return list(session.scalars(select(PromotionAudit).order_by(PromotionAudit.id)))


def test_visibility_rules() -> None:
    sector_c = Principal(username="c", role="sector", section="C")
    assert may_see(sector_c, GENERAL) and not may_promote(sector_c, GENERAL)
    assert may_see(sector_c, SECTOR_MODEL) and may_promote(sector_c, SECTOR_MODEL)
    assert not may_see(sector_c, "tiers-sector-H") and not may_promote(sector_c, "tiers-sector-H")
    admin = Principal(username="a", role="admin")
    assert all(may_promote(admin, n) for n in (GENERAL, SECTOR_MODEL, "tiers-sector-H"))
    for role in ("enterprise", "regulator", "analyst"):
        assert not may_see(Principal(username="x", role=role, section="C"), SECTOR_MODEL)


def test_no_registry_means_no_models_and_nothing_is_created(client, auth, settings) -> None:
    assert client.get("/api/v1/models", headers=auth("admin")).json() == []
    r = client.get(f"/api/v1/models/{SECTOR_MODEL}/versions/1/report", headers=auth("admin"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_registry"
    r = client.post(f"/api/v1/models/{SECTOR_MODEL}/versions/1/promote", headers=auth("admin"), json={"reason": "x"})
    assert r.status_code == 404
    assert not Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).exists()


@pytest.mark.slow
def test_list_and_report(client, auth, settings, registry) -> None:
    listed = {m["name"]: m for m in client.get("/api/v1/models", headers=auth("sector_c")).json()}
    assert set(listed) == {GENERAL, SECTOR_MODEL}
    sector = listed[SECTOR_MODEL]
    assert (sector["champion"], sector["challenger"], sector["can_promote"]) == (1, 3, True)
    assert not listed[GENERAL]["can_promote"]
    for v in sector["versions"]:
        assert 0.5 < v["metrics"]["oot_auc"] <= 1 and 0 <= v["metrics"]["oot_brier"] <= 1
        assert v["metrics"]["oot_auc_low"] <= v["metrics"]["oot_auc"] <= v["metrics"]["oot_auc_high"]
        assert len(v["cutoffs"]) == 3 and v["cutoffs"] == sorted(v["cutoffs"])
    # the worse model (key features excluded) is visibly worse in the listing
    auc = {v["version"]: v["metrics"]["oot_auc"] for v in sector["versions"]}
    assert auc[2] < auc[1] == pytest.approx(auc[3])

    report = client.get(f"/api/v1/models/{SECTOR_MODEL}/versions/1/report", headers=auth("sector_c"))
    assert report.status_code == 200
    content = report.json()
    assert content["discrimination"]["auc"]["value"] == pytest.approx(auc[1])
    assert [row["grade"] for row in content["grades"]["table"]] == list("ABCD")
    html = client.get(f"/api/v1/models/{SECTOR_MODEL}/versions/1/report.html", headers=auth("sector_c"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "attachment" in html.headers["content-disposition"] and "<html" in html.text.lower()
    missing = client.get(f"/api/v1/models/{SECTOR_MODEL}/versions/99/report", headers=auth("sector_c"))
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "version"

    # another section sees neither the list entry nor the report; enterprises see nothing
    h_user = sector_h(client, auth, settings)
    assert {m["name"] for m in client.get("/api/v1/models", headers=h_user).json()} == {GENERAL}
    # another section's model answers the 404 of a model that does not exist (no existence oracle)
    assert client.get(f"/api/v1/models/{SECTOR_MODEL}/versions/1/report", headers=h_user).status_code == 404
    assert client.get("/api/v1/models", headers=auth("ent1")).status_code == 403
    assert client.get("/api/v1/models").status_code == 401


@pytest.mark.slow
def test_promotion_refused_accepted_forced_and_audited(client, auth, settings, registry, session) -> None:
    url = f"/api/v1/models/{SECTOR_MODEL}/versions/{{}}/promote"
    refused = client.post(url.format(2), headers=auth("sector_c"), json={"reason": "季度重训"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"]["code"] == "gate_refused" and not body["gate"]["passed"]
    failed = [c for c in body["gate"]["checks"] if not c["passed"]]
    assert "auc" in {c["name"] for c in failed}
    auc_check = next(c for c in failed if c["name"] == "auc")
    assert auc_check["challenger"] < auc_check["champion"]
    assert registry.alias_version(SECTOR_MODEL, "champion") == 1

    # a sector user may not force, nor promote the general model or another section's
    assert client.post(url.format(2), headers=auth("sector_c"), json={"reason": "x", "force": True}).status_code == 403
    assert client.post(f"/api/v1/models/{GENERAL}/versions/1/promote", headers=auth("sector_c"),
                       json={"reason": "x"}).status_code == 403
    h_user = sector_h(client, auth, settings)
    assert client.post(url.format(3), headers=h_user, json={"reason": "x"}).status_code == 404
    assert client.post(url.format(3), headers=auth("ent1"), json={"reason": "x"}).status_code == 403
    assert registry.alias_version(SECTOR_MODEL, "champion") == 1

    accepted = client.post(url.format(3), headers=auth("sector_c"), json={"reason": "同等表现，数据更新"})
    assert accepted.status_code == 200, accepted.text
    event = accepted.json()
    assert (event["from_version"], event["to_version"], event["forced"]) == (1, 3, False)
    assert event["gate"]["passed"] and event["user"] == "sector_c"
    assert registry.alias_version(SECTOR_MODEL, "champion") == 3
    again = client.post(url.format(3), headers=auth("sector_c"), json={"reason": "again"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_champion"

    forced = client.post(url.format(2), headers=auth("admin"), json={"reason": "监管要求临时切换", "force": True})
    assert forced.status_code == 200 and forced.json()["forced"]
    assert registry.alias_version(SECTOR_MODEL, "champion") == 2

    rows = audit_rows(session)
    assert [(r.decided_by, r.from_version, r.to_version, r.decision) for r in rows] == [
        ("sector_c", "1", "2", "refused"), ("sector_c", "1", "3", "promoted"), ("admin", "3", "2", "forced")]
    assert rows[0].evidence["gate"]["figures"]["auc_difference"] < 0 and rows[2].evidence["reason"] == "监管要求临时切换"

    audit = client.get("/api/v1/models/audit", headers=auth("sector_c")).json()
    assert [a["decision"] for a in audit] == ["forced", "promoted", "refused"]  # newest first
    assert audit[2]["gate"]["figures"]["challenger_auc"] < audit[2]["gate"]["figures"]["champion_auc"]
    assert client.get("/api/v1/models/audit", headers=h_user).json() == []
    assert client.get("/api/v1/models/audit", headers=auth("ent1")).status_code == 403


def page_login(client, settings, username: str) -> str:
    r = form_login(client, username)
    assert r.status_code == 303
    cookie = r.cookies.get("tiers_session")
    client.cookies.set("tiers_session", cookie)
    return csrf_token(settings.jwt_key, decode_access_token(cookie, settings.jwt_key).token_id)


@pytest.mark.slow
def test_sector_page_shows_models_and_gate_outcome(client, settings, registry, session) -> None:
    csrf = page_login(client, settings, "sector_c")
    html = client.get("/sector").text
    assert "评价模型" in html and f'data-name="{SECTOR_MODEL}"' in html and f'data-name="{GENERAL}"' in html
    assert "等级表" in html and "在用版本" in html and "候选版本" in html
    assert f"/sector/models/{SECTOR_MODEL}/versions/2/promote" in html
    assert f"/sector/models/{GENERAL}/versions/1/promote" not in html  # general model is read-only
    assert 'name="force"' not in html  # only admins may force
    assert "Grading models" in client.get("/sector", params={"lang": "en"}).text
    report = client.get(f"/sector/models/{SECTOR_MODEL}/versions/1/report")
    assert report.status_code == 200 and "<html" in report.text.lower()

    path = f"/sector/models/{SECTOR_MODEL}/versions/2/promote"
    forged = client.post(path, data={"reason": "x", "csrf_token": "0" * 64})
    assert forged.status_code == 403 and registry.alias_version(SECTOR_MODEL, "champion") == 1
    refused = client.post(path, data={"reason": "季度重训", "csrf_token": csrf})
    assert refused.status_code == 409
    assert 'data-outcome="refused"' in refused.text and 'class="check failed" data-check="auc"' in refused.text
    accepted = client.post(f"/sector/models/{SECTOR_MODEL}/versions/3/promote",
                           data={"reason": "数据更新", "csrf_token": csrf})
    assert accepted.status_code == 200 and 'data-outcome="promoted"' in accepted.text
    assert registry.alias_version(SECTOR_MODEL, "champion") == 3
    assert [r.decision for r in audit_rows(session)] == ["refused", "promoted"]
    assert client.get("/sector").text.count('class="audit-row"') == 2


@pytest.mark.slow
def test_cli_promotions_land_in_the_service_audit(client, auth, settings, registry, session, monkeypatch,
                                                   tmp_path) -> None:
    """`tiers promote` audits into the service database (one audit with the pages and the API);
    `tiers promotions` reads it back."""
    import json

    from typer.testing import CliRunner

    from serving.cli.main import app as cli
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        common = ["--tracking-uri", settings.mlflow_tracking_uri, "--artifacts", str(tmp_path / "art")]
        refused = CliRunner().invoke(cli, ["promote", SECTOR_MODEL, "2", "--user", "ops", "--reason", "retrain",
                                           *common, "--json"])
        assert refused.exit_code == 1, refused.output
        promoted = CliRunner().invoke(cli, ["promote", SECTOR_MODEL, "3", "--user", "ops", "--reason", "retrain",
                                            *common, "--json"])
        assert promoted.exit_code == 0, promoted.output
        listed = CliRunner().invoke(cli, ["promotions", "--model", SECTOR_MODEL, "--json"])
        assert listed.exit_code == 0, listed.output
        shown = json.loads(listed.stdout)
        text = CliRunner().invoke(cli, ["promotions"])
        assert text.exit_code == 0 and "ops" in text.stdout and "refused" in text.stdout
    finally:
        get_settings.cache_clear()
    assert [(r.decision, r.to_version, r.decided_by) for r in audit_rows(session)] == [
        ("refused", "2", "ops"), ("promoted", "3", "ops")]
    assert [(e["decision"], e["to_version"]) for e in shown] == [("promoted", "3"), ("refused", "2")]
    api = client.get("/api/v1/models/audit", headers=auth("sector_c")).json()
    assert [a["decision"] for a in api] == ["promoted", "refused"]
