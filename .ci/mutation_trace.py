"""The baseline run of `.ci/mutation.py`: which test executes which line of the mutated modules.

Loaded as a pytest plugin (`-p mutation_trace`) and, in the processes the tests start, from a
sitecustomize.py, both with coverage.py from .venv-mutation on PYTHONPATH (never installed into
.venv). Every line executed is recorded under a context:

- the test's node id, from the start of its setup to the end of its teardown;
- "import" before the first test (collection imports the modules; their module-level code and
  anything it calls runs once for every test) and "between" after a test's teardown;
- "fixture N" for the setup of a fixture wider than one test, "cache N" for the first call of a
  `functools.cache`/`lru_cache` function of the project or its tests: their results are used by
  later tests that never execute those lines again, so each such context records which contexts
  used its result (`uses` in the JSON written at the end), and the runner hands its lines to
  every test that used it, directly or through another cache or fixture.

A process started by a test inherits the context through OBS_MUTATION_CONTEXT.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import time
from pathlib import Path

import coverage

OUT = Path(os.environ["OBS_MUTATION_TRACE_OUT"])
INCLUDE = os.environ["OBS_MUTATION_TRACE_INCLUDE"].split(os.pathsep)
# Functions of these packages get the tracking cache below; any other keeps functools' own.
PROJECT = ("tests", "conftest", "components", "policies", "probes", "tools", "__main__")

_counter = itertools.count()
_uses: dict[str, set[str]] = {}
_cov: coverage.Coverage | None = None
_context = "import"


def _start(name: str, context: str) -> None:
    global _cov
    _cov = coverage.Coverage(data_file=str(OUT / f"coverage.{name}"), include=INCLUDE, config_file=False, branch=False)
    _cov.start()
    _switch(context)


def _switch(context: str) -> str:
    """Record from now on under `context`; returns the one before."""
    global _context
    previous, _context = _context, context
    os.environ["OBS_MUTATION_CONTEXT"] = context
    if _cov is not None:
        _cov.switch_context(context)
    return previous


def _use(provider: str) -> None:
    _uses.setdefault(_context, set()).add(provider)


# ---------------------------------------------------------------- caches
_real_lru_cache, _real_cache = functools.lru_cache, functools.cache


def _tracked(function):
    """functools.cache's behaviour (errors are not cached); the first call of each argument list
    runs under a context of its own, and every call records that its caller used it."""
    results: dict = {}
    contexts: dict = {}

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        if key not in results:
            contexts[key] = context = f"cache {next(_counter)} {function.__module__}.{function.__qualname__}"
            _use(context)
            previous = _switch(context)
            try:
                results[key] = function(*args, **kwargs)
            finally:
                _switch(previous)
        else:
            _use(contexts[key])
        return results[key]

    wrapper.cache_clear = lambda: (results.clear(), contexts.clear()) and None
    return wrapper


def _project(function) -> bool:
    return (getattr(function, "__module__", None) or "").split(".")[0] in PROJECT


def lru_cache(maxsize=128, typed=False):
    if callable(maxsize) and not isinstance(maxsize, bool):
        return _tracked(maxsize) if _project(maxsize) else _real_lru_cache(maxsize)
    real = _real_lru_cache(maxsize, typed)
    return lambda function: _tracked(function) if _project(function) else real(function)


def cache(function):
    return _tracked(function) if _project(function) else _real_cache(function)


# ---------------------------------------------------------------- subprocesses
def subprocess_start() -> None:
    """From sitecustomize.py: a Python process a test started records under the test's context."""
    _start(f"{os.getpid()}.{time.monotonic_ns()}", os.environ.get("OBS_MUTATION_CONTEXT", "unknown"))
    import atexit

    atexit.register(_stop)


def _stop() -> None:
    if _cov is not None:
        _cov.stop()
        _cov.save()


# ---------------------------------------------------------------- the pytest plugin
if os.environ.get("OBS_MUTATION_TRACE_PLUGIN") == "1":
    # The only copy of this module the pytest process imports: the environment variable is removed
    # so that sitecustomize.py in its child processes does not take it for the plugin.
    os.environ.pop("OBS_MUTATION_TRACE_PLUGIN")
    functools.lru_cache, functools.cache = lru_cache, cache
    _start("main", "import")
    _fixture_context: dict[int, str] = {}
    _order: list[str] = []
    _seconds: dict[str, float] = {}
    _failed: list[str] = []

    import pytest

    def pytest_collection_finish(session):
        # Modules no test file imports at collection are imported now, so that their module-level
        # code runs under "import" and not under whichever test first imports them.
        for name in os.environ.get("OBS_MUTATION_TRACE_MODULES", "").split(os.pathsep):
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - a module that cannot be imported alone is imported by its tests
                pass

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(fixturedef, request):
        if fixturedef.scope == "function":
            yield
            return
        context = f"fixture {next(_counter)} {fixturedef.argname}"
        _fixture_context[id(fixturedef)] = context
        _use(context)
        previous = _switch(context)
        try:
            yield
        finally:
            _switch(previous)

    def pytest_runtest_logstart(nodeid, location):
        _order.append(nodeid)
        _seconds[nodeid] = time.monotonic()
        _switch(nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(item):
        # Every wider fixture the test uses, by name or through another fixture.
        for definitions in item._fixtureinfo.name2fixturedefs.values():
            for fixturedef in definitions:
                if id(fixturedef) in _fixture_context:
                    _use(_fixture_context[id(fixturedef)])

    def pytest_runtest_logreport(report):
        if report.failed:
            _failed.append(report.nodeid)

    def pytest_runtest_logfinish(nodeid, location):
        _seconds[nodeid] = time.monotonic() - _seconds[nodeid]
        _switch("between")

    def pytest_sessionfinish(session, exitstatus):
        _stop()
        (OUT / "tests.json").write_text(json.dumps({
            "order": _order, "seconds": _seconds, "failed": _failed,
            "uses": {context: sorted(providers) for context, providers in _uses.items()},
        }))
