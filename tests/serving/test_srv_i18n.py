"""Every text a template asks for exists in Chinese and English (a missing key would show raw)."""

from __future__ import annotations

import re
from importlib import resources

from serving.i18n import PAGE_TEXTS, TEXTS, page_text, text

# Template helper → the section it reads (see the routes' render calls); None = common texts.
HELPERS = {"t": None, "tp": "plans", "s": "sector", "m": "monitoring", "pp": "public"}
CALL = re.compile(r"\b(t|tp|s|m|pp)\(\s*['\"]([A-Za-z_]+)['\"]\s*\)")


def _template_calls() -> set[tuple[str, str]]:
    folder = resources.files("serving") / "templates"
    calls = set()
    for entry in folder.iterdir():
        if entry.name.endswith(".html"):
            calls |= set(CALL.findall(entry.read_text(encoding="utf-8")))
    return calls


def test_templates_use_the_text_helpers() -> None:
    helpers = {helper for helper, _ in _template_calls()}
    assert helpers == set(HELPERS), "a template helper was added or renamed: update HELPERS"


def test_every_text_a_template_asks_for_exists() -> None:
    missing = [
        f"{helper}({key!r})"
        for helper, key in sorted(_template_calls())
        if key not in TEXTS and key not in PAGE_TEXTS.get(HELPERS[helper] or "", {})
    ]
    assert not missing


def test_lookups_prefer_the_page_section_then_fall_back_to_common_texts() -> None:
    assert page_text("sector", "outcome", "zh") != page_text("plans", "outcome", "zh")  # same key, two pages
    assert page_text("plans", "back", "en") == text("back", "en") == "Back"
    assert page_text("monitoring", "no_such_key", "zh") == "no_such_key"


def test_page_sections_add_texts_rather_than_repeat_common_ones() -> None:
    repeated = [(page, key) for page, texts in PAGE_TEXTS.items() for key, value in texts.items() if TEXTS.get(key) == value]
    assert not repeated
    every_entry = [*TEXTS.values(), *(v for texts in PAGE_TEXTS.values() for v in texts.values())]
    assert all(set(entry) == {"zh", "en"} and all(entry.values()) for entry in every_entry)


def test_the_catalogue_refuses_a_text_missing_a_language_or_an_endpoint_pattern_that_does_not_compile() -> None:
    import pytest

    from configfile import load_toml
    from serving.i18n import ENDPOINT_NAMES, TextCatalogue, TextCatalogueError

    packaged = (resources.files("serving") / "texts.toml").read_text(encoding="utf-8")
    assert load_toml(packaged, TextCatalogue, "texts.toml", TextCatalogueError).texts == TEXTS
    for broken, where in [(packaged.replace('login = { zh = "登录", en = "Log in" }', 'login = { zh = "登录" }'),
                           "texts.login"),
                          (packaged.replace('logout = { zh = "退出", en = "Log out" }', 'logout = { zh = "退出", en = "" }'),
                           "texts.logout.en"),
                          (packaged.replace(f"pattern = '{ENDPOINT_NAMES[0][0]}'", "pattern = '(unclosed'"),
                           "endpoints.0.pattern")]:
        assert broken != packaged
        with pytest.raises(TextCatalogueError, match=rf"texts\.toml: .*{re.escape(where)}"):
            load_toml(broken, TextCatalogue, "texts.toml", TextCatalogueError)
