"""``python -m portfolio.serve``: daphne, with websocket limits the demo protocol can keep.

The demo consumers answer an oversized message with a ``too_large`` error and keep the
socket (demos.jobs), but only messages daphne hands over reach them. So this entry point
runs daphne's own command line with two differences:

* the largest websocket message daphne accepts is ``WEBSOCKET_MAX_BYTES`` (4 MiB) instead of
  its 1 MiB, well above the demos' own 64 KB limit, so a visitor's oversized message up to
  there is refused by the application in words;
* past it, the connection is closed with a close frame (1009, "message too big") rather than
  dropped: autobahn's default (``failByDrop``) cuts the TCP connection without one, which a
  browser reports as an unexplained 1006.

Every other option is daphne's (``python -m portfolio.serve --help``); explicit
``--websocket-max-message-size``/``--websocket-max-frame-size`` flags still win.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from daphne import server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory

WEBSOCKET_MAX_BYTES = 4 * 1024 * 1024


class ClosingWebSocketFactory(WebSocketFactory):
    """daphne's factory, failing a connection with a close handshake instead of a drop."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setProtocolOptions(failByDrop=False)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    for flag in ("--websocket-max-message-size", "--websocket-max-frame-size"):
        if not any(arg == flag or arg.startswith(f"{flag}=") for arg in args):
            args[:0] = [flag, str(WEBSOCKET_MAX_BYTES)]
    # daphne.server builds its factory by this module-level name when the server starts.
    server.WebSocketFactory = ClosingWebSocketFactory
    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
