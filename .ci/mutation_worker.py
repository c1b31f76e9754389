"""One worker of `.ci/mutation.py`, run by .venv-mutation's Python in a copy of the tree of its own.

Reads one job a line on stdin (JSON: module, operator, occurrence, timeout, test command as a
list) and answers one line on stdout for each. cosmic-ray writes the mutant into the copy, runs the
command and puts the file back (`cosmic_ray.mutating.mutate_and_test`, what `cosmic-ray
mutate-and-test` runs): a non-zero exit status, or running out of time, kills the mutant.
"""

from __future__ import annotations

import json
import shlex
import sys

from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_item import MutationSpec


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        spec = MutationSpec(module_path=job["module"], operator_name=job["operator"], occurrence=job["occurrence"],
                            start_pos=(job["line"], job["column"]), end_pos=(job["line"], job["column"] + 1))
        # cosmic-ray splits the command with shlex: node ids with spaces survive the round trip.
        result = mutate_and_test([spec], shlex.join(job["command"]), job["timeout"])
        print(json.dumps({"worker_outcome": result.worker_outcome.name.lower(),
                          "test_outcome": result.test_outcome.name.lower() if result.test_outcome else "",
                          "diff": result.diff or "", "output": (result.output or "")[-2000:]}), flush=True)


if __name__ == "__main__":
    main()
