"""The thread stress test (scripts/stress_threads.py), briefly: three threads train while two
toggle every mode; no crash, no error, finite parameters, each thread's own modes respected.
CI and the closing note run it for 30 s; here it runs 3 s."""

import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "stress_threads.py"


def test_training_from_three_threads_while_others_toggle_modes():
    done = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "3"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "errors 0" in done.stdout and "parameters finite True" in done.stdout
