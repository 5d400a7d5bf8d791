"""An SMTP server for benchmarks, in its own process (so its CPU is not counted as the product's): it accepts every
message and writes one line per message to stdout, `wall time<TAB>Message-ID<TAB>recipients`, until stdin closes.

    python -m bench.smtp_sink PORT
"""

from __future__ import annotations

import re
import sys
import threading
import time

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]*)>", re.MULTILINE | re.IGNORECASE)


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        found = _MESSAGE_ID.search(envelope.content)
        line = (f"{time.time():.6f}\t{found.group(1).decode() if found else ''}\t"
                f"{','.join(envelope.rcpt_tos)}\n")
        with self.lock:
            sys.stdout.write(line)
            sys.stdout.flush()
        return "250 Message accepted for delivery"


def main() -> None:
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # the benchmark closes our stdin when it is done
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
