"""MQTT result sink (paho-mqtt): never blocks inference.

``mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC[?qos=1&buffer=1000&keepalive=30&client_id=ID]``
and ``mqtts://...`` for TLS (``&ca=FILE&cert=FILE&key=FILE&insecure=1``).

paho's network thread connects and reconnects with backoff. While the broker is away, or
slower than inference, results wait in a bounded buffer; when it is full the oldest are
dropped and counted. At most `buffer` more messages wait inside paho.
On reconnection the buffer is flushed in order, after the messages paho re-sends (QoS 1
and 2 messages the broker had not acknowledged when it went away). `write` only appends
to a deque or hands the message to paho's non-blocking `publish`. Every result written is
either delivered (acknowledged by the broker at QoS 1 and 2, written to the socket at
QoS 0) or counted in `dropped`: pushed out of the full buffer, lost with a QoS 0
connection, or still unacknowledged when `close` gives up.

The spec, including its TLS files, is checked when the sink is made (`InputError`).
What can only go wrong later, in paho's thread (broker away, credentials refused,
certificate not trusted), is logged as one warning per distinct reason until the
next successful connection.
"""

from __future__ import annotations

import collections
import logging
import re
import ssl
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from edgekit._optional import require
from edgekit.errors import InputError
from edgekit.runtime.results import Result
from edgekit.runtime.sinks.base import Sink, SinkPlugin

log = logging.getLogger("edgekit.mqtt")

OPTIONS = ("qos", "buffer", "keepalive", "client_id", "ca", "cert", "key", "insecure")
TLS_OPTIONS = ("ca", "cert", "key", "insecure")
# CONNACK reason codes (paho gives MQTT 3.1.1's 4 and 5 their MQTT 5 numbers).
_BAD_CREDENTIALS = (134, 135)  # "Bad user name or password", "Not authorized"
_BAD_CLIENT_ID = 133  # "Client identifier not valid"


def _redacted(parsed: urllib.parse.SplitResult) -> str:
    """The spec with its password masked, for messages."""
    if parsed.password is None:
        return parsed.geturl()
    userinfo, _, host = parsed.netloc.rpartition("@")
    return parsed._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}").geturl()


def _ssl_text(exc: Exception) -> str:
    """OpenSSL's reason without its "[LIB: CODE]" prefix and "(_ssl.c:N)" suffix."""
    text = exc.args[1] if isinstance(exc, OSError) and len(exc.args) > 1 else str(exc)
    text = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(text))
    return "not PEM data OpenSSL can read" if text == "PEM lib" else text


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key, and wait.
    raise InputError("encrypted private key", expected="an unencrypted private key in key=",
                     found="one that needs a password",
                     hint="decrypt it with `openssl pkey -in KEY -out KEY.plain` and keep that file private")


