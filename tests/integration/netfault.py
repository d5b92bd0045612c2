"""A real TCP link between a client and one backend that a test can take down or cut mid-transfer.

Not a mock: every byte still travels to the real emulator and back; the link
only does what a flaky mobile network does (refuse connections, drop one mid-response).
"""

from __future__ import annotations

import socket
import threading


class FaultyLink:
    def __init__(self, target_url: str):
        host_port = target_url.split("://", 1)[-1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.down = False
        self.cut_next_after: int | None = None  # bytes of the next response before the link drops it
        self.connections = 0
        self.requests: list[bytes] = []  # the first bytes each connection sent (request line and headers)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def go_down(self) -> None:
        with self._lock:
            self.down = True
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def come_up(self) -> None:
        self.down = False

    def close(self) -> None:
        self.go_down()
        _close(self.server)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.down:
                _close(client)
                continue
            with self._lock:
                self.connections += 1
                limit, self.cut_next_after = self.cut_next_after, None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._open.update((client, upstream))
        threading.Thread(target=self._pump, args=(client, upstream, None, True), daemon=True).start()
        self._pump(upstream, client, limit, False)

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None, record: bool) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if record and sent == 0:
                    self.requests.append(data[:2048])
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[: limit - sent])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
