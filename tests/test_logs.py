"""A job's stderr, logging and uncaught errors end up in its log; the terminal gets one line."""

import subprocess
import sys


def test_log_to_captures_progress_logging_and_errors(tmp_path):
    log = tmp_path / "job.log"
    code = (
        "import logging, sys; from eegfm.logs import log_to; "
        f"log_to({str(log)!r}); print('progress 50%', file=sys.stderr); "
        "logging.getLogger('eegfm.test').info('hello'); raise ValueError('bad input: fix X')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    text = log.read_text()
    assert "progress 50%" in text and "eegfm.test: hello" in text and "Traceback" in text
    assert "ValueError: bad input: fix X" in proc.stderr and "Traceback" not in proc.stderr
