"""Host identity, TLS contexts, fingerprints, safety codes, known hosts and the password exchange.

How this works
--------------
Every host has one long-lived **identity**: a self-signed ECDSA P-256 certificate and its key,
kept as PEM files in the user's data directory. Its **fingerprint** (SHA-256 of the certificate's
DER bytes) is what a joiner pins: it is shown in invites and stored in the joiner's **known hosts**
the first time it connects (trust on first use); a later connection to the same address that
presents another certificate is reported as "changed". Because certificates are pinned, the client
TLS context does not check names or chains; the caller compares fingerprints after the handshake.

A **password room** runs SPAKE2 inside TLS (`JoinerAuth` / `HostAuth`, no I/O here). Each side
proves it knows the password with an HMAC over the whole transcript, which includes the fingerprint
of the certificate the joiner actually saw (the host uses its own). Someone in the middle with a
certificate of its own therefore fails the proof even if it relays every message, and a wrong
password costs exactly one attempt per connection: the messages reveal nothing that allows
guessing offline.

The **safety code** is 16 digits people can read to each other to compare what each side saw;
after a password exchange it also depends on the shared key.

Wire fields the network layer carries (all base64, standard alphabet, with padding):
``hello.pake`` (joiner's SPAKE2 message, 33 bytes), ``auth.pake`` + ``auth.confirm`` (host's
message and 32-byte proof), then ``auth.confirm`` (joiner's proof). Decode them with `from_b64`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# cryptography and spake2 are imported where they are used: they cost a window's start-up
# ~40 ms, and fingerprints, safety codes and known hosts need neither.

log = logging.getLogger(__name__)

CERT_FILE = "host-cert.pem"
KEY_FILE = "host-key.pem"
LOCK_FILE = "identity.lock"
CERT_YEARS = 20
COMMON_NAME = "Parley host"
DIGEST_SIZE = 32

# --- small file helpers ---------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` so readers see the old file or the new one, never half of either.

    The temporary file is created with `mode` from the start (os.open), so a secret is never
    readable by others, not even for a moment before a chmod.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(path: Path, wait: float = 10.0, stale: float = 30.0) -> Iterator[None]:
    """Hold a lock file so two Parley processes never write the same files at once.

    A plain O_EXCL file works on every platform. A lock left by a crashed process is taken
    over once it is `stale` seconds old.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > stale:
                    path.unlink()
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{path} is held by another Parley; close it and retry."
                ) from None
            time.sleep(0.01)
    try:
        yield
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()


def _set_aside(path: Path, why: str = "broken") -> Path | None:
    """Rename a file that cannot be used, keeping it for the user instead of deleting it."""
    if not path.exists():
        return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{why}-{stamp}-{secrets.token_hex(2)}")
    os.replace(path, target)
    return target


# --- fingerprints -------------------------------------------------------------------------------


def format_fingerprint(digest: bytes) -> str:
    """The text form: upper-case hex pairs joined by colons, as `openssl x509 -fingerprint`."""
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"A fingerprint is {DIGEST_SIZE} bytes, not {len(digest)}.")
    return ":".join(f"{b:02X}" for b in digest)


def fingerprint(cert_der: bytes) -> str:
    """The fingerprint of a DER certificate in its text form."""
    return format_fingerprint(hashlib.sha256(cert_der).digest())


def fingerprint_digest(text: str) -> bytes:
    """The 32 bytes behind a fingerprint written as hex (colons optional) or compact base64url.

    Raises ValueError in plain words, so a mistyped fingerprint is reported, not trusted.
    """
    cleaned = text.strip()
    hexed = cleaned.replace(":", "").replace(" ", "")
    if len(hexed) == 2 * DIGEST_SIZE:
        try:
            return bytes.fromhex(hexed)
        except ValueError:
            pass
    if len(cleaned) == 43:  # 32 bytes of base64url without padding
        try:
            raw = base64.urlsafe_b64decode(cleaned + "=")
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == DIGEST_SIZE and compact_digest(raw) == cleaned:
            return raw
    raise ValueError(
        "That is not a certificate fingerprint (64 hex digits or 43 base64 characters)."
    )


def normalize_fingerprint(text: str) -> str:
    """Any accepted fingerprint spelling in the one text form used for comparison."""
    return format_fingerprint(fingerprint_digest(text))


