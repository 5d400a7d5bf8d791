"""A webhook receiver for tests: a threaded HTTP server answering a programmed list of statuses, verifying each
request's Standard Webhooks signature with the endpoint's secret (against the test's business clock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from billing import webhooks
from starter.processes import free_port


class Receiver:
    def __init__(self, answers: list[int], now: Callable[[], datetime] | None = None) -> None:
        self.answers, self.now = list(answers), now
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.secret: str | None = None
        self.refused: list[str] = []
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.secret is not None and receiver.now is not None:
                    try:
                        webhooks.verify(receiver.secret, body, headers, receiver.now())
                    except webhooks.InvalidSignature as err:
                        receiver.refused.append(str(err))
                receiver.received.append((headers, body))
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
