"""The README's quick start stays true: its commands are the ones CI runs, and the app command starts.

``.ci/run`` executes the install command (minus its last step, starting the app) and the test
command from the README's marked blocks; this test runs that last step, `streamlit run app.py`,
headless on 127.0.0.1, and checks the server answers and serves the app.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quickstart(marker: str) -> str:
    match = re.search(rf"<!-- quickstart:{marker} -->\s*```bash\n(.+?)\n```", README, re.S)
    assert match, f"README has no quick-start block '{marker}'"
    return match.group(1).strip()


def test_readme_has_the_two_quickstart_commands():
    install = quickstart("install")
    steps = [s.strip() for s in install.split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    assert steps[1] == ".venv/bin/pip install torch==2.13.0"  # before anything that depends on torch
    assert steps[2].startswith(".venv/bin/pip install -e") and "[dev]" in steps[2]
    assert steps[-1] == ".venv/bin/streamlit run app.py"
    assert "pytest" in quickstart("test")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "block install" in ci and "block test" in ci


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("launcher", ["readme", "inbedder app"])
def test_the_app_command_starts_the_app(launcher, tmp_path):
    command = shlex.split(quickstart("install").split("&&")[-1])
    assert command[:3] == [".venv/bin/streamlit", "run", "app.py"]
    if launcher == "readme":
        start = [str(Path(sys.executable).with_name("streamlit")), *command[1:]]
    else:  # the console script passes streamlit's options through
        start = [sys.executable, "-m", "inbedder_core.cli", "app"]
    port = _free_port()
    env = dict(os.environ, INBEDDER_CACHE_DIR=str(tmp_path), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               INBEDDER_WARM_UP="0")
    server = subprocess.Popen(
        [*start, "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                    health = reply.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok", f"server did not come up; exit code {server.poll()}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.status == 200 and "<title>" in reply.read().decode().lower()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