def compact_digest(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def compact_fingerprint(text: str) -> str:
    """43 characters of base64url: short enough for an invite link."""
    return compact_digest(fingerprint_digest(text))


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """The fingerprint of the certificate the other side presented in this TLS session."""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("The other side presented no certificate.")
    return fingerprint(der)


# --- host identity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The host's certificate and key on disk. `note` says why an old identity was replaced."""

    cert_path: Path
    key_path: Path
    cert_der: bytes
    note: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_der)


class _Unusable(Exception):
    """The files exist but cannot serve as an identity (the message says why)."""


def _load(cert_path: Path, key_path: Path) -> Identity | None:
    """The identity on disk; None when there is none yet; `_Unusable` when it is broken."""
    try:
        cert_pem = cert_path.read_bytes()
    except FileNotFoundError:
        cert_pem = None
    try:
        key_pem = key_path.read_bytes()
    except FileNotFoundError:
        key_pem = None
    if cert_pem is None and key_pem is None:
        return None
    if cert_pem is None or key_pem is None:
        raise _Unusable(f"the {'certificate' if cert_pem is None else 'key'} file is missing")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise _Unusable(f"the certificate file cannot be read ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted
        raise _Unusable(f"the key file cannot be read ({exc})") from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise _Unusable("the key does not belong to the certificate")
    return Identity(cert_path, key_path, cert.public_bytes(der))


def _create(cert_path: Path, key_path: Path, note: str | None) -> Identity:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerate a clock a little behind
        .not_valid_after(now + dt.timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, key_pem, 0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Identity(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER), note)


def load_or_create_identity(directory: Path) -> Identity:
    """The host's identity from `directory`, made on first use.

    A broken pair (one file missing, unreadable PEM, an encrypted key, a key that does not match
    the certificate) is renamed to ``<name>.broken-<time>`` — kept, never deleted — and a new
    identity is made; `Identity.note` then says so, because everyone who pinned the old one will
    be told the host changed. Errors reading the directory itself (permissions) are raised.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    with contextlib.suppress(_Unusable):  # maybe another process is writing: decide under lock
        identity = _load(cert_path, key_path)
        if identity is not None:
            return identity
    with _locked(directory / LOCK_FILE):
        note = None
        try:
            identity = _load(cert_path, key_path)
            if identity is not None:
                return identity
        except _Unusable as exc:
            kept = [p for p in (_set_aside(cert_path), _set_aside(key_path)) if p is not None]
            note = (
                f"The host identity could not be used ({exc}); a new one was made. People who "
                "joined before will be told that the host's certificate changed. The old files "
                f"were kept as {', '.join(p.name for p in kept)}."
            )
            log.warning("%s", note)
        return _create(cert_path, key_path, note)


# --- TLS ----------------------------------------------------------------------------------------


def server_context(identity: Identity) -> ssl.SSLContext:
    """TLS 1.2 at least; the newest both sides speak (1.3) is chosen when available."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # a client may not make the host redo handshakes
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    return ctx


def client_context() -> ssl.SSLContext:
    """No name or chain checks: the host's certificate is self-signed and pinned by fingerprint.

    The caller MUST compare `peer_fingerprint(ssl_object)` with the invite or known hosts;
    without that comparison this context protects against eavesdroppers only.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def looks_like_tls(first_bytes: bytes) -> bool:
    """True when a connection opens with a TLS handshake record (a ClientHello).

    Lets one port serve TLS and plain text: a text peer's first byte is never 0x16.
    """
    return first_bytes[:1] == b"\x16"


# --- safety code ----------------------------------------------------------------------------------


def _framed(*parts: bytes) -> bytes:
    """Length-prefixed concatenation, so no two different inputs hash the same."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def safety_code(cert_der: bytes, session_key: bytes | None = None) -> str:
    """Sixteen digits in four groups, for two people to read aloud and compare.

    The joiner passes the certificate it received, the host its own; with a password room both
    pass the exchange's `session_key` too, so the codes match only if they talked to each other.
    """
    mode = b"with-key" if session_key is not None else b"cert-only"
    digest = hashlib.sha256(
        _framed(b"parley safety code v1", mode, cert_der, session_key or b"")
    ).digest()
    digits = f"{int.from_bytes(digest[:8], 'big') % 10**16:016d}"
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


# --- known hosts ----------------------------------------------------------------------------------

Verdict = Literal["new", "match", "changed"]


def address_key(host: str, port: int) -> str:
    """The "host:port" key known hosts use: lower case, IPv6 in brackets."""
    host = host.strip().strip("[]").rstrip(".").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class KnownHosts:
    """Fingerprints this user has accepted, per "host:port" (see `address_key`).

    The file is read on every call, so two Parley windows see each other's changes. A missing
    file is an empty list. A file that cannot be read as ours is treated as empty too, and
    `problem` says why; it is renamed to ``<name>.corrupt-<time>`` (kept, never overwritten) the
    next time something is remembered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None

    def _read(self) -> tuple[dict[str, str], bool]:
        """The entries, and whether the file is present but unusable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}, False
        try:
            data: Any = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("not a Parley known-hosts file")
            hosts = data.get("hosts")
            if not isinstance(hosts, dict):
                raise ValueError("no list of hosts")
            entries = {}
            for address, fp in hosts.items():
                if not isinstance(fp, str):
                    raise ValueError(f"bad entry for {address}")
                entries[address] = normalize_fingerprint(fp)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSON errors too
            self.problem = f"The list of known hosts in {self.path} could not be read ({exc})."
            return {}, True
        self.problem = None
        return entries, False

    def get(self, address: str) -> str | None:
        return self._read()[0].get(address)

    def check(self, address: str, fingerprint: str) -> Verdict:
        known = self.get(address)
        if known is None:
            return "new"
        return "match" if known == normalize_fingerprint(fingerprint) else "changed"

    def remember(self, address: str, fingerprint: str) -> None:
        """Trust `fingerprint` for `address` from now on (replacing any earlier one)."""
        self._update(address, normalize_fingerprint(fingerprint))

    def forget(self, address: str) -> None:
        self._update(address, None)

    def _update(self, address: str, fp: str | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(self.path.name + ".lock")):
            entries, corrupt = self._read()
            if corrupt:
                kept = _set_aside(self.path, "corrupt")
                log.warning("%s Kept as %s.", self.problem, kept)
            if fp is None:
                entries.pop(address, None)
            else:
                entries[address] = fp
            data = {"version": 1, "hosts": dict(sorted(entries.items()))}
            write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)


