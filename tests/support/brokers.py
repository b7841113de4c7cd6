"""A real mosquitto broker on loopback, a throwaway PKI for TLS, and a subscriber that counts."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edgekit.runtime.results import Latency, Result
from tests.support.env import free_port, need_program


@dataclass(frozen=True)
class Certificates:
    """PEM files of a throwaway certificate authority and what it signed (keys unencrypted)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


# Explicit extensions, so the result does not depend on the system's openssl.cnf; the key
# identifiers keep newer Pythons' strict X.509 checks happy.
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = edgekit test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_certificates(root: Path) -> Certificates:
    """A fresh CA (EC P-256, valid a day) that signs a server certificate and a client certificate.

    The server certificate names 127.0.0.1 and localhost. The openssl program makes them all.
    """
    openssl = need_program("openssl", "apt-get install openssl")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-config", str(config)]

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", *new_key, "-extensions", "ca", "-subj", "/CN=edgekit test CA", "-days", "1",
        "-keyout", root / "ca.key", "-out", root / "ca.pem")
    for serial, name in enumerate(("server", "client"), start=1):
        run("req", "-new", *new_key, "-subj", f"/CN=edgekit test {name}", "-keyout", root / f"{name}.key",
            "-out", root / f"{name}.csr")
        run("x509", "-req", "-in", root / f"{name}.csr", "-CA", root / "ca.pem", "-CAkey", root / "ca.key",
            "-set_serial", str(serial), "-days", "1", "-extfile", config, "-extensions", name,
            "-out", root / f"{name}.pem")
    return Certificates(root / "ca.pem", root / "server.pem", root / "server.key", root / "client.pem",
                        root / "client.key")


class Mosquitto:
    """A real mosquitto broker on a loopback port, which tests can stop and restart.

    Args:
        binary: the mosquitto program.
        root: a directory for its configuration, password and persistence files.
        passwords: user name -> password; when given, clients without them are refused.
        tls: when given, the listener speaks TLS with `tls.server_cert`, signed by `tls.ca`.
        require_certificate: with `tls`, clients must also present a certificate signed by `tls.ca`.
    """

    def __init__(self, binary: str, root: Path, *, passwords: dict[str, str] | None = None,
                 tls: Certificates | None = None, require_certificate: bool = False) -> None:
        import getpass

        self.binary = binary
        self.port = free_port()
        self.config = root / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1"]
        if passwords:
            password_file = root / "passwords"
            mosquitto_passwd = need_program("mosquitto_passwd", "apt-get install mosquitto")
            for i, (user, password) in enumerate(passwords.items()):
                create = ["-c"] if i == 0 else []
                subprocess.run([mosquitto_passwd, "-b", *create, str(password_file), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if tls is not None:
            lines += [f"cafile {tls.ca}", f"certfile {tls.server_cert}", f"keyfile {tls.server_key}",
                      f"require_certificate {'true' if require_certificate else 'false'}"]
        # Persistence keeps subscriber sessions across a restart, as a production broker does.
        # As root, mosquitto would switch to the user "mosquitto", which cannot write here.
        lines += ["persistence true", f"persistence_location {root}/", "autosave_interval 1",
                  f"user {getpass.getuser()}"]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import socket
        import time

        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Subscriber:
    def __init__(self, port: int, topic: str, *, user: str | None = None, password: str | None = None,
                 tls: Certificates | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[str] = []
        self.ready = threading.Event()
        # a persistent session: QoS 1 messages published while it reconnects are kept for it
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{topic.replace('/', '-')}",
                                  clean_session=False)
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls is not None:  # with a client certificate, which brokers that do not ask for one ignore
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key))

        def on_connect(client, _userdata, _flags, _reason, _props=None):
            client.subscribe(topic, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = lambda _c, _u, message: self.messages.append(message.payload.decode())
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def result(i: int) -> Result:
    return Result(kind="classification", latency=Latency(0.1, 0.2, 0.1), variant="tflite-int8", timestamp=1000.0 + i,
                  sequence=i, label="yes", index=1, score=0.9)
