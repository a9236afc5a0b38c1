"""Smoke test of the benchmark suite: it runs, and its JSON report has the expected shape.

No speed is asserted here; the suite reports the targets, tests never check them.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import century_ring
import pytest

RUN = Path(__file__).resolve().parent.parent / "benches" / "run.py"


def test_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *(sys.executable, str(RUN), "--quick", "--only", "nop,echo,overhead", "--no-install"),
            *("--rounds", "1", "--seconds", "0.2", "--echo-seconds", "0.5"),
            *("--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# Century Ring benchmarks")

    for field in ("kernel", "cpu_model", "cores", "python", "century_ring", "date"):
        assert report["machine"][field], field
    assert report["settings"]["workloads"] == ["nop", "echo", "overhead"]
    assert report["settings"]["rounds"] == 1

    measured = [m for m in report["measurements"] if m["workload"] == "nop"]
    assert {m["contender"] for m in measured} >= {"century_ring"}
    for m in measured:
        assert m["ok"], m
        assert m["ops"] > 0 and m["ops_per_sec"] > 0 and m["cpu_us_per_op"] > 0

    medians = {(m["contender"], m["params"].get("batch")) for m in report["medians"]}
    assert ("century_ring", 32) in medians and ("century_ring", 256) in medians
    for m in report["medians"]:
        if m["workload"] == "nop":
            assert m["ops_per_sec"] > 0

    # Every contender the run could measure is compared with century_ring pair by pair.
    contenders = {m["contender"] for m in measured}
    if "native" in contenders:
        nop_target = next(t for t in report["targets"] if t["label"].startswith("nop batch 32"))
        assert nop_target["ratio"] > 0 and isinstance(nop_target["met"], bool)
        # Its baseline is the native reference, so there is no native ratio to show beside it.
        assert nop_target["native_ratio"] is None
    else:
        assert "native" in report["skipped"]
    for r in report["ratios"]:
        assert r["median"] > 0 and r["per_round"]

    # The echo servers are driven by the native client when it was built, else by Python's.
    echo = [m for m in report["measurements"] if m["workload"] == "echo"]
    servers = {"century_ring", "selectors", "asyncio"}
    if "native" not in report["skipped"]:
        servers.add("native")  # the native reference's echo-server
    assert {m["contender"] for m in echo} == servers
    expected_client = "python" if "native" in report["skipped"] else "native"
    assert report["settings"]["echo_client"] == expected_client
    if "native" in servers:
        # The echo target shows what the native server reaches against the same baseline.
        echo_target = next(t for t in report["targets"] if t["label"].startswith("echo"))
        assert echo_target["native_ratio"] > 0
    for m in echo:
        assert m["ok"], m
        assert m["client"] == expected_client
        assert m["ops"] > 0 and m["server_messages"] > 0 and m["cpu_us_per_op"] > 0

    overhead = report["overhead"]
    for metric in (
        "prep_read_ns",
        "prep_nop_ns",
        "reap_ns_per_cqe",
        "submit_empty_ns",
        "submit_32_nops_ns",
    ):
        assert overhead[metric] > 0, metric


def load_run_module() -> Any:
    spec = importlib.util.spec_from_file_location("century_ring_bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is made.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_a_package_pip_cannot_install_is_skipped_with_pips_reason(tmp_path: Path) -> None:
    """The suite installs a missing liburing wheel; when pip fails, the report says why."""
    run = load_run_module()
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        'echo "$@" >> "$(dirname "$0")/calls"\n'
        "echo 'ERROR: No matching distribution found for no-such-package' >&2\n"
        "exit 1\n"
    )
    fake_python.chmod(0o755)
    run.PYTHON = str(fake_python)
    settings = run.parse_args(["--only", "nop"])
    run.install_missing(settings, ["century_ring_no_such_package", "century_ring"])
    calls = (tmp_path / "calls").read_text().splitlines()
    # Only the missing package is asked for, as a wheel; the importable one is left alone.
    assert calls == ["-m pip install --quiet --only-binary :all: century_ring_no_such_package"]
    assert "No matching distribution" in settings.install_failures["century_ring_no_such_package"]

    # Whether or not liburing is installed here, the suite's view of it is "missing".
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run.importlib.util, "find_spec", lambda name: None)
        settings.install_failures["liburing"] = "ERROR: No matching distribution for liburing"
        run.find_liburing(settings)
    assert "No matching distribution for liburing" in settings.skipped["liburing"]
    assert not settings.liburing

    no_install = run.parse_args(["--only", "nop", "--no-install"])
    run.install_missing(no_install, ["century_ring_no_such_package"])
    assert (tmp_path / "calls").read_text().splitlines() == calls  # pip was not run again


def test_read_into_bench_reports_both_paths(tmp_path: Path) -> None:
    script = RUN.parent / "read_into.py"
    out = tmp_path / "read_into.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(script), "--seconds", "0.1", "--rounds", "1"),
            *("--depth", "1,4", "--file-mib", "4", "--dir", str(tmp_path), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    rates = {
        (r["depth"], r["contender"]): r["gb_per_s_median"] for r in results if "contender" in r
    }
    assert set(rates) == {
        (1, "prep_read"),
        (1, "prep_read_into"),
        (1, "os.preadv"),
        (4, "prep_read"),
        (4, "prep_read_into"),
    }
    assert all(rate > 0 for rate in rates.values())
    ratios = [r for r in results if "ratio" in r]
    assert [r["depth"] for r in ratios] == [1, 4] and all(r["median"] > 0 for r in ratios)


def test_echo_ring_server_echoes_every_byte() -> None:
    """The benchmark's ring server (multishot receives into provided buffers, sends from them)
    returns exactly what each peer sent, including messages larger than one buffer, and stops
    once every peer has closed."""
    with century_ring.make_io_ring(8) as probe:
        try:
            probe.register_buffer_ring(1, 1, 64).close()
        except NotImplementedError as err:
            pytest.skip(f"provided buffer rings: {err}")
    sys.path.insert(0, str(RUN.parent))
    try:
        from echo_ring import BUFFER_SIZE, serve
    finally:
        sys.path.remove(str(RUN.parent))

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        conns = [listener.accept()[0] for _ in clients]
    echoed: list[int] = []
    server = threading.Thread(target=lambda: echoed.append(serve(conns, 64)))
    server.start()
    sent = exchange(clients, BUFFER_SIZE)
    server.join(timeout=30)
    assert not server.is_alive()
    assert echoed == [sent]


def exchange(clients: list[socket.socket], buffer_size: int) -> int:
    """Five rounds of one message per client, every other round larger than two of the
    server's buffers; checks every echo, closes the clients and returns the bytes sent."""
    sent = 0
    for round_ in range(5):
        for index, client in enumerate(clients):
            size = 64 if round_ % 2 == 0 else buffer_size * 2 + 1 + index
            message = bytes([round_ * 7 + index]) * size
            client.sendall(message)
            back = b""
            while len(back) < size:
                chunk = client.recv(size - len(back))
                assert chunk, "the server closed early"
                back += chunk
            assert back == message
            sent += size
    for client in clients:
        client.close()
    return sent


