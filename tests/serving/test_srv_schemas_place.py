"""One rule, one place (issue 16): the API's request and response models live in
``serving/schemas.py`` (the ``*In``/``*Create`` → ``*Out`` families), never inline in a route
module, where the next route would copy them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pydantic import BaseModel

import serving.routes


def test_no_route_module_defines_a_pydantic_model():
    inline: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(serving.routes.__path__):
        module = importlib.import_module(f"serving.routes.{info.name}")
        models = [name for name, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, BaseModel) and obj.__module__ == module.__name__]
        if models:
            inline[module.__name__] = models
    assert not inline, f"move these to serving/schemas.py: {inline}"
