"""Core API behaviour: grades with reasons, records, masking, error shape, health."""

from __future__ import annotations

from serving.security import mask_id_number, mask_name


def test_enterprise_sees_own_grade_with_reasons(client, auth, world):
    r = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grade"] in "ABCD" and body["reasons"] and body["what_if"]
    # the waterfall adds up: base + contributions = score
    assert abs(body["base_score"] + sum(x["contribution"] for x in body["reasons"]) - body["score"]) < 1e-9


def test_staff_read_needs_purpose(client, auth, world):
    r = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("reg_samr"))
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "purpose"
    r = client.get(f"/api/v1/subjects/{world.ent1}/grade", params={"purpose": "日常监管"}, headers=auth("reg_samr"))
    assert r.status_code == 200


def test_subject_is_masked(client, auth, world):
    r = client.get(f"/api/v1/subjects/{world.ent1}", headers=auth("ent1"))
    body = r.json()
    assert body["legal_rep_name"] == mask_name("张三丰") == "张**"
    assert body["legal_rep_id"] == mask_id_number("320102198001011234") == "3201**********1234"


def test_error_shape_for_unknown_route_and_bad_json(client, auth, world):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and set(r.json()["error"]) >= {"code", "message"}
    r = client.post(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1"), json={"record_id": "R1"})
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == "reason" and "reason" in err["message"]


def test_health_reports_ok(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.json()
