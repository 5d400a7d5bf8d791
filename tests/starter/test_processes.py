"""The runner's child processes (starter.processes): ended with the runner, recovered after a hard stop, ports named."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from starter.processes import ChildProcess, PortInUse, alive, check_ports, port_holder

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time; time.sleep(120)"


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _child(tmp_path: Path, *extra: str) -> ChildProcess:
    marker = tmp_path / "child.db"
    return ChildProcess("sleeper", [sys.executable, "-c", SLEEPER, str(marker), *extra], tmp_path / "run",
                        ports={}, log_file=tmp_path / "sleeper.log", marker=marker, stop_timeout=5)


def _leftover(tmp_path: Path, *extra: str) -> subprocess.Popen:
    """A copy left running by an earlier runner: same kind of command, no record of it."""
    return subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path / "child.db"), *extra],
                            start_new_session=True)


async def _healthy() -> bool:
    return True


def test_the_kernel_ends_a_child_when_its_runner_is_killed(tmp_path: Path) -> None:
    runner = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from starter.processes import ChildProcess

        async def main():
            child = ChildProcess("sleeper", [sys.executable, "-c", {SLEEPER!r}], Path({str(tmp_path)!r}) / "run",
                                 ports={{}}, log_file=Path({str(tmp_path)!r}) / "sleeper.log")
            await child.start()
            print(child.pid, flush=True)
            await asyncio.sleep(120)

        asyncio.run(main())
    """)
    process = subprocess.Popen([sys.executable, "-c", runner], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child_pid = None
    try:
        child_pid = int(process.stdout.readline())
        record = json.loads((tmp_path / "run" / "sleeper.json").read_text())
        assert record["pid"] == child_pid and record["runner_pid"] == process.pid and record["dies_with_runner"]
        process.kill()
        process.wait(timeout=10)
        assert _wait_gone(child_pid), "the child outlived its runner"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if child_pid and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


async def test_recover_reuses_a_healthy_leftover_running_the_same_command(tmp_path: Path) -> None:
    leftover = _leftover(tmp_path)
    try:
        time.sleep(0.3)  # exec'd
        child = _child(tmp_path)
        assert await child.recover(_healthy)
        assert child.pid == leftover.pid
        assert json.loads(child.record_file.read_text())["pid"] == leftover.pid
        await child.stop()
        assert leftover.wait(timeout=10) is not None
        assert not child.record_file.exists()
    finally:
        leftover.kill()
        leftover.wait()


async def test_recover_stops_a_leftover_that_is_unhealthy_or_runs_another_command(tmp_path: Path) -> None:
    other = _leftover(tmp_path, "--another-port")
    sick = _leftover(tmp_path)
    try:
        time.sleep(0.3)

        async def unhealthy() -> bool:
            return False

        assert not await _child(tmp_path).recover(unhealthy)
        assert other.wait(timeout=10) is not None
        assert sick.wait(timeout=10) is not None
    finally:
        for process in (other, sick):
            process.kill()
            process.wait()


async def test_recover_leaves_alone_a_process_that_got_the_recorded_pid(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", SLEEPER])
    try:
        time.sleep(0.3)
        child = _child(tmp_path)
        child.record_file.parent.mkdir(parents=True)
        child.record_file.write_text(json.dumps({"pid": stranger.pid, "start_time": 1, "command": child.command,
                                                 "runner_pid": 999999, "dies_with_runner": True}))
        assert not await child.recover(_healthy)
        assert stranger.poll() is None
        assert not child.record_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_taken_port_is_named_with_its_holder_and_variable() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_holder(port) == os.getpid()
        with pytest.raises(PortInUse) as raised:
            check_ports({"API_PORT": port})
    assert str(raised.value).startswith(f"port {port} (API_PORT) is in use by pid {os.getpid()} (")
    assert str(raised.value).endswith("; stop it or set API_PORT to another port")
    check_ports({"API_PORT": port})  # free again
