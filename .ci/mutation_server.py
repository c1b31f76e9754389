"""The test runner of one `.ci/mutation.py` worker, run by .venv's Python in the worker's copy of
the tree: `python -m pytest` for each mutant without starting Python again.

Started once, it imports what the tests import from the standard library and .venv (the names
come with each request, from the baseline run; never the project's own modules, which a mutant
changes). For each request (JSON on stdin: pytest arguments, timeout, modules to import first) it
forks; the child runs pytest.main on the tree as it is now (the worker has written the mutant) in
a session of its own, and the answer is its exit status, or that it ran out of time and was killed
with its process group, as cosmic-ray does with a test command.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time

# As `python -m pytest` in this directory: the tree first on sys.path.
sys.path[0] = os.getcwd()


def preload(names: list[str]) -> None:
    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - the child imports it again and sees the same error
                pass


def run(args: list[str], log: str) -> None:
    """In the child: pytest.main, then leave without running the parent's exit handlers."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    code = 1
    try:
        import pytest

        code = int(pytest.main(args))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - any error of the run is a failed run
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    import pytest  # noqa: F401 - imported once here, not in every child

    for line in sys.stdin:
        request = json.loads(line)
        preload(request.get("preload", []))
        if threading.active_count() != 1:
            # A thread started by an import would be missing from every child.
            raise SystemExit(f"mutation server: a preloaded module started a thread ({threading.enumerate()})")
        sys.stdout.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            run(request["args"], request["log"])
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - started > request["timeout"]:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.01)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "timeout": timed_out}), flush=True)


if __name__ == "__main__":
    main()
