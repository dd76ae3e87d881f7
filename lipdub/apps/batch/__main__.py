"""`python -m lipdub.apps.batch RESULT.json` with a job as JSON on stdin: one attempt (the child process of a local
batch), its outcome written to RESULT."""

import json
import logging
import sys
from pathlib import Path

from lipdub.apps.batch.attempts import attempt, write_json
from lipdub.apps.batch.jobs import Job


def _child_main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="lipdub: %(message)s")
    job = Job(**json.loads(sys.stdin.read()))
    outcome = attempt(job)
    write_json(Path(argv[0]), outcome)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
