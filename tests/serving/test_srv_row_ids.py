"""An id in a URL is a row id: 1 … MAX_ROW_ID (a 32-bit INTEGER key); anything else is invalid input."""

from __future__ import annotations

import pytest

from serving.validation import MAX_ROW_ID


@pytest.mark.parametrize("plan_id", [0, MAX_ROW_ID + 1])
def test_an_id_outside_the_row_id_range_is_invalid_input(client, auth, plan_id):
    assert client.get(f"/api/v1/plans/{plan_id}", headers=auth("reg_samr")).status_code == 422


def test_the_largest_row_id_is_looked_up(client, auth):
    assert client.get(f"/api/v1/plans/{MAX_ROW_ID}", headers=auth("reg_samr")).status_code == 404
