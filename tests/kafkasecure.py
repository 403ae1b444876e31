"""A second, secured Kafka broker (SASL_SSL) for the tests of the client security settings.

Why a real broker and not a mock: what goes wrong with TLS and SASL in production (an
untrusted CA, a wrong password, TLS spoken to a plaintext port) is decided by the broker and
by the TLS stacks on both ends, and aiokafka's reaction to each (an exception, a closed
socket, endless retries) is exactly what :mod:`stream_app.kafka.client` has to cope with.

The broker runs from the same jars as ``infra/kafka.sh`` (``.cache/kafka-<version>/libs``,
the version pinned in ``infra/kafka/pom.xml``), as its own KRaft node on free loopback ports,
in its own temporary directory, and is stopped by its PID. The plaintext development broker
is left alone.

Listeners (all on 127.0.0.1):

* ``CLIENT``: SASL_SSL, the one clients use. SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN are
  enabled; the broker's certificate is signed by a throwaway CA made here with ``openssl``
  and is valid for ``localhost`` and ``127.0.0.1`` (subjectAltName). Kafka reads it as a PEM
  keystore (``ssl.keystore.type=PEM``); clients need no certificate of their own.
* ``INTERNAL``: PLAINTEXT, for inter-broker traffic. It keeps the broker's own traffic free
  of credentials and certificates; tests also use it as "a plaintext port" to check what a
  TLS client is told there.
* ``CONTROLLER``: PLAINTEXT, the KRaft controller.

SCRAM credentials are written into the metadata log when the storage is formatted
(``kafka.tools.StorageTool format --add-scram``); PLAIN users are listed in the listener's
JAAS configuration. The password is random per broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "infra" / "kafka" / "pom.xml"
KAFKA_SH = ROOT / "infra" / "kafka.sh"
USERNAME = "kpi"
SCRAM = ("SCRAM-SHA-512", "SCRAM-SHA-256")
MECHANISMS = (*SCRAM, "PLAIN")


class SecureBrokerError(RuntimeError):
    """The secured test broker could not be started; the message says why."""


@dataclass(frozen=True)
class CertSet:
    ca_file: Path
    other_ca_file: Path
    broker_keystore: Path
    #: certificate + key signed by the test CA but naming another host (hostname mismatch)
    wrong_host_cert: Path
    wrong_host_key: Path


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    internal_bootstrap: str
    username: str
    password: str
    certs: CertSet
    workdir: Path
    pid: int

    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file


def _why(d: Path) -> str:
    """The broker's error lines and their causes (a stack trace's tail alone hides them)."""
    text = ""
    for name in ("server.log", "stdout.log"):
        with contextlib.suppress(OSError):
            text += (d / name).read_text(errors="replace")
    lines = text.splitlines()
    keep = [ln for ln in lines if re.search(r"ERROR|FATAL|Caused by|Exception:", ln)]
    return "\n".join(keep[:12] or lines[-20:])


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def kafka_libs() -> Path:
    """The broker jars ``infra/kafka.sh`` uses; fetched by that script if missing."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise SecureBrokerError(f"no <kafka.version> in {POM.relative_to(ROOT)}")
    version = match.group(1).strip()
    libs = ROOT / ".cache" / f"kafka-{version}" / "libs"
    if not (libs / f"kafka_2.13-{version}.jar").is_file():
        proc = subprocess.run(
            ["bash", str(KAFKA_SH), "fetch"], capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0 or not (libs / f"kafka_2.13-{version}.jar").is_file():
            raise SecureBrokerError(
                f"the Kafka {version} jars are not in {libs.relative_to(ROOT)} and "
                f"`infra/kafka.sh fetch` failed:\n{proc.stderr[-2000:]}"
            )
    return libs


# --- certificates ---------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SecureBrokerError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def _make_ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=kpi-stream test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def _make_leaf(d: Path, name: str, ca: str, san: str) -> None:
    (d / f"{name}.ext").write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


def make_certs(d: Path) -> CertSet:
    """A throwaway CA, the broker's certificate, an unrelated CA, a wrong-host certificate."""
    if shutil.which("openssl") is None:
        raise SecureBrokerError("openssl not found: apt-get install openssl")
    d.mkdir(parents=True, exist_ok=True)
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _make_leaf(d, "broker", "ca", "DNS:localhost,IP:127.0.0.1")
    _make_leaf(d, "wrong-host", "ca", "DNS:kafka.invalid")
    # Kafka's PEM keystore: an unencrypted PKCS#8 key followed by the certificate chain.
    keystore = d / "broker-keystore.pem"
    keystore.write_text(
        (d / "broker.key").read_text() + (d / "broker.pem").read_text() + (d / "ca.pem").read_text()
    )
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return CertSet(
        ca_file=d / "ca.pem",
        other_ca_file=d / "other-ca.pem",
        broker_keystore=keystore,
        wrong_host_cert=d / "wrong-host.pem",
        wrong_host_key=d / "wrong-host.key",
    )


# --- broker ---------------------------------------------------------------------------------


def _server_properties(
    d: Path, client: int, internal: int, controller: int, keystore: Path, password: str
) -> str:
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USERNAME}="{password}";'  # noqa: E501
    return f"""\
# A single-node KRaft cluster whose clients must use SASL_SSL (tests/kafkasecure.py).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
log.dirs={d / "data"}

listener.name.client.sasl.enabled.mechanisms={",".join(MECHANISMS)}
listener.name.client.scram-sha-512.sasl.jaas.config={scram}
listener.name.client.scram-sha-256.sasl.jaas.config={scram}
listener.name.client.plain.sasl.jaas.config={plain}
listener.name.client.ssl.keystore.type=PEM
listener.name.client.ssl.keystore.location={keystore}
listener.name.client.ssl.client.auth=none

auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
"""


