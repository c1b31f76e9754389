"""One worker of `.ci/mutation.py`, run by .venv-mutation's Python in a copy of the tree of its own.

Reads one job a line on stdin (JSON: module, operator, occurrence, timeout, pytest arguments,
modules to preload) and answers one line on stdout for each. cosmic-ray writes the mutant into the
copy and puts the file back afterwards (`cosmic_ray.mutating.use_mutation`, as `cosmic-ray
mutate-and-test` does); in between, .ci/mutation_server.py (.venv's Python) runs pytest on the
copy. A non-zero exit status, or running out of time, kills the mutant, as with cosmic-ray's own
test runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.mutating import _make_diff, use_mutation

LOG = Path(".mutation-test.log").resolve()


def main(python: str) -> None:
    server = subprocess.Popen([python, str(Path(__file__).with_name("mutation_server.py"))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in sys.stdin:
        job = json.loads(line)
        module = Path(job["module"])
        operator = cosmic_ray.plugins.get_operator(job["operator"])()
        answer = {"worker_outcome": "normal", "test_outcome": "", "diff": "", "output": ""}
        try:
            with use_mutation(module, operator, job["occurrence"]) as (original, mutated):
                if mutated is None:
                    answer["worker_outcome"] = "no_test"
                else:
                    server.stdin.write(json.dumps({"args": job["args"], "timeout": job["timeout"], "log": str(LOG),
                                                   "preload": job.get("preload", [])}) + "\n")
                    server.stdin.flush()
                    reply = server.stdout.readline()
                    if not reply:
                        raise RuntimeError(f"mutation server stopped (exit status {server.poll()})")
                    ran = json.loads(reply)
                    answer["test_outcome"] = "killed" if ran["timeout"] or ran["returncode"] != 0 else "survived"
                    answer["output"] = "timeout" if ran["timeout"] else LOG.read_text(errors="replace")[-2000:]
                    answer["diff"] = "\n".join(_make_diff(original, mutated, module))
        except Exception as error:  # noqa: BLE001 - reported as a mutant that could not run
            answer = {"worker_outcome": "exception", "test_outcome": "incompetent", "diff": "", "output": repr(error)}
        print(json.dumps(answer), flush=True)
    server.stdin.close()
    server.wait()


if __name__ == "__main__":
    main(sys.argv[1])
