"""Loopback TCP stream, 64 KiB messages: how fast can one Python thread receive?

    python benches/recv_stream.py                 # 5 rounds of 1 s per contender
    python benches/recv_stream.py --rounds 3 --seconds 0.5

A writer process sends 64 KiB messages over one loopback TCP connection as fast as it can
(with ``sendfile`` from a memfd, 16 messages a call, so that it is not the bottleneck). The
receiver takes turns, within every round and in a rotating order, between:

* ``recv``: plain ``prep_recv(fd, 65536)``, one at a time, re-armed after each completion
  (a new ``bytes`` per receive);
* ``multishot-pbuf``: one multishot ``prep_recv(fd, 0, buffer_group=...)`` on a provided
  buffer ring of 64 x 64 KiB, releasing each :class:`ProvidedBuffer` after reading it, and
  re-armed when it stops;
* ``recv_into``: ``prep_recv_into`` a reused ``bytearray(65536)``, one at a time.

Each contender does the same work per completion: its length and two of its bytes. The report
gives the median GB/s over rounds and, for each contender, the median of its per-round ratio
to ``recv``; and the receiving process's CPU time (user + system, which includes the kernel's
copy into the buffers) per MiB received, which suffers less than GB/s when other programs
share the CPUs; and the average bytes per completion. No dependencies beyond the standard
library and century_ring.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from century_ring import IoUring, make_io_ring

MESSAGE = 64 * 1024
GROUP_ID = 1
GROUP_COUNT = 64

# The writer sends from a page-cached memfd with sendfile(), so it does not copy the data
# itself: the receiver, not the writer, should be what limits the rate.
WRITER = """
import os, socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
burst = 16 * 65536
fd = os.memfd_create("messages")
os.write(fd, (bytes(range(256)) * 256) * 16)
try:
    while True:
        offset = 0
        while offset < burst:
            offset += os.sendfile(sock.fileno(), fd, offset, burst - offset)
except OSError:
    pass
"""


class Tally:
    """Bytes and completions received."""

    def __init__(self) -> None:
        self.received = 0
        self.messages = 0


def plain_recv(ring: IoUring, fd: int, seconds: float) -> Tally:
    tally = Tally()
    touched = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ring.prep_recv(fd, MESSAGE)
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            data = cqe.buffer
            assert data is not None and cqe.result > 0, cqe
            tally.received += len(data)
            tally.messages += 1
            touched += data[0] + data[-1]
    return tally


def recv_into(ring: IoUring, fd: int, seconds: float) -> Tally:
    tally = Tally()
    touched = 0
    buffer = bytearray(MESSAGE)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ring.prep_recv_into(fd, buffer)
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            assert cqe.result > 0, cqe
            tally.received += cqe.result
            tally.messages += 1
            touched += buffer[0] + buffer[cqe.result - 1]
    return tally


def multishot_pbuf(ring: IoUring, fd: int, seconds: float) -> Tally:
    tally = Tally()
    touched = 0
    user_data = ring.prep_recv(fd, 0, buffer_group=GROUP_ID, multishot=True)
    armed = True
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if not armed:
            user_data = ring.prep_recv(fd, 0, buffer_group=GROUP_ID, multishot=True)
            armed = True
        ring.submit_and_wait(1)
        for cqe in ring.get_completion_entries():
            provided = cqe.provided_buffer
            if provided is not None:
                view = provided.memory
                tally.received += len(view)
                tally.messages += 1
                touched += view[0] + view[-1]
                provided.release()
            if not cqe.more:
                armed = False
    # Stop the receive and hand back whatever arrives meanwhile.
    if armed:
        ring.prep_cancel(user_data)
        while ring.in_flight:
            ring.submit_and_wait(1)
            for cqe in ring.get_completion_entries():
                if cqe.provided_buffer is not None:
                    cqe.provided_buffer.release()
    return tally


CONTENDERS: dict[str, Callable[[IoUring, int, float], Tally]] = {
    "recv": plain_recv,
    "multishot-pbuf": multishot_pbuf,
    "recv_into": recv_into,
}


def machine() -> str:
    uname = platform.uname()
    model = "?"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{uname.system} {uname.release} {uname.machine}; {os.cpu_count()} CPUs ({model}); "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument(
        "--ring-count", type=int, default=GROUP_COUNT, help="buffers in the provided ring"
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(
        f"loopback TCP, {MESSAGE // 1024} KiB messages; {args.rounds} rounds x "
        f"{args.seconds} s per contender; provided ring {args.ring_count} x {MESSAGE // 1024} KiB"
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(listener.getsockname()[1])])
        conn, _ = listener.accept()
    rates: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    ratios: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    sizes: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    try:
        with conn, make_io_ring() as ring:
            ring.register_buffer_ring(GROUP_ID, args.ring_count, MESSAGE)
            names = list(CONTENDERS)
            for round_no in range(args.rounds):
                shift = round_no % len(names)
                order = names[shift:] + names[:shift]
                this_round: dict[str, float] = {}
                for name in order:
                    started = time.perf_counter()
                    cpu_started = time.process_time()
                    tally = CONTENDERS[name](ring, conn.fileno(), args.seconds)
                    elapsed = time.perf_counter() - started
                    cpu[name].append((time.process_time() - cpu_started) / tally.received * 2**20)
                    sizes[name].append(tally.received / tally.messages)
                    this_round[name] = tally.received / elapsed / 1e9
                for name, rate in this_round.items():
                    rates[name].append(rate)
                    ratios[name].append(rate / this_round["recv"])
                print(
                    f"round {round_no + 1}: "
                    + ", ".join(f"{n} {this_round[n]:.2f} GB/s" for n in names)
                )
    finally:
        writer.kill()
        writer.wait()
    print()
    base_cpu = statistics.median(cpu["recv"])
    print(
        f"{'contender':<16} {'median GB/s':>12} {'vs recv':>8} {'CPU us/MiB':>11} {'vs recv':>8}"
        f" {'KiB/completion':>15}"
    )
    for name in CONTENDERS:
        cpu_per_mib = statistics.median(cpu[name])
        print(
            f"{name:<16} {statistics.median(rates[name]):>12.2f} "
            f"{statistics.median(ratios[name]):>7.2f}x {cpu_per_mib * 1e6:>11.1f} "
            f"{cpu_per_mib / base_cpu:>7.2f}x {statistics.median(sizes[name]) / 1024:>15.1f}"
        )


if __name__ == "__main__":
    main()
