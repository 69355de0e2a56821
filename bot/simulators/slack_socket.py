"""Slack's Socket Mode end of the WebSocket on 127.0.0.1, just enough for slack_sdk's built-in
client: the opening handshake, a `hello`, pongs to its pings. A test can make it stop
answering pings (a link lost without a close: TCP gives no sign, only the pongs stop) or
drop every link without a close frame.

`FakeSlackAPI.socket_url` set to `url` makes `apps.connections.open` hand it out; the SDK
speaks plain `ws://` to any port but 443.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
from types import TracebackType
from typing import Self

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class FakeSocketModeServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # close() waits for one accept round at most
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/"
        self._cond = threading.Condition()  # guards the state below
        self._links: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.opened = 0  # handshakes completed
        self.pings = 0  # pings received
        self.answer_pings = True
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="fake-socket-mode", daemon=True)
        self._acceptor.start()

    # -- what tests do ----------------------------------------------------------------------

    def go_silent(self, silent: bool = True) -> None:
        """Stop (or resume) answering pings, keeping every link open."""
        with self._cond:
            self.answer_pings = not silent

    def drop_links(self) -> None:
        """Close every open link at once, without a close frame (a connection reset)."""
        with self._cond:
            links, self._links = self._links, []
        for link in links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)

    def wait_opened(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.opened >= count, timeout):
                raise AssertionError(f"expected {count} Socket Mode link(s), got {self.opened}")

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self.drop_links()
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- serving ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
            try:
                link, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(link,), daemon=True)
            with self._cond:
                self._threads.append(thread)
            thread.start()

    def _serve(self, link: socket.socket) -> None:
        with link:
            link.settimeout(None)
            try:
                if not self._handshake(link):
                    return
                with self._cond:
                    if self._closed:
                        return
                    self._links.append(link)
                    self.opened += 1
                    self._cond.notify_all()
                hello = {"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}}
                _send(link, TEXT, json.dumps(hello).encode())
                while True:
                    opcode, payload = _receive(link)
                    if opcode == CLOSE:
                        _send(link, CLOSE, payload[:2])
                        return
                    if opcode == PING:
                        with self._cond:
                            self.pings += 1
                            answer = self.answer_pings
                        if answer:
                            _send(link, PONG, payload)
            except (OSError, ConnectionError, ValueError):
                return  # the link went away (or we dropped it)
            finally:
                with self._cond:
                    if link in self._links:
                        self._links.remove(link)

    def _handshake(self, link: socket.socket) -> bool:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = link.recv(1024)
            if not chunk:
                return False
            request += chunk
        headers = {}
        for line in request.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        link.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return True


def _exactly(link: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = link.recv(size - len(data))
        if not chunk:
            raise ConnectionError("link closed")
        data += chunk
    return data


def _receive(link: socket.socket) -> tuple[int, bytes]:
    """One frame from the client (clients always mask, RFC 6455 §5.3)."""
    first, second = _exactly(link, 2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _exactly(link, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _exactly(link, 8))
    mask = _exactly(link, 4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_exactly(link, length)))
    return first & 0x0F, payload


def _send(link: socket.socket, opcode: int, payload: bytes) -> None:
    """One unmasked frame from the server."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    link.sendall(header + payload)
