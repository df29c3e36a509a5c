"""Pyflakes' rules over the code (ruff's F rules): an unused import, an undefined name, a redefined test
function or a placeholder-less f-string is a slip no behaviour test notices. Style is left to review."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_pyflakes_findings():
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F",
               "--output-format", "concise", "gateway", "mappings", "conformance", "tests", "bench"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