def burst(clients: list[socket.socket], size: int) -> int:
    """Every client sends ``size`` bytes at once while reading the echo back; returns the
    bytes sent."""
    echoes: list[bytes] = [b""] * len(clients)

    def talk(index: int, client: socket.socket) -> None:
        message = bytes([index + 1]) * size
        sender = threading.Thread(target=client.sendall, args=(message,))
        sender.start()
        back = bytearray()
        while len(back) < size:
            chunk = client.recv(65536)
            if not chunk:
                break
            back += chunk
        sender.join()
        echoes[index] = bytes(back)

    talkers = [threading.Thread(target=talk, args=pair) for pair in enumerate(clients)]
    for talker in talkers:
        talker.start()
    for talker in talkers:
        talker.join(timeout=30)
    for index, echo in enumerate(echoes):
        assert echo == bytes([index + 1]) * size, f"client {index}: {len(echo)} bytes back"
    return size * len(clients)


def test_native_echo_server_speaks_the_protocol_and_echoes_every_byte() -> None:
    """The native reference's echo-server (run.py's "native" echo contender) prints PORT n,
    returns exactly what each peer sent, including messages larger than one of its 4096-byte
    provided buffers and a burst larger than all of them (its receives stop with ENOBUFS and
    are armed again), and reports the bytes it echoed once every peer has closed."""
    run = load_run_module()
    settings = run.parse_args(["--only", "echo", "--no-install"])
    run.build_native(settings)  # the suite's own build; a no-op when the binary is up to date
    if not settings.native:
        if shutil.which("cargo") is not None:
            pytest.fail(settings.skipped["native"])  # cargo is there, so the build broke
        pytest.skip(settings.skipped["native"])
    with century_ring.make_io_ring(8) as probe:
        try:
            probe.register_buffer_ring(1, 1, 64).close()
        except NotImplementedError as err:
            pytest.skip(f"provided buffer rings: {err}")

    server = subprocess.Popen(
        [str(run.NATIVE_BIN), "echo-server", "--port", "0", "--connections", "3", "--size", "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline().split()
        assert len(first) == 2 and first[0] == "PORT", first
        clients = [socket.create_connection(("127.0.0.1", int(first[1]))) for _ in range(3)]
        sent = burst(clients, 1 << 20)  # the server has 8 buffers of 4096 bytes
        sent += exchange(clients, 4096)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["server"] == "native"
    assert report["echoed_bytes"] == sent
    assert report["messages"] == sent // 64
    assert report["cpu_seconds"] >= 0


INSTRUCTIONS = RUN.parent / "instructions.py"


@pytest.mark.parametrize("kind", ["nop", "read"])
def test_instruction_loops_complete_every_operation(kind: str, tmp_path: Path) -> None:
    """The loops benches/instructions.py counts under callgrind reap one completion per
    operation they queue (so the per-operation figure divides by the right count)."""
    data = tmp_path / "data"
    data.write_bytes(bytes(1 << 20))
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), "--run", kind, "3", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(3 * 32)]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_are_reported() -> None:
    """Under callgrind, the no-op loop's cost per operation comes out as a positive count."""
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), "nop"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    kind, count, *rest = line.replace(":", "").split()
    assert (kind, rest) == ("nop", ["instructions", "per", "operation"])
    assert 100 < float(count) < 100_000
