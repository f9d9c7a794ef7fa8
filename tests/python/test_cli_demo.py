"""`make demo`'s script (tests/demo/run) end to end, non-interactively, checked by
tests/demo/check against tests/demo/expected.tsv. With the world already up (the mail_world
fixture), the demo must use it and leave it running."""
import os
import pathlib
import subprocess
import sys

import pytest

import smtpcode
from fixture_mta import _ctl

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(smtpcode, "verify"),
                                reason="smtpcode.verify (the probe engine) is not built")


def test_demo_runs_and_says_the_expected_verdicts(mail_world, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run([str(ROOT / "tests" / "demo" / "run")], cwd=str(tmp_path), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    log = tmp_path / "demo.log"
    log.write_text(r.stdout)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Traceback" not in r.stdout
    chk = subprocess.run([sys.executable, str(ROOT / "tests" / "demo" / "check"), str(log)],
                         capture_output=True, text=True, timeout=30)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    # it found the world running, so it must have left it running
    assert "already running" in r.stdout
    assert _ctl("dns", "status", check=False).returncode == 0
    assert _ctl("mta", "status", check=False).returncode == 0
