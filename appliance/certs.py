"""The box's TLS certificate (DATA/tls), shared by SIP over TLS and the setup page's HTTPS.

One certificate for both: a technician who installs the office's own certificate and key as
`cert.pem` and `key.pem` replaces it everywhere. Without them the first service to start makes
a self-signed one; the files are written to temporary names, fsynced and renamed (the key mode
0600), under a lock, so the two services starting together never pair one's key with the
other's certificate. `server_context` is the one TLS policy: TLS 1.2 or later, ECDHE key
exchange and AEAD ciphers only.
"""

from __future__ import annotations

import fcntl
import logging
import ssl
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from appliance.store import files

logger = logging.getLogger(__name__)

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""The TLS 1.2 suites allowed: ECDHE (forward secrecy) with AES-GCM or ChaCha20-Poly1305
(AEAD); no RSA key exchange, no CBC, no SHA-1 MACs. TLS 1.3's suites are all of that kind and
are left as OpenSSL has them (AES-128/256-GCM, ChaCha20-Poly1305)."""


class CertificateError(Exception):
    """The certificate cannot be made or loaded. `str()` says why."""


def certificate(data_dir: Path, names: Iterable[str] = ()) -> tuple[Path, Path]:
    """DATA/tls/cert.pem and key.pem, made by `openssl` the first time (self-signed, EC P-256,
    ten years, for `pbx.local`, `localhost`, the loopback addresses and `names`)."""
    folder = data_dir / "tls"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other service may be making it right now
        if not (cert.exists() and key.exists()):
            _make(folder, cert, key, names)
    return cert, key


def _make(folder: Path, cert: Path, key: Path, names: Iterable[str]) -> None:
    alt = ["DNS:pbx.local", "DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    for name in names:
        entry = f"IP:{name}" if name.replace(".", "").isdigit() or ":" in name else f"DNS:{name}"
        if name not in ("0.0.0.0", "::", "") and entry not in alt:
            alt.append(entry)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".new-") as work:
        tmp_key, tmp_cert = Path(work) / "key.pem", Path(work) / "cert.pem"
        command = [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", "/CN=pbx.local/O=PBX appliance", "-addext", f"subjectAltName={','.join(alt)}",
            "-keyout", str(tmp_key), "-out", str(tmp_cert),
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise CertificateError(
                "openssl is not installed: it makes the box's certificate"
            ) from None
        except subprocess.CalledProcessError as exc:
            raise CertificateError(
                f"openssl could not make a certificate: {exc.stderr.strip()}"
            ) from None
        tmp_key.chmod(0o600)
        # fsynced, renamed, the directory fsynced (`store.files`): a power cut leaves both
        # files whole or none; the key first: cert.pem's presence says both are there.
        files.publish(tmp_key, key)
        files.publish(tmp_cert, cert)
    logger.info("made a self-signed certificate for the box: %s", cert)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context with the box's certificate: TLS 1.2+, ECDHE and AEAD only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot load {cert}: {exc}") from None
    return context


def client_context() -> ssl.SSLContext:
    """A client-side context for connections the box opens (to a provider over TLS): the
    same protocol policy, the system's certificate authorities, host names checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    return context