_LOG4J = """\
status = warn
name = kafka
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


def _cluster_id() -> str:
    while True:
        cid = secrets.token_urlsafe(16)[:22]
        if not cid.startswith("-"):
            return cid


async def _answers(bootstrap: str, certs: CertSet, password: str, timeout: float) -> bool:
    """True once the CLIENT listener authenticates with SCRAM and returns broker metadata."""
    from aiokafka.conn import create_conn
    from aiokafka.helpers import create_ssl_context
    from aiokafka.protocol.metadata import MetadataRequest

    host, port = bootstrap.rsplit(":", 1)
    try:
        async with asyncio.timeout(timeout):
            conn = await create_conn(
                host,
                int(port),
                request_timeout_ms=int(timeout * 1000),
                security_protocol="SASL_SSL",
                ssl_context=create_ssl_context(cafile=str(certs.ca_file)),
                sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=USERNAME,
                sasl_plain_password=password,
            )
            try:
                metadata = await conn.send(MetadataRequest([]))
            finally:
                conn.close()
            return bool(metadata.brokers)
    except (OSError, RuntimeError, TimeoutError):  # KafkaError is a RuntimeError
        return False


def _die_with_parent() -> None:
    """In the broker's process before exec: SIGTERM it when the test process dies, even by
    SIGKILL, so an interrupted run leaves no broker behind (Linux prctl PR_SET_PDEATHSIG)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def secure_broker(workdir: Path | None = None, timeout: float = 90.0) -> Iterator[SecureBroker]:
    """Start the SASL_SSL broker, yield how to reach it, stop it by PID at the end.

    ``workdir`` (created if needed) holds certificates, config, data and logs; without it a
    temporary directory is used and removed afterwards. Raises :class:`SecureBrokerError`
    with the broker's last log lines if it does not answer within ``timeout`` seconds.
    """
    java = shutil.which("java")
    if java is None:
        raise SecureBrokerError("java not found: Kafka 4 needs Java 17+ (`make stack` installs it)")
    libs = kafka_libs()
    own_dir = workdir is None
    d = Path(tempfile.mkdtemp(prefix="kpi-secure-kafka-")) if workdir is None else workdir
    d.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        certs = make_certs(d / "certs")
        password = secrets.token_hex(12)
        client, internal, controller = free_ports(3)
        props = d / "server.properties"
        props.write_text(
            _server_properties(d, client, internal, controller, certs.broker_keystore, password)
        )
        props.chmod(0o600)
        log4j = d / "log4j2.properties"
        log4j.write_text(_LOG4J.format(log=d / "server.log"))
        jvm = [
            java, "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={d}", "-cp", f"{libs}/*",
        ]  # fmt: skip
        fmt = subprocess.run(
            [
                *jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props),
                *[f"--add-scram={m}=[name={USERNAME},password={password}]" for m in SCRAM],
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if fmt.returncode != 0:
            raise SecureBrokerError(
                f"formatting the secured broker's storage failed:\n{fmt.stdout}{fmt.stderr}"
            )
        with open(d / "stdout.log", "wb") as out:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(props)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        bootstrap = f"127.0.0.1:{client}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SecureBrokerError(
                    f"the secured broker exited with code {proc.returncode} while starting "
                    f"(logs in {d}):\n{_why(d)}"
                )
            if asyncio.run(_answers(bootstrap, certs, password, 3.0)):
                break
            if time.monotonic() > deadline:
                raise SecureBrokerError(
                    f"the secured broker did not answer SASL_SSL at {bootstrap} within "
                    f"{timeout:.0f}s (logs in {d}):\n{_why(d)}"
                )
            time.sleep(0.3)
        yield SecureBroker(
            bootstrap=bootstrap,
            internal_bootstrap=f"127.0.0.1:{internal}",
            username=USERNAME,
            password=password,
            certs=certs,
            workdir=d,
            pid=proc.pid,
        )
    except SecureBrokerError:
        own_dir = False  # keep the logs the message points to
        raise
    finally:
        if proc is not None:
            _stop(proc)
        if own_dir:
            shutil.rmtree(d, ignore_errors=True)


def tls_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side TLS context, for a stand-in server presenting ``cert``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx
