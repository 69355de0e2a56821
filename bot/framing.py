"""Bounds on HTTP/1.1 chunked framing, for the waitress server that serves Slack
(docs/slack.md#requests-at-the-door).

waitress keeps an unfinished chunk-size line, and an unfinished trailer, and joins and
re-scans all of it on every read (8 KiB): a chunked body whose size line never ends costs
time quadratic in its length, up to the 1 MiB body cap, on the one thread that reads every
connection. Twenty such senders kept that thread busy enough to push the ack p99 of signed
commands from 8 to 126 ms (bench/hostile.py). A real size line is a few hex digits (Slack
sends no chunked requests at all), so either line longer than MAX_FRAMING_LINE is a 400.
"""

from __future__ import annotations

from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver
from waitress.server import BaseWSGIServer
from waitress.utilities import BadRequest

# Bytes of one chunk-size line (extensions included) or of the trailer. 4 KiB is what other
# servers allow for a size line; it also bounds each re-scan to a few KiB.
MAX_FRAMING_LINE = 4096


class BoundedChunkedReceiver(ChunkedReceiver):
    """waitress's chunked decoder, refusing a size line or trailer over MAX_FRAMING_LINE."""

    def received(self, s: bytes) -> int:
        consumed = int(super().received(s))
        if len(self.control_line) > MAX_FRAMING_LINE or len(self.trailer) > MAX_FRAMING_LINE:
            # The parser checks `error` after every read and answers 400 at once.
            self.error = BadRequest("chunk-size line or trailer too long")
        return consumed


class BoundedParser(HTTPRequestParser):
    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked:  # nothing of the body has been read yet: swap the decoder
            self.body_rcv = BoundedChunkedReceiver(self.body_rcv.getbuf())


class BoundedChannel(HTTPChannel):
    parser_class = BoundedParser


def bound_chunked_framing(server: Any) -> None:
    """Every listening socket of `server` (what waitress's create_server returned) hands
    its connections to BoundedChannel."""
    for dispatcher in list(server._map.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = BoundedChannel
