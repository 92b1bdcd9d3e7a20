"""The farm's C2PA signing credentials: configured (FARM_C2PA_KEY + FARM_C2PA_CERT), or a
self-signed pair made on first use under FARM_HOME/c2pa.

A self-signed signature proves the file is unchanged since the farm signed it
(integrity), not who the farm is (identity): nobody outside trusts its root. c2pa-rs
refuses a CA certificate as the signer, so the pair is a small chain: a root CA
(keyCertSign) that signs a leaf (digitalSignature, emailProtection EKU, not a CA) whose
ES256 (P-256) key signs. Key files are written to a temporary name with mode 0600 and
renamed; an fcntl lock makes concurrent first uses create one pair. The key's text is
never logged, stored in the database or returned by the API.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import ConfigError

SELF_SIGNED_DIR = "c2pa"
KEY_FILE, CHAIN_FILE, ROOT_FILE = "signer.key", "signer-chain.pem", "root-ca.pem"
VALID_DAYS = 3650
"""How long a self-signed pair stays valid (days)."""


@dataclass(frozen=True)
class Credentials:
    """A signing key and its certificate chain (PEM text); `root_pem` for a self-signed pair."""

    cert_chain_pem: bytes
    key_pem: bytes = field(repr=False)
    self_signed: bool
    root_pem: bytes | None = None
    where: str = ""            # for messages: the files they came from


def self_signed_dir(settings: Any) -> Path:
    return Path(settings.home) / SELF_SIGNED_DIR


def load_credentials(settings: Any) -> Credentials:
    """The configured key and certificate, or the farm's self-signed pair (made if missing)."""
    key, cert = settings.c2pa_key, settings.c2pa_cert
    if (key is None) != (cert is None):
        given, missing = ("FARM_C2PA_KEY", "FARM_C2PA_CERT") if key else ("FARM_C2PA_CERT", "FARM_C2PA_KEY")
        raise ConfigError(f"{given} is set but {missing} is not: signing needs both",
                          hint="set both (c2pa_key and c2pa_cert in farm.toml), or neither for a self-signed pair")
    if key is not None:
        return Credentials(_read(Path(cert), "FARM_C2PA_CERT"), _read(Path(key), "FARM_C2PA_KEY"),
                           self_signed=False, where=f"{cert}")
    return ensure_self_signed(self_signed_dir(settings))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror})",
                          hint=f"point {what} at a readable PEM file") from None


def ensure_self_signed(folder: Path) -> Credentials:
    """The self-signed pair in `folder`, made once (under a lock) if it is not there."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = [folder / KEY_FILE, folder / CHAIN_FILE, folder / ROOT_FILE]
    if not all(f.exists() for f in files):
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not all(f.exists() for f in files):   # another process may have made it meanwhile
                    key_pem, chain_pem, root_pem = make_self_signed()
                    for path, data in ((files[2], root_pem), (files[1], chain_pem), (files[0], key_pem)):
                        _write_private(path, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    key_pem, chain_pem, root_pem = (f.read_bytes() for f in files)
    return Credentials(chain_pem, key_pem, self_signed=True, root_pem=root_pem, where=str(folder))


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary name, then rename), readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def make_self_signed(now: dt.datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """(leaf key PEM, leaf + root chain PEM, root PEM): a fresh root CA and an ES256 signer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=VALID_DAYS)

    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "farm (self-signed)")])

    def usage(sign: bool, ca: bool) -> Any:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("farm self-signed root")).issuer_name(name("farm self-signed root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(False, True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("farm signer")).issuer_name(root.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    root_pem = root.public_bytes(pem)
    return key_pem, leaf.public_bytes(pem) + root_pem, root_pem


def signing_alg(key_pem: bytes) -> str:
    """The C2PA algorithm name for a PEM private key: es256/es384/es512 (EC) or ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError("FARM_C2PA_KEY is not an unencrypted PEM private key",
                          hint="give an EC (P-256/384/521) or Ed25519 key in PEM (PKCS#8)") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "es256", 384: "es384", 521: "es512"}.get(key.curve.key_size, "es256")
    raise ConfigError("FARM_C2PA_KEY must be an EC (P-256/384/521) or Ed25519 key",
                      hint="C2PA signs with ES256/384/512, PS256 or Ed25519; farm supports EC and Ed25519 keys")
