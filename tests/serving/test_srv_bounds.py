"""Bounds declared once in serving.validation hold at the routes that use them: an id in a URL is a
row id (1 … MAX_ROW_ID), a read's purpose is PURPOSE_LENGTH long; anything else is invalid input."""

from __future__ import annotations

import pytest

from serving.validation import MAX_ROW_ID, PURPOSE_LENGTH


@pytest.mark.parametrize("plan_id", [0, MAX_ROW_ID + 1])
def test_an_id_outside_the_row_id_range_is_invalid_input(client, auth, plan_id):
    assert client.get(f"/api/v1/plans/{plan_id}", headers=auth("reg_samr")).status_code == 422


def test_the_largest_row_id_is_looked_up(client, auth):
    assert client.get(f"/api/v1/plans/{MAX_ROW_ID}", headers=auth("reg_samr")).status_code == 404


LOW, HIGH = PURPOSE_LENGTH["min_length"], PURPOSE_LENGTH["max_length"]


@pytest.mark.parametrize("length, status", [(LOW - 1, 422), (LOW, 200), (HIGH, 200), (HIGH + 1, 422)])
def test_a_purpose_is_refused_only_outside_its_length(client, auth, length, status):
    response = client.get("/api/v1/warnings", params={"purpose": "查" * length}, headers=auth("reg_samr"))
    assert response.status_code == status