# --- password exchange ----------------------------------------------------------------------------

ID_JOINER = b"parley joiner"
ID_HOST = b"parley host"
PAKE_SIZE = 33  # one side byte + a 32-byte Ed25519 group element
CONFIRM_SIZE = 32
_ROLE_JOINER = b"joiner"
_ROLE_HOST = b"host"


class AuthError(Exception):
    """The password exchange failed; the text is meant for people."""


class WrongPassword(AuthError):
    def __init__(self) -> None:
        super().__init__(
            "Wrong password, or someone between you and the other side is not who they say."
        )


class BadAuthMessage(AuthError):
    """A PAKE message or proof that is not even well-formed (a bug or an attack)."""


def to_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def from_b64(value: object, size: int, what: str = "field") -> bytes:
    """Decode a base64 field from a JSON frame, which must hold exactly `size` bytes."""
    if not isinstance(value, str) or len(value) > 4 * size:
        raise BadAuthMessage(f"The {what} must be base64 text of {size} bytes.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadAuthMessage(f"The {what} is not valid base64.") from exc
    if len(raw) != size:
        raise BadAuthMessage(f"The {what} must be {size} bytes, not {len(raw)}.")
    return raw


def _password_bytes(password: str) -> bytes:
    """NFC first, so the same password typed on macOS and on Windows gives the same bytes."""
    if not password:
        raise ValueError("A password cannot be empty.")
    try:
        return unicodedata.normalize("NFC", password).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("A password cannot contain unpaired surrogate characters.") from exc


def _spake_finish(spake: Any, message: object) -> bytes:
    if not isinstance(message, bytes) or len(message) != PAKE_SIZE:
        raise BadAuthMessage(f"A password exchange message must be {PAKE_SIZE} bytes.")
    try:
        key = spake.finish(message)
    except Exception as exc:
        # Untrusted bytes meet a library whose error types are internal (wrong side byte,
        # point not on the curve, wrong subgroup, reflection): any failure means bad input.
        raise BadAuthMessage(f"The password exchange message is invalid ({exc!r}).") from exc
    assert isinstance(key, bytes)
    return key


def _derive(key: bytes, label: bytes, fp_digest: bytes) -> bytes:
    return hmac.new(key, _framed(b"parley pake v1", label, fp_digest), hashlib.sha256).digest()


def _proof(key: bytes, role: bytes, joiner_msg: bytes, host_msg: bytes, fp_digest: bytes) -> bytes:
    """One side's key confirmation, bound to both messages and the certificate seen."""
    confirm_key = _derive(key, b"confirm key", fp_digest)
    transcript = _framed(b"parley confirm v1", role, joiner_msg, host_msg, fp_digest)
    return hmac.new(confirm_key, transcript, hashlib.sha256).digest()


class JoinerAuth:
    """The joiner's half: `start()`, send; receive the host's answer, `finish()`, send the result.

    `cert_fingerprint` is the fingerprint of the certificate this connection received.
    `session_key` is set once the host has proved it knows the password.
    """

    def __init__(self, password: str, cert_fingerprint: str) -> None:
        from spake2 import SPAKE2_A

        self._spake = SPAKE2_A(_password_bytes(password), idA=ID_JOINER, idB=ID_HOST)
        self._fp = fingerprint_digest(cert_fingerprint)
        self._message: bytes | None = None
        self._finished = False
        self.session_key: bytes | None = None

    def start(self) -> bytes:
        if self._message is not None:
            raise RuntimeError("JoinerAuth.start() may only be called once.")
        message = self._spake.start()
        assert isinstance(message, bytes)
        self._message = message
        return message

    def finish(self, host_pake: bytes, host_confirm: bytes) -> bytes:
        """Check the host's proof (`WrongPassword` if it fails); return the joiner's proof."""
        if self._message is None or self._finished:
            raise RuntimeError("JoinerAuth.finish() needs start() first, and runs once.")
        self._finished = True
        key = _spake_finish(self._spake, host_pake)
        expected = _proof(key, _ROLE_HOST, self._message, host_pake, self._fp)
        if not isinstance(host_confirm, bytes) or not hmac.compare_digest(expected, host_confirm):
            raise WrongPassword()
        self.session_key = _derive(key, b"session key", self._fp)
        return _proof(key, _ROLE_JOINER, self._message, host_pake, self._fp)


class HostAuth:
    """The host's half: `respond()` to the joiner's message, then `verify()` its proof.

    `own_fingerprint` is the host's own certificate's. `session_key` is set once the joiner has
    proved it knows the password. Use one HostAuth per connection: that is what limits a
    guesser to one guess per connection.
    """

    def __init__(self, password: str, own_fingerprint: str) -> None:
        from spake2 import SPAKE2_B

        self._spake = SPAKE2_B(_password_bytes(password), idA=ID_JOINER, idB=ID_HOST)
        self._fp = fingerprint_digest(own_fingerprint)
        self._responded = False
        self._key: bytes | None = None
        self._expected: bytes | None = None
        self._verified = False
        self.session_key: bytes | None = None

    def respond(self, joiner_pake: bytes) -> tuple[bytes, bytes]:
        """The host's PAKE message and its proof (`BadAuthMessage` for malformed input)."""
        if self._responded:
            raise RuntimeError("HostAuth.respond() may only be called once.")
        self._responded = True
        message = self._spake.start()
        assert isinstance(message, bytes)
        key = _spake_finish(self._spake, joiner_pake)
        self._key = key
        self._expected = _proof(key, _ROLE_JOINER, joiner_pake, message, self._fp)
        return message, _proof(key, _ROLE_HOST, joiner_pake, message, self._fp)

    def verify(self, joiner_confirm: bytes) -> None:
        """Raise `WrongPassword` unless the joiner proved it knows the password."""
        if self._key is None or self._expected is None or self._verified:
            raise RuntimeError("HostAuth.verify() needs respond() first, and runs once.")
        self._verified = True
        ok = isinstance(joiner_confirm, bytes) and hmac.compare_digest(
            self._expected, joiner_confirm
        )
        if not ok:
            raise WrongPassword()
        self.session_key = _derive(self._key, b"session key", self._fp)


__all__ = [
    "CONFIRM_SIZE",
    "PAKE_SIZE",
    "AuthError",
    "BadAuthMessage",
    "HostAuth",
    "Identity",
    "JoinerAuth",
    "KnownHosts",
    "WrongPassword",
    "address_key",
    "client_context",
    "compact_fingerprint",
    "fingerprint",
    "fingerprint_digest",
    "format_fingerprint",
    "from_b64",
    "load_or_create_identity",
    "looks_like_tls",
    "normalize_fingerprint",
    "peer_fingerprint",
    "safety_code",
    "server_context",
    "to_b64",
    "write_atomic",
]
