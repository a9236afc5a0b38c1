"""Smoke test of the benchmark suite: it runs, and its JSON report has the expected shape.

No speed is asserted here; the suite reports the targets, tests never check them.
"""

from __future__ import annotations

import array
import importlib.util
import json
import random
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


WORKLOADS = RUN.parent / "workloads.py"
DEEP_QUEUES = RUN.parent / "deep_queues.py"


@pytest.mark.parametrize("mode", ["batch", "kept"])
def test_read_loops_report_the_reap_cost_per_completion(mode: str, tmp_path: Path) -> None:
    """Both page-cached loops (the list dropped before the next batch, or kept until the next
    one is reaped) read every block and say how long get_completion_entries() took per
    completion."""
    data = tmp_path / "data"
    data.write_bytes(bytes(1 << 20))
    proc = subprocess.run(
        [
            *(sys.executable, str(WORKLOADS), "century_ring", "read", "--qd", "64"),
            *("--mode", mode, "--file", str(data), "--seconds", "0.05", "--warmup", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["mode"], result["qd"], result["size"]) == (mode, 64, 4096)
    assert result["ops"] > 0 and result["ops"] % 64 == 0  # whole batches only
    assert result["reaps"] == result["ops"] // 64
    assert result["reap_ns_per_cqe"] > 0 and result["clock_ns"] >= 0
    assert result["faults_per_op"] >= 0 and result["window_start"] > 0


def load_bench(name: str) -> Any:
    """A script of benches/ as a module, leaving sys.path and sys.modules as they were."""
    path, modules = list(sys.path), dict(sys.modules)
    sys.path.insert(0, str(RUN.parent))
    try:
        spec = importlib.util.spec_from_file_location(
            f"century_ring_bench_{name}", RUN.parent / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        for added in set(sys.modules) - set(modules):
            del sys.modules[added]
    return module


def test_read_offsets_leave_mallocs_thresholds_alone(tmp_path: Path) -> None:
    """The offsets are drawn without a temporary of 128 KiB or more (which glibc would mmap,
    and whose free would raise its trim threshold), and are the sequence they always were."""
    workloads = load_bench("workloads")
    assert workloads.OFFSET_CHUNK * 4 < 128 << 10
    data = tmp_path / "data"
    data.write_bytes(bytes(1 << 20))
    raw = array.array("I", random.Random(0x5EED).randbytes(4 * workloads.OFFSET_COUNT))
    offsets = workloads.random_offsets(str(data), 4096)
    assert offsets == [r % 256 * 4096 for r in raw]


def test_deep_queues_reports_every_build_size_loop_and_depth(tmp_path: Path) -> None:
    """deep_queues.py measures both loops for every build, size and depth (QD 32 always), and
    reports ratios to QD 32, between builds, and the targets; its JSON says the same."""
    out = tmp_path / "deep.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(DEEP_QUEUES), "--python", f"one={sys.executable}"),
            *("--python", f"two=MALLOC_TOP_PAD_=0 {sys.executable}"),
            *("--sizes", "4K,8K", "--depths", "128", "--rounds", "2", "--seconds", "0.05"),
            *("--warmup", "1", "--data-dir", str(tmp_path), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["depths"] == [32, 128]
    assert [b["name"] for b in report["builds"]] == ["one", "two"]
    assert report["builds"][1]["command"] == f"MALLOC_TOP_PAD_=0 {sys.executable}"
    measured = {
        (m["build"], m["loop"], m["size"], m["qd"], m["round"]) for m in report["measurements"]
    }
    assert measured == {
        (b, loop, size, qd, r)
        for b in ("one", "two")
        for loop in ("drop", "kept")
        for size in (4096, 8192)
        for qd in (32, 128)
        for r in (0, 1)
    }
    assert all(m["ok"] for m in report["measurements"])
    for row in report["summary"]:
        assert row["ops_per_sec"]["median"] > 0 and row["reap_ns_per_cqe"]["median"] > 0
        assert set(row["to_qd32"]["per_round"]) == {"0", "1"}
        if row["qd"] == 32:
            assert row["to_qd32"]["median"] == 1
        if row["build"] == "two":
            assert row["to_one"]["median"] > 0
    assert {(t["build"], t["loop"], t["size"], t["label"]) for t in report["targets"]} == {
        (b, loop, size, "QD 128 / QD 32")
        for b in ("one", "two")
        for loop in ("drop", "kept")
        for size in (4096, 8192)
    }
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    text = proc.stdout
    for heading in ("## 4 KiB reads, drop loop", "## 8 KiB reads, kept loop", "## Targets"):
        assert heading in text
    assert "| 128 |" in text and "two / one" in text


def test_deep_queues_counts_system_calls_per_batch_or_says_why_not(tmp_path: Path) -> None:
    out = tmp_path / "deep.json"
    proc = subprocess.run(
        [
            *(sys.executable, str(DEEP_QUEUES), "--sizes", "4K", "--depths", "32"),
            *("--loops", "kept", "--rounds", "1", "--seconds", "0.05", "--strace"),
            *("--strace-seconds", "0.05", "--data-dir", str(tmp_path), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    if not report["settings"]["strace"]:
        assert any(note.startswith("no system call counts") for note in report["notes"])
        return
    (trace,) = report["strace"]
    assert trace["ok"], trace
    assert (trace["build"], trace["loop"], trace["size"], trace["qd"]) == ("this", "kept", 4096, 32)
    assert trace["batches"] > 0
    for call in ("brk", "brk_shrink", "mmap", "munmap"):
        assert trace[f"{call}_per_batch"] >= 0
    assert "system calls per batch" in proc.stdout


def test_strace_log_is_counted_inside_the_window_only() -> None:
    deep_queues = load_bench("deep_queues")
    log = "\n".join(
        [
            "101 10.0 brk(NULL) = 0x1000",
            "101 11.0 brk(0x3000) = 0x3000",
            "101 11.5 mmap(NULL, 1052672, PROT_READ|PROT_WRITE, MAP_PRIVATE, -1, 0) = 0x7f00",
            "101 11.6 brk(0x2000) = 0x2000",
            "101 11.7 munmap(0x7f00, 1052672) = 0",
            "101 13.0 brk(0x1000) = 0x1000",
            "101 13.1 +++ exited with 0 +++",
        ]
    )
    counts = deep_queues.count_calls(log, 11.0, 1.0)
    assert counts == {"brk": 2, "mmap": 1, "munmap": 1, "brk_shrink": 1}


AIO_WORKLOADS = ("aio-read-cached", "aio-read-direct", "aio-small-files", "aio-echo")


def test_quick_async_run_reports_every_contender_and_target(tmp_path: Path) -> None:
    """A quick run of issue 13's async workloads measures each contender that can run here (at
    1 and 64 tasks for the reads), says why for each that cannot, and lists every target."""
    run = load_run_module()
    proc = subprocess.run(
        [
            *(sys.executable, str(RUN), "--quick", "--only", ",".join(AIO_WORKLOADS)),
            *("--no-install", "--rounds", "1", "--seconds", "0.2", "--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["settings"]["workloads"] == list(AIO_WORKLOADS)
    assert report["settings"]["aio_tasks"]["aio-read-cached"] == [1, 64]
    skipped = report["skipped"]
    if "aio-read-direct" in skipped:  # only when the file system refuses O_DIRECT
        assert "O_DIRECT" in skipped["aio-read-direct"]

    measured: dict[str, set[tuple[str, Any]]] = {}
    for m in report["measurements"]:
        assert m["ok"], m
        assert m["ops"] > 0 and m["ops_per_sec"] > 0 and m["cpu_us_per_op"] > 0, m
        measured.setdefault(m["workload"], set()).add((m["contender"], m["params"].get("tasks")))
    for workload in AIO_WORKLOADS:
        if workload in skipped:
            continue
        for contender in run.CONTENDERS[workload]:
            if contender in skipped:
                assert skipped[contender], contender  # a reason, not an empty string
                continue
            if workload in run.AIO_TASKS:
                expected = {(contender, 1), (contender, 64)}
            else:
                expected = {(contender, None)}
            assert expected <= measured[workload], (workload, contender)
    # The ring on asyncio runs whatever else is missing: it is what the targets are about.
    assert ("century_ring.aio asyncio", 64) in measured["aio-read-cached"]
    assert ("century_ring.aio asyncio", None) in measured["aio-small-files"]

    labels = [t["label"] for t in report["targets"]]
    assert len(labels) == 10 and all(label.startswith("aio-") for label in labels)
    assert sum(label.startswith("aio-echo") for label in labels) == 3  # one per loop
    pairs = {t.label: (t.numerator[0], t.denominator[0]) for t in run.TARGETS}
    for t in report["targets"]:
        if t["ratio"] is None:
            # Not measured: one of its two contenders could not run, and the report says why.
            assert t["met"] is None
            assert any(name in skipped for name in pairs[t["label"]]), t
        else:
            assert t["ratio"] > 0 and isinstance(t["met"], bool)
    text = (tmp_path / "latest.md").read_text()
    assert "## aio-read-cached:" in text and "## aio-small-files:" in text
    assert "aio-read-cached 64 tasks: century_ring.aio asyncio / aiofiles" in text
