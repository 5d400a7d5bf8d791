"""End-to-end tests of `make run`: dev server, Web UI, demo workflows, maildir, Ctrl-C, restart after a hard stop, ports."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

from starter.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPORAL = Path(sys.executable).parent / "temporal"
READY_EVENT = "billing engine ready"
SERVER_EVENTS = ("temporal dev server started", "temporal dev server reused")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
POLL_TIMEOUT = 20.0


def _records(log_file: Path) -> list[dict]:
    records = []
    for line in log_file.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _tail(log_file: Path, lines: int = 40) -> str:
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])


def _start(env: dict[str, str], log_file: Path) -> subprocess.Popen:
    with log_file.open("wb") as out:
        # Its own process group, like a shell job: SIGINT to the group is what Ctrl-C sends.
        return subprocess.Popen([sys.executable, "-m", "starter.run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(process: subprocess.Popen, log_file: Path) -> tuple[dict, int]:
    """The ready record and the dev server's pid, once `make run` says it is ready."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        records = _records(log_file)
        ready = next((r for r in records if r.get("event", "").startswith(READY_EVENT)), None)
        if ready is not None:
            server = next(r for r in records if r.get("event") in SERVER_EVENTS)
            return ready, server["pid"]
        assert process.poll() is None, f"make run exited with {process.returncode}:\n{_tail(log_file)}"
        time.sleep(0.5)
    raise AssertionError(f"make run was not ready within {READY_TIMEOUT:.0f} s:\n{_tail(log_file)}")