def _tls_context(scheme: str, options: dict[str, str], what: str) -> ssl.SSLContext | None:
    """The TLS context of an ``mqtts://`` spec (None for ``mqtt://``).

    Every file is loaded here, so a bad one fails when the sink is made, not later in
    paho's thread. Mirrors paho's `tls_set`: TLS client defaults, system CAs unless `ca`.

    Raises:
        InputError: TLS options on ``mqtt://``, a missing or unreadable file, a key
            without its certificate, or an `insecure` other than 0 or 1.
    """
    given = [f"{name}=" for name in TLS_OPTIONS if name in options]
    if scheme != "mqtts":
        if given:
            raise InputError(what, expected="TLS options only with mqtts://", found=f"{', '.join(given)} with mqtt://",
                             hint="write mqtts://... to connect with TLS")
        return None
    insecure = options.get("insecure", "0")
    if insecure not in ("0", "1"):
        raise InputError(what, expected="insecure=0 or insecure=1", found=f"insecure={insecure}")
    files: dict[str, str] = {}
    for name in ("ca", "cert", "key"):
        if name not in options:
            continue
        path = Path(options[name]).expanduser()
        if not path.is_file():
            found = f"{name}= with no path" if not options[name] else f"{'no file' if not path.exists() else 'a directory'} {path}"
            raise InputError(what, expected=f"a PEM file in {name}=", found=found,
                             hint="check the path (a relative one starts at the working directory)")
        files[name] = str(path)
    if "key" in files and "cert" not in files:
        raise InputError(what, expected="a client certificate in cert= with key=", found="key= alone",
                         hint="add cert=FILE (key= may be left out when that file also holds the key)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if "cert" in files:
        try:
            context.load_cert_chain(files["cert"], files.get("key"), password=_no_password)
        except InputError as exc:
            raise InputError(what, expected=exc.expected, found=f"{exc.found} ({files.get('key', files['cert'])})",
                             hint=exc.hint) from None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise InputError(what, expected="a PEM client certificate in cert= and its private key in key= "
                             "(or in the same file)", found=f"{_ssl_text(exc)} ({files['cert']}, "
                             f"{files.get('key', 'no key=')})") from exc
    if insecure == "1":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if "ca" in files:
            context.load_verify_locations(cafile=files["ca"])
        else:
            context.load_default_certs()
    except (OSError, ValueError) as exc:
        raise InputError(what, expected="PEM CA certificates in ca=", found=f"{_ssl_text(exc)} ({files.get('ca')})",
                         hint="pass the certificate of the CA that signed the broker's certificate") from exc
    return context


class MqttSink(Sink):
    """Publishes each result as one JSON message to a topic.

    Args:
        url: the sink spec (see the module docstring).

    Raises:
        InputError: a spec without host or topic, bad numbers, unknown options, or TLS
            options that name missing or unreadable files.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        parsed = urllib.parse.urlsplit(url)
        what = f"sink {_redacted(parsed)!r}"
        # Blank values are kept so that "ca=" is an error rather than "use the system CAs".
        options = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        self.topic = parsed.path.lstrip("/")
        if not parsed.hostname or not self.topic:
            raise InputError(what, expected="mqtt://HOST[:PORT]/TOPIC", found="no host or no topic")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InputError(what, expected=f"options among {list(OPTIONS)}", found=", ".join(unknown))
        try:
            self.qos = int(options.get("qos", "1"))
            capacity = int(options.get("buffer", "1000"))
            keepalive = int(options.get("keepalive", "30"))
            port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise InputError(what, expected="integer qos, buffer, keepalive and port", found=str(exc)) from exc
        if self.qos not in (0, 1, 2) or capacity < 1:
            raise InputError(what, expected="qos 0, 1 or 2 and buffer >= 1", found=f"qos {self.qos}, buffer {capacity}")
        tls = _tls_context(parsed.scheme, options, what)
        mqtt = require("paho.mqtt.client", "publishing results over MQTT")
        self.broker = f"[{parsed.hostname}]:{port}" if ":" in parsed.hostname else f"{parsed.hostname}:{port}"
        self.tls = tls is not None
        self.buffer: collections.deque[str] = collections.deque()
        self.capacity = capacity
        self.lock = threading.Lock()
        self._flushing = threading.Lock()  # one flusher at a time (paho's thread or the caller's)
        self.connected = threading.Event()
        self.published = 0
        self.delivered = 0
        self.reconnects = 0
        self._connections = 0
        # Set in paho's thread: what was logged since the last connection, whether the broker
        # answered the current attempt, and whether it refused us (close() stops waiting
        # then: retrying will not change its mind).
        self._warned: set[str] = set()
        self._answered = False
        self.refused = False
        self._resuming = False  # reconnected, waiting for paho to re-send what it holds
        self._closing = False
        self._no_connection = mqtt.MQTT_ERR_NO_CONN
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=options.get("client_id", ""))
        if parsed.username:
            self.client.username_pw_set(urllib.parse.unquote(parsed.username),
                                        urllib.parse.unquote(parsed.password or ""))
        if tls is not None:
            self.client.tls_set_context(tls)
            if options.get("insecure") == "1":
                self.client.tls_insecure_set(True)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(min_delay=1, max_delay=8)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(parsed.hostname, port, keepalive=keepalive)
        self.client.loop_start()

    # paho's network thread calls these -------------------------------------------------

    def _warn(self, problem: str, hint: str) -> None:
        """Log one line per distinct problem until the next successful connection."""
        if problem in self._warned:
            return
        self._warned.add(problem)
        log.warning("mqtt: %s; %s (retrying; meanwhile the newest %d results are kept)", problem, hint, self.capacity)

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any = None) -> None:
        self._answered = True
        if getattr(reason, "is_failure", False):
            self.refused = True
            if getattr(reason, "value", None) in _BAD_CREDENTIALS:
                hint = "check the user name and password in the sink spec"
            elif getattr(reason, "value", None) == _BAD_CLIENT_ID:
                hint = "check client_id= in the sink spec"
            else:
                hint = "see the broker's log for why"
            self._warn(f"broker {self.broker} refused the connection: {reason}", hint)
            return
        if self._warned:
            log.info("mqtt: connected to broker %s", self.broker)
        self._warned.clear()
        self.refused = False
        self._connections += 1
        if self._connections > 1:
            self.reconnects += 1
        with self.lock:
            if self.qos == 0:
                # paho discards unsent QoS 0 messages when it reconnects: they are lost.
                self.dropped += max(0, self.published - self.delivered)
                self.published = min(self.published, self.delivered)
            elif self.published > self.delivered:
                # paho re-sends the unacknowledged messages after this callback returns;
                # anything published now would overtake them. Resume at the first
                # acknowledgement, which paho reports only after re-sending them all
                # (those beyond its in-flight window queue ahead of anything new).
                self._resuming = True
                return
        self.connected.set()
        self._flush()

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        # paho calls this inside its `except OSError:` around the attempt without passing
        # the exception, so it is the one being handled.
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLCertVerificationError):
            self.refused = True
            self._warn(f"cannot verify the TLS certificate of broker {self.broker}: {exc.verify_message.rstrip('.')}",
                       "pass the CA that signed it as ca=FILE in the sink spec, and use a host name the "
                       "certificate names")
        elif self.tls and isinstance(exc, (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            self.refused = True
            self._warn(f"broker {self.broker} closed the connection during the TLS handshake",
                       "check that its listener speaks TLS (else use mqtt://), and cert= and key= if it wants a "
                       "client certificate")
        elif isinstance(exc, ssl.SSLError):
            self._warn(f"TLS handshake with broker {self.broker} failed: {_ssl_text(exc)}",
                       "check that the broker's listener speaks TLS, and cert= and key= if it wants a client "
                       "certificate")
        elif isinstance(exc, OSError):
            self._warn(f"cannot reach broker {self.broker}: {exc.strerror or exc}",
                       "check the host and port in the sink spec and that the broker is running")
        else:
            self._warn(f"cannot connect to broker {self.broker}", "check the sink spec")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any = None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self._resuming = False
        answered, self._answered = self._answered, False
        if self._closing or not getattr(reason, "is_failure", False):
            return
        if not answered:
            # No CONNACK: a plain client at a TLS listener, or TLS without a required client certificate.
            self.refused = True
            self._warn(f"broker {self.broker} closed the connection before answering it",
                       "check mqtt:// or mqtts:// against the broker's listener, and cert= and key= if it "
                       "wants a client certificate")
        elif was_connected:
            self._warn(f"lost the connection to broker {self.broker}: {reason}",
                       "check that the broker is running and reachable")

    def _on_publish(self, *_args: Any) -> None:
        with self.lock:
            self.delivered += 1
            resume, self._resuming = self._resuming, False
        if resume:
            self.connected.set()
        if self.buffer:  # room in paho again: go on with the backlog
            self._flush()

    # ---------------------------------------------------------------------------------

    def _publish(self, payload: str) -> bool:
        """Hand one message to paho, unless `capacity` messages already wait in it: paho's
        own queue has no bound, and a publisher faster than the broker would grow it
        without end (a QoS 0 message counts as delivered once written to the socket)."""
        with self.lock:
            if self.published - self.delivered >= self.capacity:
                return False
        info = self.client.publish(self.topic, payload, qos=self.qos)
        # Caught between the connection dropping and paho telling us, a QoS 1 or 2 message
        # is kept by paho and sent after reconnecting; a QoS 0 one is not.
        return info.rc == 0 or (self.qos > 0 and info.rc == self._no_connection)

    def _flush(self) -> None:
        """Publish the buffer, oldest first, while connected and paho has room.

        Both paho's thread and the caller's call this; one flushes at a time. Whoever
        finds the lock taken leaves its work to the holder, which looks again after
        releasing it, so nothing appended meanwhile is left behind. When paho takes no
        more, the next acknowledgement (`_on_publish`) or `write` carries on.
        """
        while self.connected.is_set() and self._flushing.acquire(blocking=False):
            stalled = False
            try:
                while self.connected.is_set():
                    with self.lock:
                        if not self.buffer:
                            break
                        payload = self.buffer[0]
                    if not self._publish(payload):
                        stalled = True
                        break
                    with self.lock:
                        self.published += 1
                        if self.buffer and self.buffer[0] is payload:
                            self.buffer.popleft()
                        else:  # `write` pushed it out of the full buffer meanwhile: not dropped after all
                            self.dropped -= 1
            finally:
                self._flushing.release()
            if stalled or not self.buffer:
                return

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
                # a QoS 0 message counts as delivered once paho has written it to the socket
                done = not self.buffer and self.delivered >= self.published
            if done or (self.refused and not self.connected.is_set()):
                break
            time.sleep(0.05)
        with self.lock:
            # never handed to paho
            self.dropped += len(self.buffer)
            self.buffer.clear()
        self._closing = True  # what paho reports from here on is our own doing
        self.client.disconnect()
        self.client.loop_stop()
        with self.lock:
            # handed to paho and never delivered. Counted only now that paho's thread has
            # stopped: it may still write (QoS 0) or see acknowledged what was in flight
            # until then, and a message must not count as both delivered and dropped.
            self.dropped += max(0, self.published - self.delivered)

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"published": self.published, "delivered": self.delivered, "buffered": len(self.buffer),
                    "dropped": self.dropped, "reconnects": self.reconnects}


MQTT = SinkPlugin(form="mqtt://[USER:PASS@]HOST:PORT/TOPIC[?qos=1&buffer=1000]",
                  help="one JSON message per result to an MQTT broker, buffered while it is away", open=MqttSink, url=True)
MQTTS = SinkPlugin(form="mqtts://...", help="MQTT over TLS (ca=, cert=, key= files)", open=MqttSink, url=True)
