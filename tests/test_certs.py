"""The box's one certificate (appliance.certs): made once, atomically, the key private, the
same files for SIP over TLS and HTTPS, and its TLS policy."""

from __future__ import annotations

import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from appliance import certs


def test_made_once_with_a_private_key(tmp_path: Path) -> None:
    cert, key = certs.certificate(tmp_path, ["10.0.0.5", "pbx.office"])
    assert (cert, key) == (tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert "IP Address:10.0.0.5" in text and "DNS:pbx.office" in text
    assert "prime256v1" in text or "P-256" in text
    before = cert.read_bytes()
    assert certs.certificate(tmp_path) == (cert, key)
    assert cert.read_bytes() == before  # kept, not made again
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [".lock", "cert.pem", "key.pem"]


def test_a_technicians_certificate_is_used_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    folder.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=office.example", "-keyout", str(folder / "key.pem"),
         "-out", str(folder / "cert.pem")], check=True, capture_output=True,
    )  # fmt: skip
    before = (folder / "cert.pem").read_bytes()
    cert, key = certs.certificate(tmp_path)
    assert cert.read_bytes() == before
    certs.server_context(cert, key)  # loads


def test_two_services_starting_at_once_get_one_matching_pair(tmp_path: Path) -> None:
    results: list[tuple[Path, Path]] = []
    threads = [threading.Thread(target=lambda: results.append(certs.certificate(tmp_path)))
               for _ in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and len(set(results)) == 1
    cert, key = results[0]
    certs.server_context(cert, key)  # key and certificate belong together, or this raises


def test_server_policy(tmp_path: Path) -> None:
    context = certs.server_context(*certs.certificate(tmp_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12), tls12


def test_unloadable_files_say_why(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(certs.CertificateError, match="cannot load"):
        certs.server_context(tmp_path / "cert.pem", tmp_path / "key.pem")
