"""The soak run (benches/soak.py), short: it passes on the library as it is, and its growth
rule really fails a run that leaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "benches" / "soak.py"
sys.path.insert(0, str(SOAK.parent))

import soak  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SOAK), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_short_soak_passes(tmp_path: Path) -> None:
    """Ten seconds of mixed operations and short-lived rings: nothing grows, every operation
    completes with the right data."""
    proc = _run("--seconds", "10", "--seed", "12345", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] and report["problems"] == []
    assert report["operations"] > 10_000
    assert report["rings_made"] > 100
    assert {"read", "write", "send", "recv", "open", "close", "timeout", "cancel"} <= set(
        report["counts"]
    )
    assert report["fds"]["final"] <= report["fds"]["first"] + 2


def test_soak_catches_a_leak() -> None:
    """With --inject-leak (6 MiB a second kept alive), the same run fails, naming RSS."""
    proc = _run("--seconds", "10", "--seed", "1", "--inject-leak")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SOAK FAILED" in proc.stderr
    assert "rss_kib grew" in proc.stderr


def _samples(rss: list[int], fds: list[int] | None = None) -> list[soak.Sample]:
    fds = fds or [10] * len(rss)
    return [
        soak.Sample(float(i), i * 100, r, f, 1000, 4)
        for i, (r, f) in enumerate(zip(rss, fds, strict=True))
    ]


def test_growth_rule() -> None:
    """Flat or noisy-but-bounded runs pass; a steady climb or a descriptor leak fails; a run
    too short to judge fails rather than passing by default."""
    assert soak.judge(_samples([20000 + (i % 3) * 1000 for i in range(40)]), 0).ok
    climbing = soak.judge(_samples([20000 + i * 2000 for i in range(40)]), 0)
    assert not climbing.ok and "rss_kib" in climbing.problems[0]
    fd_leak = soak.judge(_samples([20000] * 40, [10 + i for i in range(40)]), 0)
    assert not fd_leak.ok and "fds" in fd_leak.problems[0]
    assert not soak.judge(_samples([20000] * 4), 0).ok
    # Growth during the warm-up is not held against the run.
    assert soak.judge(_samples([1000 * i for i in range(10)] + [60000] * 40), 10).ok
