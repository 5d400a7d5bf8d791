"""Outcomes every door (client, CLI, simulator, HTTP API) reports the same way."""

from __future__ import annotations


class NothingToDo(Exception):
    """A repeated or late action found nothing to act on (a second RETRY after the first one paid, PAY NOW on a
    paid invoice). Harmless: the door reports it (the simulator as a notice) and changes nothing."""

    def __init__(self, notice: str) -> None:
        super().__init__(notice)
        self.notice = notice
