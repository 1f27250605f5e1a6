"""benchmarks/city_scale.py --db-dir --reuse with --postgres: the data is in the server, the markers
in the directory; a marker counts only for the database it was made for."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _city_scale():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("city_scale_bench", ROOT / "benchmarks" / "city_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_step_done_for_one_database_is_not_done_for_another(tmp_path):
    bench = _city_scale()
    one = "postgresql+psycopg://tiers@/tiers_city?host=/tmp&port=55432"
    other = "postgresql+psycopg://tiers@/tiers_other?host=/tmp&port=55432"
    assert bench._done(tmp_path, "build", one) is None
    bench._mark(tmp_path, "build", {"grades_per_s": 1.0}, one)
    assert bench._done(tmp_path, "build", one) == {"grades_per_s": 1.0}
    assert bench._done(tmp_path, "build", other) is None


def test_the_deep_and_last_list_cursors_are_followed_not_refused_as_changed(tmp_path):
    """The benchmark's deep and last pages are made from cursors into grade A's rank index: made
    under the list's current generation (a load advances it), they are followed and show subjects;
    under another generation the list answers "changed" with no rows, which timed nothing."""
    from serving.db.session import dispose_engine, iter_session
    from serving.security import Principal
    from serving.services.subject_lists import ListFilter, subject_page

    bench = _city_scale()
    url = f"sqlite:///{tmp_path / 'city.db'}"
    bench.build(url, 600, 2, 200)
    session = next(iter_session(url))
    try:
        cursors = bench.list_cursors(session)
        reader = Principal(username="bench_regulator", role="regulator", department="samr")
        for name, cursor in cursors.items():
            page = subject_page(session, reader, ListFilter(), after=cursor, limit=50)
            assert not page.changed, name
            assert page.rows, name
            assert all(grade is not None and grade.grade == "A" for _, grade in page.rows), name
        assert len(subject_page(session, reader, ListFilter(), after=cursors["last"], limit=50).rows) == 10
    finally:
        session.close()
        dispose_engine(url)
