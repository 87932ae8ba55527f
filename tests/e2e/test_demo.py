"""`jobstatus-bot demo` as a new user runs it: watch a job that fails, Stop watching, Rewatch."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """\
/jobstatus watch epm-demo 1881
show
click 2
click 1
sleep 16
show
quit
"""


def test_demo_shows_failure_message_and_log_path_and_handles_stop_and_rewatch() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "demo"], input=SCRIPT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "[you clicked stop]" in text and "Stopped watching (by @ana)" in text
    assert "[you clicked rewatch]" in text and "Watching again (by @ana)" in text
    final = text[text.rindex("#general"):]
    assert "Data load failed for location GL_LOC" in final
    assert "outbox/logs/GL_DATA_LOAD_1881.log" in final
    assert "No periods were identified" in final  # the log excerpt
    assert "[file] GL_DATA_LOAD_1881.log" in final
    assert "Traceback" not in out.stderr
