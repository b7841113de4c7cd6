"""A real MJPEG-over-HTTP camera stand-in (multipart/x-mixed-replace), startable and stoppable."""

from __future__ import annotations

import http.server
import threading
import time

import numpy as np


class MjpegServer:
    def __init__(self, port: int, fps: float = 30.0, size: tuple[int, int] = (64, 48)) -> None:
        self.port, self.fps, self.size = port, fps, size
        self.frames_sent = 0
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def _frame(self, index: int) -> bytes:
        import cv2

        w, h = self.size
        image = np.full((h, w, 3), (index * 7) % 255, np.uint8)
        cv2.putText(image, str(index), (2, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        return cv2.imencode(".jpg", image)[1].tobytes()

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while server.httpd is not None:
                        data = server._frame(server.frames_sent)
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        server.frames_sent += 1
                        time.sleep(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


def main() -> None:
    """``python tests/support/mjpeg.py PORT [FPS]``: serve until killed, in a process of its own (so a
    test can SIGKILL the server as a crash would); prints ``listening`` once it accepts
    connections."""
    import sys

    server = MjpegServer(int(sys.argv[1]), fps=float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)
    server.start()
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
