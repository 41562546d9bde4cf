"""core.logs: `[tag] message` lines on stdout (warnings on stderr) once an entry point
called setup(); importing the project's modules configures nothing."""

import json
import subprocess
import sys

from core.logs import get_logger, setup
from core.names import PROJECT_ROOT


def test_progress_lines_go_to_stdout_and_problems_to_stderr(capsys):
    setup()
    setup()  # twice: still one line per message
    get_logger("train").info("credit_risk: saved credit_risk:abc")
    get_logger("drift").warning("could not push")
    out, err = capsys.readouterr()
    assert out == "[train] credit_risk: saved credit_risk:abc\n"
    assert err == "[drift] could not push\n"


def test_importing_the_modules_configures_no_logging():
    code = (
        "import json, logging\n"
        "import riskbento.__main__, training.train, training.retrain, jobs.batch, jobs.drift\n"
        "import loadtest.bench, loadtest.run\n"
        "print(json.dumps([len(logging.getLogger(n).handlers) for n in ('', 'riskbento')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, 0]
