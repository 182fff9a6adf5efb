"""The systemd unit: hardened (exposure at most 1.5), clean to systemd's own checks, and
saying what the service needs (Type=notify, a watchdog, the media read-only)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "systemd" / "indexer.service"
analyze = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


@needs_systemd
def test_the_unit_rates_at_most_1_5_in_systemds_security_analysis():
    result = subprocess.run([analyze, "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))
    assert exposure <= 1.5


@needs_systemd
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    # verify also checks that ExecStart exists: point it at a command this machine has
    unit = tmp_path / "indexer.service"
    unit.write_text(re.sub(r"^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text(), flags=re.M))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr) == (0, "")


def test_the_unit_is_a_notify_service_with_a_watchdog_and_read_only_media():
    settings = dict(line.split("=", 1) for line in UNIT.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    assert (settings["Type"], settings["Restart"]) == ("notify", "on-failure")
    assert settings["ProtectSystem"] == "strict" and settings["StateDirectory"] == "indexer"
    assert settings["WatchdogSec"].rstrip("s").isdigit()
    assert "run" in settings["ExecStart"]
