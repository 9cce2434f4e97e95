"""The private CA and server certificates: what verify-full needs, issued once, reissued
when the CA changes."""

from __future__ import annotations

import ipaddress
import shutil
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from engines.pgcluster.tls import ensure_ca, ensure_server_cert


def test_server_certificate_names_loopback_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "tls", "test")
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"

    assert ensure_server_cert(ca, cert_path, key_path) is True

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(ca[0])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert ca[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca.crt").stat().st_mode) == 0o644


def test_certificates_are_issued_once_and_reissued_for_a_new_ca(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "tls", "test")
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    ensure_server_cert(ca, cert_path, key_path)
    first = cert_path.read_bytes()

    again = ensure_ca(tmp_path / "tls", "test")
    assert again[0] == ca[0]
    assert ensure_server_cert(again, cert_path, key_path) is False
    assert cert_path.read_bytes() == first

    shutil.rmtree(tmp_path / "tls")
    new_ca = ensure_ca(tmp_path / "tls", "test")
    assert ensure_server_cert(new_ca, cert_path, key_path) is True
    x509.load_pem_x509_certificate(cert_path.read_bytes()).verify_directly_issued_by(new_ca[0])
