"""`jobstatus-bot demo` where the stand-ins are absent (the Docker image): one line that says so, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Python as it is where bot/offline/ was never installed: None in sys.modules makes importing it (or any
# module in it) raise ModuleNotFoundError, as a missing package does.
WITHOUT_OFFLINE = """\
import sys
sys.modules["bot.offline"] = None
from bot.cli import main
sys.exit(main(["demo"]))
"""


def test_demo_without_the_stand_ins_says_so_in_one_line_and_exits_2() -> None:
    out = subprocess.run([sys.executable, "-c", WITHOUT_OFFLINE], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "jobstatus-bot: the demo is not in this installation (the Docker image leaves bot/offline/ out)"]
