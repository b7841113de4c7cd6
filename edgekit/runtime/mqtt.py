"""MQTT result sink (paho-mqtt): never blocks inference.

``mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC[?qos=1&buffer=1000&keepalive=30&client_id=ID]``
and ``mqtts://...`` for TLS (``&ca=FILE&cert=FILE&key=FILE&insecure=1``).

paho's network thread connects and reconnects with backoff. While the broker is away,
results wait in a bounded buffer; when it is full the oldest are dropped and counted.
On reconnection the buffer is flushed in order. `write` only appends to a deque or
hands the message to paho's non-blocking `publish`.
"""

from __future__ import annotations

import collections
import threading
import time
import urllib.parse
from typing import Any

from edgekit._optional import require
from edgekit.errors import InputError
from edgekit.runtime.results import Result
from edgekit.runtime.sinks import Sink


class MqttSink(Sink):
    """Publishes each result as one JSON message to a topic."""

    def __init__(self, url: str) -> None:
        super().__init__()
        parsed = urllib.parse.urlsplit(url)
        options = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        self.topic = parsed.path.lstrip("/")
        if not parsed.hostname or not self.topic:
            raise InputError(f"sink {url!r}", expected="mqtt://HOST[:PORT]/TOPIC", found="no host or no topic")
        try:
            self.qos = int(options.get("qos", "1"))
            capacity = int(options.get("buffer", "1000"))
            keepalive = int(options.get("keepalive", "30"))
            port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise InputError(f"sink {url!r}", expected="integer qos, buffer, keepalive and port",
                             found=str(exc)) from exc
        if self.qos not in (0, 1, 2) or capacity < 1:
            raise InputError(f"sink {url!r}", expected="qos 0, 1 or 2 and buffer >= 1",
                             found=f"qos {self.qos}, buffer {capacity}")
        mqtt = require("paho.mqtt.client", "publishing results over MQTT")
        self.buffer: collections.deque[str] = collections.deque()
        self.capacity = capacity
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.published = 0
        self.delivered = 0
        self.reconnects = 0
        self._connections = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=options.get("client_id", ""))
        if parsed.username:
            self.client.username_pw_set(urllib.parse.unquote(parsed.username),
                                        urllib.parse.unquote(parsed.password or ""))
        if parsed.scheme == "mqtts":
            import ssl

            self.client.tls_set(ca_certs=options.get("ca"), certfile=options.get("cert"), keyfile=options.get("key"),
                                cert_reqs=ssl.CERT_NONE if options.get("insecure") == "1" else ssl.CERT_REQUIRED)
            if options.get("insecure") == "1":
                self.client.tls_insecure_set(True)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(min_delay=1, max_delay=8)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(parsed.hostname, port, keepalive=keepalive)
        self.client.loop_start()

    # paho's network thread calls these -------------------------------------------------

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            return
        self._connections += 1
        if self._connections > 1:
            self.reconnects += 1
        self.connected.set()
        self._flush()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_publish(self, *_args: Any) -> None:
        with self.lock:
            self.delivered += 1

    # ---------------------------------------------------------------------------------

    def _publish(self, payload: str) -> bool:
        info = self.client.publish(self.topic, payload, qos=self.qos)
        return info.rc == 0

    def _flush(self) -> None:
        while self.connected.is_set():
            with self.lock:
                if not self.buffer:
                    return
                payload = self.buffer[0]
            if not self._publish(payload):
                return
            with self.lock:
                if self.buffer and self.buffer[0] is payload:
                    self.buffer.popleft()
                self.published += 1

    def write(self, result: Result) -> None:
        payload = result.to_json()
        with self.lock:
            backlog = bool(self.buffer)
        if self.connected.is_set() and not backlog and self._publish(payload):
            with self.lock:
                self.published += 1
            return
        with self.lock:
            if len(self.buffer) >= self.capacity:
                self.buffer.popleft()
                self.dropped += 1
            self.buffer.append(payload)
        if self.connected.is_set():
            self._flush()

    def close(self, timeout: float = 5.0) -> None:
        """Flush what can be flushed within `timeout`, then disconnect."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._flush()
            with self.lock:
                done = not self.buffer and (self.qos == 0 or self.delivered >= self.published)
            if done or not self.connected.is_set():
                if done:
                    break
            time.sleep(0.05)
        with self.lock:
            self.dropped += len(self.buffer)  # never delivered
            self.buffer.clear()
        self.client.disconnect()
        self.client.loop_stop()

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"published": self.published, "delivered": self.delivered, "buffered": len(self.buffer),
                    "dropped": self.dropped, "reconnects": self.reconnects}