def _poll(check, what: str):
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _demo_workflows(port: int, env: dict[str, str]) -> set[tuple[str, str]]:
    """(workflow ID, run ID) of every workflow the CLI lists for organization `demo`."""
    listed = subprocess.run([str(TEMPORAL), "workflow", "list", "--address", f"127.0.0.1:{port}",
                             "--query", 'OrgId="demo"', "--output", "json"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    return {(w["execution"]["workflowId"], w["execution"]["runId"]) for w in json.loads(listed.stdout or "[]")}


def _ui_status(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=5) as response:
            return response.status
    except OSError:
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _interrupt(process: subprocess.Popen, server_pid: int, log_file: Path) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"make run did not stop within {STOP_TIMEOUT:.0f} s:\n{_tail(log_file)}") from None
    assert code == 0, f"make run exited with {code} after Ctrl-C:\n{_tail(log_file)}"
    assert not _group_alive(server_pid), "the temporal dev server outlived make run"
    assert not _group_alive(process.pid), "a child of make run outlived it"


def test_make_run_serves_the_demo_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env, port, ui_port, smtp_port = _environment(data)
    groups: list[int] = []
    processes: list[subprocess.Popen] = []
    try:
        first_log = tmp_path / "first.log"
        first = _start(env, first_log)
        processes.append(first)
        groups.append(first.pid)
        ready, server_pid = _wait_ready(first, first_log)
        groups.append(server_pid)
        assert ready["ui"] == f"http://127.0.0.1:{ui_port}"
        assert ready["temporal"] == f"127.0.0.1:{port}"

        assert _poll(lambda: _ui_status(ui_port) == 200, "the Web UI to answer 200")
        workflows = _poll(lambda: _demo_workflows(port, env), "the demo's workflows to be listed")
        assert any(wid.startswith("settlement-demo-") for wid, _ in workflows)
        assert any(wid.startswith("payment-") for wid, _ in workflows)
        mail = _poll(lambda: list(mailbox.Maildir(data / "mail", create=False)), "an e-mail in the maildir")
        assert any(m["To"].endswith(("@demo.test", "@demo-declined.test")) for m in mail)
        _check_api_and_metrics(data, env)

        _interrupt(first, server_pid, first_log)
        groups.clear()

        second_log = tmp_path / "second.log"
        second = _start(env, second_log)
        processes.append(second)
        groups.append(second.pid)
        _, server_pid = _wait_ready(second, second_log)
        groups.append(server_pid)
        # Same workflow and run IDs: the first run's workflows survived, and seeding again started none anew.
        assert _poll(lambda: workflows <= _demo_workflows(port, env), "the first run's workflows after the restart")
        _interrupt(second, server_pid, second_log)
        groups.clear()
    finally:
        # Only groups not yet seen gone: a failed run may leave the dev server orphaned.
        for pgid in groups:
            _kill_group(pgid)
        for process in processes:
            if process.poll() is None:
                process.wait(timeout=STOP_TIMEOUT)


def _check_api_and_metrics(data: Path, env: dict[str, str]) -> None:
    """I1, J2: data/demo.env holds working keys; the API lists the demo's invoices; /metrics carries the SDK's
    metrics and the business's."""
    demo = dict(line.split("=", 1) for line in (data / "demo.env").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    assert demo["BILLING_API_URL"] == f"http://127.0.0.1:{env['API_PORT']}"
    owner = {"Authorization": f"Bearer {demo['BILLING_API_KEY']}"}
    invoices = httpx.get(f"{demo['BILLING_API_URL']}/v1/invoices", headers=owner, timeout=10).json()["invoices"]
    assert any(invoice["status"] == "PAID" for invoice in invoices)
    assert httpx.get(f"{demo['BILLING_API_URL']}/metrics", headers=owner, timeout=10).status_code == 403
    operator = {"Authorization": f"Bearer {demo['BILLING_OPERATOR_KEY']}"}
    text = _poll(lambda: (lambda t: t if "temporal_" in t else None)(
        httpx.get(f"{demo['BILLING_API_URL']}/metrics", headers=operator, timeout=10).text), "the SDK's metrics")
    assert 'billing_payments{method="card",status="PAID"}' in text
    assert "billing_settlement_lag_seconds" in text
    # I5: the India card's charge, PROCESSING with the issuer, is PAID once the sandbox gateway's signed webhook
    # has reached POST /v1/webhooks/gateway over HTTP.
    india = {"Authorization": f"Bearer {demo['BILLING_OPERATOR_KEY']}"}

    def india_paid() -> bool:
        listed = httpx.get(f"{demo['BILLING_API_URL']}/v1/invoices", params={"org": "demo-india", "status": "paid"},
                           headers=india, timeout=10).json()["invoices"]
        return bool(listed)
    _poll(india_paid, "demo-india's invoice to be PAID by the issuer's webhook")
    with sqlite3.connect(data / "store.db") as conn:
        received = conn.execute("SELECT count(*) FROM webhook_receipts").fetchone()[0]
    assert received >= 1


def _environment(data: Path) -> tuple[dict[str, str], int, int, int]:
    """The embedded defaults on free ports and a data directory of the test's own."""
    port, ui_port, smtp_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SMTP_HOST", "BILLING_GATEWAY_URL") and not k.startswith("TEMPORAL_")}
    env.update(BILLING_DATA_DIR=str(data), TEMPORAL_PORT=str(port), TEMPORAL_UI_PORT=str(ui_port),
               SMTP_PORT=str(smtp_port), LOG_LEVEL="INFO", API_PORT=str(free_port()),
               SDK_METRICS_PORT=str(free_port()), WEBHOOK_RECEIVER_PORT=str(free_port()), GATEWAY_PORT=str(free_port()),
               BILLING_RBI_PROCESSING="5s")
    env.pop("BILLING_SDK_METRICS_ADDRESS", None)
    env.pop("BILLING_CODEC_KEYS", None)
    return env, port, ui_port, smtp_port


def _ours(data: Path) -> list[str]:
    """Command lines of every process that names the test's data directory (the dev server names its database)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(data) in args and state != "Z":
                found.append(f"{proc.name}: {args}")
    return found


def _kill_ours(data: Path) -> None:
    for line in _ours(data):
        try:
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_make_run_after_a_hard_stop_starts_again_on_the_same_workflows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env, port, ui_port, _ = _environment(data)
    processes: list[subprocess.Popen] = []
    try:
        first_log = tmp_path / "first.log"
        first = _start(env, first_log)
        processes.append(first)
        _, first_server = _wait_ready(first, first_log)
        workflows = _poll(lambda: _demo_workflows(port, env), "the demo's workflows to be listed")

        # A closed terminal or the OOM killer: the runner alone, with no chance to stop its children.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=STOP_TIMEOUT)

        second_log = tmp_path / "second.log"
        second = _start(env, second_log)
        processes.append(second)
        _wait_ready(second, second_log)
        assert _poll(lambda: _ui_status(ui_port) == 200, "the Web UI to answer 200 after the restart")
        listed = subprocess.run([str(TEMPORAL), "workflow", "list", "--address", f"127.0.0.1:{port}",
                                 "--query", 'OrgId="demo"', "--output", "json"],
                                env=env, capture_output=True, text=True, timeout=30)
        ids = [w["execution"]["workflowId"] for w in json.loads(listed.stdout or "[]")]
        assert sorted(ids) == sorted(set(ids)), f"a demo workflow listed twice: {ids}"
        assert workflows == _demo_workflows(port, env), "the demo's workflows changed across the hard stop"
        assert "address already in use" not in second_log.read_text()

        os.killpg(second.pid, signal.SIGINT)
        assert second.wait(timeout=STOP_TIMEOUT) == 0, _tail(second_log)
        assert _poll(lambda: not _ours(data), "every process of ours to end"), _ours(data)
        assert not (data / "run" / "temporal-dev-server.json").exists()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        _kill_ours(data)


def test_make_run_reuses_a_dev_server_left_running_by_an_earlier_version(tmp_path: Path) -> None:
    # The case: a runner without a pid file left its server behind, holding the port.
    data = tmp_path / "data"
    env, port, ui_port, _ = _environment(data)
    processes: list[subprocess.Popen] = []
    try:
        first_log = tmp_path / "first.log"
        first = _start(env, first_log)
        processes.append(first)
        _wait_ready(first, first_log)
        workflows = _poll(lambda: _demo_workflows(port, env), "the demo's workflows to be listed")
        command = json.loads((data / "run" / "temporal-dev-server.json").read_text())["command"]
        os.killpg(first.pid, signal.SIGINT)
        assert first.wait(timeout=STOP_TIMEOUT) == 0, _tail(first_log)

        orphan = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        processes.append(orphan)
        _poll(lambda: _ui_status(ui_port) == 200, "the left-behind server to answer")

        second_log = tmp_path / "second.log"
        second = _start(env, second_log)
        processes.append(second)
        _, server_pid = _wait_ready(second, second_log)
        assert server_pid == orphan.pid
        assert workflows == _demo_workflows(port, env)

        os.killpg(second.pid, signal.SIGINT)
        assert second.wait(timeout=STOP_TIMEOUT) == 0, _tail(second_log)
        orphan.wait(timeout=STOP_TIMEOUT)  # the runner stops what it reused
        assert not _ours(data), _ours(data)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        _kill_ours(data)


def test_make_run_names_a_taken_port_and_the_variable_that_moves_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env, port, _, smtp_port = _environment(data)
    for variable, taken in (("TEMPORAL_PORT", port), ("SMTP_PORT", smtp_port)):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", taken))
            holder.listen()
            started = time.monotonic()
            completed = subprocess.run([sys.executable, "-m", "starter.run"], cwd=ROOT, env=env,
                                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert completed.returncode == 2, completed.stderr
        message = completed.stderr.strip().splitlines()[-1]
        assert message.startswith(f"port {taken} ({variable}) is in use by pid {os.getpid()} ("), message
        assert message.endswith(f"; stop it or set {variable} to another port"), message
        assert "Traceback" not in completed.stderr
        assert time.monotonic() - started < 30
        assert not _ours(data), "make run started something although a port was taken"

