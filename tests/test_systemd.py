"""The systemd unit: hardened (exposure at most 1.0), clean to systemd's own checks, and
saying what the service needs (Type=notify, a watchdog, the media read-only, a user of
its own whose group reads the state folder); the sysusers file makes that user."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "systemd" / "indexer.service"
SYSUSERS = UNIT.with_name("indexer.sysusers")
analyze = shutil.which("systemd-analyze")
sysusers = shutil.which("systemd-sysusers")
needs_systemd = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def settings() -> dict[str, str]:
    return dict(line.split("=", 1) for line in UNIT.read_text().splitlines()
                if "=" in line and not line.startswith("#"))


@needs_systemd
def test_the_unit_rates_at_most_1_0_in_systemds_security_analysis():
    result = subprocess.run([analyze, "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))
    assert exposure <= 1.0


@needs_systemd
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    # verify also checks that ExecStart exists: point it at a command this machine has
    unit = tmp_path / "indexer.service"
    unit.write_text(re.sub(r"^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text(), flags=re.M))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr) == (0, "")


def test_the_unit_is_a_notify_service_with_a_watchdog_and_read_only_media():
    unit = settings()
    assert (unit["Type"], unit["Restart"]) == ("notify", "on-failure")
    assert unit["ProtectSystem"] == "strict" and unit["StateDirectory"] == "indexer"
    assert unit["WatchdogSec"].rstrip("s").isdigit()
    assert "run" in unit["ExecStart"]


def test_the_unit_reads_home_folders_and_reaches_media_servers_on_private_networks():
    unit = UNIT.read_text()
    assert "BindReadOnlyPaths=-/home" in unit.splitlines()  # over ProtectHome=tmpfs
    allowed = settings()["IPAddressAllow"].split()
    assert {"localhost", "192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12"} <= set(allowed)
    assert "any" not in allowed


def test_the_service_runs_as_its_own_user_whose_group_may_read_what_it_writes():
    unit = settings()
    assert (unit["User"], unit["Group"]) == ("indexer", "indexer") and "DynamicUser" not in unit
    assert (unit["StateDirectoryMode"], unit["UMask"]) == ("0750", "0027")
    assert unit["Environment"] == "INDEXER_DB=/var/lib/indexer/library.db"


@pytest.mark.skipif(sysusers is None, reason="systemd-sysusers is not installed")
def test_the_sysusers_file_makes_the_units_user_and_group(tmp_path):
    (tmp_path / "etc").mkdir()
    result = subprocess.run([sysusers, f"--root={tmp_path}", "-"], input=SYSUSERS.read_text(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    user = next(line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
                if line.startswith("indexer:"))
    group = next(line.split(":") for line in (tmp_path / "etc" / "group").read_text().splitlines()
                 if line.startswith("indexer:"))
    assert user[3] == group[2]  # its primary group is the group `indexer`
    assert (user[5], user[6]) == ("/var/lib/indexer", "/usr/sbin/nologin")
