"""No route of any service depends on a plain function: FastAPI runs a `def` dependency in its thread
pool (a thread hand-off per request, ~0.1 ms of CPU and a wait for a free worker under load), so every
dependency is written `async def` (a coroutine or an async generator). Builds each app, starts nothing."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from mif_common.suite import ServiceInfo, built_services


def _app(svc: ServiceInfo) -> FastAPI:
    app: FastAPI = importlib.import_module(f"{svc.package}.main").create_app()
    return app


def _dependencies(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def _runs_in_a_thread(call: object) -> bool:
    # As FastAPI decides: a class is built in the pool; an instance is judged by its `__call__`.
    target = call if inspect.isroutine(call) or inspect.isclass(call) else getattr(call, "__call__", call)
    return not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target))


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_every_dependency_is_a_coroutine(svc: ServiceInfo) -> None:
    threaded = set()
    for route in iter_route_contexts(_app(svc).router.routes):
        dependant = getattr(route.original_route, "dependant", None)
        if dependant is None:
            continue
        for call in _dependencies(dependant):
            if _runs_in_a_thread(call):
                threaded.add(f"{route.path}: {getattr(call, '__qualname__', call)!r}")
    assert not threaded, "dependencies FastAPI would run in its thread pool:\n" + "\n".join(sorted(threaded))
