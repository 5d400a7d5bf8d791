"""`BILLING_TEST_SHIFT_DAYS=N`: the tests run as if it were N days later, so a test that depends on today's date fails
now rather than when the calendar gets there (`make test-later`: a year ahead).

Every clock a test reads moves by the same distance, as the calendar would move them all:

- Python's wall clock (`time.time`, `datetime.now`, `date.today`) travels with time-machine, ticking from there; the
  monotonic clock, on which asyncio, subprocess waits and timeouts run, is left alone. Loaded by tests/conftest.py
  in the pytest process (and each xdist worker), and in every Python child it starts (the CLI tests' `billing
  simulate`) through the `sitecustomize` in tests/time_shift_site, which this puts on their PYTHONPATH.
- Each time-skipping test server (`temporal-test-server`, a dynamically linked native image) starts under
  libfaketime (Debian's `libfaketime`), preloaded into that process alone by a wrapper script: preloaded into
  Python, libfaketime breaks `waitpid` with a timeout, and time-machine cannot reach a native binary.

The dev server (`temporal`, a static Go binary) cannot be moved by either, so its tests stay out of a shifted run.
With no variable set, nothing is patched.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shlex
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import time_machine

SHIFT_VARIABLE = "BILLING_TEST_SHIFT_DAYS"
SITE = Path(__file__).resolve().parent / "time_shift_site"
_LIBFAKETIME = "/usr/lib/*/faketime/libfaketime.so.1"

_installed = False


def shift_days() -> int:
    value = os.environ.get(SHIFT_VARIABLE, "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SHIFT_VARIABLE} must be a whole number of days, got {value!r}") from None


def real_now() -> datetime:
    """The wall clock's own reading, whether or not the tests travel."""
    hatch = time_machine.escape_hatch
    return datetime.fromtimestamp(hatch.time.time() if hatch.is_travelling() else time.time(), timezone.utc)


def libfaketime() -> str:
    found = sorted(glob.glob(_LIBFAKETIME))
    if not found:
        raise RuntimeError(f"{SHIFT_VARIABLE} needs libfaketime for the time-skipping test server: "
                           "apt-get install libfaketime")
    return found[0]


def install(*, children: bool = True) -> None:
    """Travels this process `shift_days()` ahead and moves every time-skipping test server it starts; with
    `children`, the Python processes it starts travel too. Idempotent."""
    global _installed
    days = shift_days()
    if not days:
        return
    if not _installed:
        library = libfaketime()  # before travelling: a run that cannot move the server must not half-move
        time_machine.travel(real_now() + timedelta(days=days), tick=True).start()
        _shift_test_servers(days, library)
        _installed = True
    if children:
        paths = [str(SITE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def _shift_test_servers(days: int, library: str) -> None:
    from temporalio.testing import WorkflowEnvironment

    start = WorkflowEnvironment.start_time_skipping

    async def start_time_skipping(*, test_server_existing_path: str | None = None, **kwargs):
        if test_server_existing_path is None:
            raise RuntimeError(f"{SHIFT_VARIABLE} moves an installed test server only: pass test_server_existing_path")
        return await start(test_server_existing_path=_wrapper(test_server_existing_path, days, library), **kwargs)

    WorkflowEnvironment.start_time_skipping = staticmethod(start_time_skipping)


def _wrapper(server: str, days: int, library: str) -> str:
    """A script that starts `server` `days` later. One per server and shift, shared by every process of every run
    (workers and children often end with os._exit, so nothing they create is reliably removed): written whole and
    renamed into place, since processes may race to write it."""
    # exec: the wrapper becomes the server, so the SDK's shutdown stops the server itself. The monotonic clock moves
    # too (by a constant, which no duration sees): left real (FAKETIME_DONT_FAKE_MONOTONIC), the server's timed
    # waits overran by seconds and its timestamps drifted from the scenario's.
    text = ("#!/bin/sh\n"
            f"export LD_PRELOAD={shlex.quote(library)} FAKETIME={days:+d}d\n"
            f'exec {shlex.quote(server)} "$@"\n')
    directory = Path(tempfile.gettempdir()) / f"billing-time-shift-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    script = directory / f"test-server-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not script.exists():
        draft = directory / f"{script.name}.{os.getpid()}"
        draft.write_text(text)
        draft.chmod(0o700)
        os.replace(draft, script)
    return str(script)


def pytest_configure(config) -> None:
    # An xdist controller's workers load this plugin themselves: given the sitecustomize, they would import it
    # before pytest could rewrite its asserts (a warning per worker).
    controller = bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")
    try:
        install(children=not controller)
    except (RuntimeError, ValueError) as err:
        import pytest

        raise pytest.UsageError(str(err)) from None


def pytest_report_header(config) -> str | None:
    days = shift_days()
    return f"time shift: {days:+d} days (Python via time-machine, time-skipping servers via libfaketime)" \
        if days else None
