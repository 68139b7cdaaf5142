"""The real ``loudou`` command in a subprocess, for tests of what a user at a terminal sees."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loudou.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "C.UTF-8", **(env or {})},
        timeout=120,
    )
