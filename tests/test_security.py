"""Host identity, TLS contexts, safety codes, known hosts and the password exchange."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import socket
import ssl
import stat
import sys
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from spake2 import SPAKE2_A

from app import security
from app.security import (
    BadAuthMessage,
    HostAuth,
    Identity,
    JoinerAuth,
    KnownHosts,
    WrongPassword,
    address_key,
    client_context,
    compact_fingerprint,
    fingerprint,
    fingerprint_digest,
    from_b64,
    load_or_create_identity,
    looks_like_tls,
    normalize_fingerprint,
    peer_fingerprint,
    safety_code,
    server_context,
    to_b64,
)

POSIX = sys.platform != "win32"
DEADLINE = 10.0


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    return load_or_create_identity(tmp_path / "id")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- identity ------------------------------------------------------------------------------------


def test_identity_is_made_on_first_use_as_p256_self_signed(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"  # created, parents too
    ident = load_or_create_identity(directory)
    assert ident.cert_path.parent == directory
    assert ident.key_path.parent == directory
    assert ident.note is None
    cert = x509.load_pem_x509_certificate(ident.cert_path.read_bytes())
    assert cert.public_bytes(serialization.Encoding.DER) == ident.cert_der
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Parley host"
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life > dt.timedelta(days=365 * 19)
    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    assert b"PRIVATE KEY" in ident.key_path.read_bytes()


def test_fingerprint_is_sha256_of_the_der_certificate(identity: Identity) -> None:
    digest = hashlib.sha256(identity.cert_der).hexdigest().upper()
    assert identity.fingerprint == ":".join(re.findall("..", digest))
    assert fingerprint(identity.cert_der) == identity.fingerprint


def test_identity_is_loaded_not_remade_on_later_calls(tmp_path: Path) -> None:
    first = load_or_create_identity(tmp_path)
    key_bytes = first.key_path.read_bytes()
    second = load_or_create_identity(tmp_path)
    assert second.fingerprint == first.fingerprint
    assert second.key_path.read_bytes() == key_bytes
    assert second.note is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-cert.pem", "host-key.pem"]


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
@pytest.mark.usefixtures("umask_zero")
def test_key_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    ident = load_or_create_identity(tmp_path)
    assert stat.S_IMODE(ident.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ident.cert_path.stat().st_mode) == 0o644
    fresh = tmp_path / "fresh"
    load_or_create_identity(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def _broken_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".broken-" in p.name)


def test_a_corrupt_key_is_kept_aside_and_a_new_identity_made(tmp_path: Path) -> None:
    old = load_or_create_identity(tmp_path)
    old.key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    new = load_or_create_identity(tmp_path)
    assert new.fingerprint != old.fingerprint
    assert new.note is not None
    assert "key file cannot be read" in new.note
    assert "told that the host's certificate changed" in new.note
    kept = _broken_files(tmp_path)
    assert len(kept) == 2
    assert any(name.startswith("host-key.pem.broken-") for name in kept)
    assert any(b"not a key" in (tmp_path / name).read_bytes() for name in kept)
    # and the new pair is good: it loads again, unchanged
    assert load_or_create_identity(tmp_path).fingerprint == new.fingerprint


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "host-cert.pem").write_bytes(b"garbage"), "certificate file cannot"),
        (lambda d: (d / "host-cert.pem").unlink(), "certificate file is missing"),
        (lambda d: (d / "host-key.pem").unlink(), "key file is missing"),
        (lambda d: (d / "host-key.pem").write_bytes(b""), "key file cannot"),
    ],
)
def test_any_broken_pair_is_replaced_not_crashed_on(
    tmp_path: Path, damage: Any, reason: str
) -> None:
    old = load_or_create_identity(tmp_path)
    damage(tmp_path)
    new = load_or_create_identity(tmp_path)
    assert new.fingerprint != old.fingerprint
    assert new.note is not None
    assert reason in new.note
    assert _broken_files(tmp_path)


def test_a_key_that_does_not_match_the_certificate_is_replaced(tmp_path: Path) -> None:
    a = load_or_create_identity(tmp_path / "a")
    b = load_or_create_identity(tmp_path / "b")
    (tmp_path / "a" / "host-key.pem").write_bytes(b.key_path.read_bytes())
    new = load_or_create_identity(tmp_path / "a")
    assert new.note is not None
    assert "does not belong" in new.note
    assert new.fingerprint not in (a.fingerprint, b.fingerprint)
    server_context(new)  # ssl accepts the new pair


def test_processes_starting_together_agree_on_one_identity(tmp_path: Path) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def run() -> None:
        try:
            start.wait(DEADLINE)
            results.append(load_or_create_identity(tmp_path).fingerprint)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not errors
    assert len(results) == 8
    assert len(set(results)) == 1
    assert load_or_create_identity(tmp_path).fingerprint == results[0]
    assert not (tmp_path / security.LOCK_FILE).exists()


def test_a_lock_left_by_a_crashed_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / security.LOCK_FILE
    tmp_path.mkdir(exist_ok=True)
    lock.write_bytes(b"")
    old = lock.stat().st_mtime - 3600
    os.utime(lock, (old, old))
    ident = load_or_create_identity(tmp_path)
    assert ident.cert_path.exists()
    assert not lock.exists()


# --- fingerprint spellings ---------------------------------------------------------------------


def test_fingerprint_spellings_all_mean_the_same(identity: Identity) -> None:
    fp = identity.fingerprint
    digest = hashlib.sha256(identity.cert_der).digest()
    compact = compact_fingerprint(fp)
    assert len(compact) == 43
    assert fingerprint_digest(fp) == digest
    assert fingerprint_digest(compact) == digest
    assert fingerprint_digest(digest.hex()) == digest
    assert normalize_fingerprint(fp.lower()) == fp
    assert normalize_fingerprint(compact) == fp


@pytest.mark.parametrize("bad", ["", "AB:CD", "zz" * 32, "A" * 42, "!" * 43, "AB" * 33])
def test_bad_fingerprints_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a certificate fingerprint"):
        fingerprint_digest(bad)


# --- TLS ----------------------------------------------------------------------------------------


def _tls_roundtrip(server: ssl.SSLContext, client: ssl.SSLContext) -> dict[str, Any]:
    """A real handshake over a kernel socket pair; the server echoes one line upper-cased."""
    a, b = socket.socketpair()
    a.settimeout(DEADLINE)
    b.settimeout(DEADLINE)
    seen: dict[str, Any] = {}

    def serve() -> None:
        try:
            with server.wrap_socket(a, server_side=True) as s:
                seen["server_version"] = s.version()
                s.sendall(s.recv(100).upper())
        except BaseException as exc:
            seen["server_error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(b) as c:
            c.sendall(b"hello over tls\n")
            seen["echo"] = c.recv(100)
            seen["fingerprint"] = peer_fingerprint(c)
            seen["version"] = c.version()
    finally:
        thread.join(DEADLINE)
    assert not thread.is_alive()
    assert "server_error" not in seen, seen
    return seen


def test_tls_handshake_shows_the_client_the_identitys_fingerprint(identity: Identity) -> None:
    seen = _tls_roundtrip(server_context(identity), client_context())
    assert seen["fingerprint"] == identity.fingerprint
    assert seen["echo"] == b"HELLO OVER TLS\n"
    assert seen["version"] == "TLSv1.3"  # preferred when both sides have it
    assert seen["server_version"] == "TLSv1.3"


def test_tls_12_clients_are_still_served(identity: Identity) -> None:
    client = client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    seen = _tls_roundtrip(server_context(identity), client)
    assert seen["version"] == "TLSv1.2"
    assert seen["fingerprint"] == identity.fingerprint


def test_a_different_host_shows_a_different_fingerprint(tmp_path: Path) -> None:
    one = load_or_create_identity(tmp_path / "one")
    other = load_or_create_identity(tmp_path / "other")
    seen = _tls_roundtrip(server_context(other), client_context())
    assert seen["fingerprint"] == other.fingerprint != one.fingerprint


def test_context_settings(identity: Identity) -> None:
    server = server_context(identity)
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert server.options & ssl.OP_NO_RENEGOTIATION
    client = client_context()
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    assert client.check_hostname is False
    assert client.verify_mode == ssl.CERT_NONE


def test_looks_like_tls_knows_a_real_client_hello() -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert looks_like_tls(hello)
    assert looks_like_tls(hello[:1])
    assert not looks_like_tls(b"")
    assert not looks_like_tls(b"hello\n")
    assert not looks_like_tls(b'{"type":"hello"}\n')


# --- safety code --------------------------------------------------------------------------------


def test_safety_code_is_four_groups_of_four_digits_and_stable(identity: Identity) -> None:
    code = safety_code(identity.cert_der)
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", code)
    assert safety_code(identity.cert_der) == code


def test_safety_code_depends_on_certificate_and_key(tmp_path: Path) -> None:
    a = load_or_create_identity(tmp_path / "a").cert_der
    b = load_or_create_identity(tmp_path / "b").cert_der
    key1, key2 = b"\x01" * 32, b"\x02" * 32
    codes = {
        safety_code(a),
        safety_code(b),
        safety_code(a, key1),
        safety_code(a, key2),
        safety_code(b, key1),
    }
    assert len(codes) == 5


# --- known hosts --------------------------------------------------------------------------------

FP1 = ":".join(["AA"] * 32)
FP2 = ":".join(["BB"] * 32)


def test_known_hosts_new_then_match_then_changed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "known_hosts.json"
    hosts = KnownHosts(path)
    assert hosts.check("192.168.1.5:5151", FP1) == "new"
    hosts.remember("192.168.1.5:5151", FP1)
    again = KnownHosts(path)  # persisted: a new instance reads it
    assert again.check("192.168.1.5:5151", FP1) == "match"
    assert again.check("192.168.1.5:5151", compact_fingerprint(FP1)) == "match"
    assert again.check("192.168.1.5:5151", FP2) == "changed"
    assert again.check("192.168.1.5:5152", FP1) == "new"  # keyed by host AND port
    data = json.loads(path.read_text())
    assert data == {"version": 1, "hosts": {"192.168.1.5:5151": FP1}}
    assert not list(path.parent.glob("*.tmp"))


def test_known_hosts_remember_replaces_and_forget_removes(tmp_path: Path) -> None:
    hosts = KnownHosts(tmp_path / "k.json")
    hosts.remember("a:1", FP1)
    hosts.remember("b:2", FP1)
    hosts.remember("a:1", FP2)  # the user accepted a changed certificate
    assert hosts.check("a:1", FP2) == "match"
    hosts.forget("a:1")
    assert hosts.check("a:1", FP2) == "new"
    assert hosts.check("b:2", FP1) == "match"


def test_known_hosts_refuses_to_store_a_bad_fingerprint(tmp_path: Path) -> None:
    hosts = KnownHosts(tmp_path / "k.json")
    with pytest.raises(ValueError, match="fingerprint"):
        hosts.remember("a:1", "not a fingerprint")
    assert not (tmp_path / "k.json").exists()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 1, "hosts": {"a:1": 5}}', b"\xff\xfe", b"[" * 100_000],
)
def test_corrupt_known_hosts_is_treated_as_empty_and_kept(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "known_hosts.json"
    path.write_bytes(content)
    hosts = KnownHosts(path)
    assert hosts.check("a:1", FP1) == "new"
    assert hosts.problem is not None
    assert "could not be read" in hosts.problem
    assert path.read_bytes() == content  # reading never rewrites
    hosts.remember("a:1", FP1)
    kept = list(tmp_path.glob("known_hosts.json.corrupt-*"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == content
    assert hosts.check("a:1", FP1) == "match"
    assert hosts.problem is None


def test_address_key_brackets_ipv6_and_ignores_case() -> None:
    assert address_key("LocalHost", 5151) == "localhost:5151"
    assert address_key("::1", 5151) == "[::1]:5151"
    assert address_key("[fe80::1]", 7) == "[fe80::1]:7"
    assert address_key("example.org.", 1) == "example.org:1"


# --- password exchange --------------------------------------------------------------------------


def _run(
    joiner: JoinerAuth, host: HostAuth
) -> tuple[bytes, bytes, bytes, bytes]:  # joiner_pake, host_pake, host_confirm, joiner_confirm
    joiner_pake = joiner.start()
    host_pake, host_confirm = host.respond(joiner_pake)
    joiner_confirm = joiner.finish(host_pake, host_confirm)
    host.verify(joiner_confirm)
    return joiner_pake, host_pake, host_confirm, joiner_confirm


def test_right_password_authenticates_both_and_codes_match(identity: Identity) -> None:
    fp = identity.fingerprint
    joiner, host = JoinerAuth("correct horse", fp), HostAuth("correct horse", fp)
    _run(joiner, host)
    assert joiner.session_key is not None
    assert len(joiner.session_key) == 32
    assert joiner.session_key == host.session_key
    joiner_code = safety_code(identity.cert_der, joiner.session_key)  # the cert it received
    host_code = safety_code(identity.cert_der, host.session_key)  # its own cert
    assert joiner_code == host_code
    assert joiner_code != safety_code(identity.cert_der)


def test_every_run_gets_a_fresh_key(identity: Identity) -> None:
    fp = identity.fingerprint
    keys = set()
    for _ in range(3):
        joiner, host = JoinerAuth("pw", fp), HostAuth("pw", fp)
        _run(joiner, host)
        keys.add(joiner.session_key)
    assert len(keys) == 3


def test_the_exchange_survives_json_and_base64_on_the_wire(identity: Identity) -> None:
    fp = identity.fingerprint
    joiner, host = JoinerAuth("pässwörd", fp), HostAuth("pässwörd", fp)
    hello = json.loads(json.dumps({"type": "hello", "pake": to_b64(joiner.start())}))
    host_pake, host_confirm = host.respond(from_b64(hello["pake"], security.PAKE_SIZE, "pake"))
    auth = json.loads(
        json.dumps({"type": "auth", "pake": to_b64(host_pake), "confirm": to_b64(host_confirm)})
    )
    confirm = joiner.finish(
        from_b64(auth["pake"], security.PAKE_SIZE), from_b64(auth["confirm"], 32)
    )
    reply = json.loads(json.dumps({"type": "auth", "confirm": to_b64(confirm)}))
    host.verify(from_b64(reply["confirm"], security.CONFIRM_SIZE))
    assert host.session_key == joiner.session_key is not None


def test_wrong_password_fails_at_the_joiner(identity: Identity) -> None:
    fp = identity.fingerprint
    joiner, host = JoinerAuth("guess", fp), HostAuth("secret", fp)
    host_pake, host_confirm = host.respond(joiner.start())
    with pytest.raises(WrongPassword, match="Wrong password"):
        joiner.finish(host_pake, host_confirm)
    assert joiner.session_key is None


def _attacker_proof(password: str, fp: str, host: HostAuth) -> tuple[bytes, bytes]:
    """A joiner that skips checking the host and sends a proof computed honestly for its guess."""
    spake = SPAKE2_A(password.encode(), idA=security.ID_JOINER, idB=security.ID_HOST)
    joiner_pake = spake.start()
    host_pake, host_confirm = host.respond(joiner_pake)
    key = spake.finish(host_pake)
    digest = fingerprint_digest(fp)
    return security._proof(key, b"joiner", joiner_pake, host_pake, digest), host_confirm


def test_wrong_password_fails_at_the_host(identity: Identity) -> None:
    fp = identity.fingerprint
    host = HostAuth("secret", fp)
    proof, _ = _attacker_proof("guess", fp, host)
    with pytest.raises(WrongPassword):
        host.verify(proof)
    assert host.session_key is None


def test_the_attacker_proof_is_accepted_with_the_right_password(identity: Identity) -> None:
    """Guards the test above: it fails for the password, not for a mistake in the attacker."""
    fp = identity.fingerprint
    host = HostAuth("secret", fp)
    proof, _ = _attacker_proof("secret", fp, host)
    host.verify(proof)
    assert host.session_key is not None


def test_host_refuses_junk_and_its_own_proof_reflected(identity: Identity) -> None:
    fp = identity.fingerprint
    for bad in (b"", b"\x00" * 32, b"x" * 1000, "text"):
        joiner, host = JoinerAuth("pw", fp), HostAuth("pw", fp)
        host.respond(joiner.start())
        with pytest.raises(WrongPassword):
            host.verify(bad)  # type: ignore[arg-type]
    joiner, host = JoinerAuth("pw", fp), HostAuth("pw", fp)
    _, host_confirm = host.respond(joiner.start())
    with pytest.raises(WrongPassword):
        host.verify(host_confirm)


def test_man_in_the_middle_with_its_own_certificate_fails_even_with_the_password(
    tmp_path: Path,
) -> None:
    """The relay passes every PAKE message unchanged, but the joiner saw the relay's cert."""
    real = load_or_create_identity(tmp_path / "host")
    mitm = load_or_create_identity(tmp_path / "mitm")
    joiner = JoinerAuth("secret", mitm.fingerprint)  # what its TLS session showed
    host = HostAuth("secret", real.fingerprint)
    host_pake, host_confirm = host.respond(joiner.start())
    with pytest.raises(WrongPassword):
        joiner.finish(host_pake, host_confirm)
    assert joiner.session_key is None
    # and the host rejects a joiner proof made over the relay's certificate
    host2 = HostAuth("secret", real.fingerprint)
    proof, _ = _attacker_proof("secret", mitm.fingerprint, host2)
    with pytest.raises(WrongPassword):
        host2.verify(proof)


def test_the_same_password_in_other_unicode_forms_matches(identity: Identity) -> None:
    fp = identity.fingerprint
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    joiner, host = JoinerAuth(decomposed, fp), HostAuth(composed, fp)
    _run(joiner, host)
    assert joiner.session_key == host.session_key


def _not_on_curve() -> bytes:
    for y in range(2, 200):
        candidate = b"A" + y.to_bytes(32, "little")
        try:
            HostAuth("pw", FP1).respond(candidate)
        except BadAuthMessage:
            return candidate
    raise AssertionError("every candidate decoded")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"A",
        b"A" + b"\x00" * 31,
        b"A" + b"\x00" * 40,
        b"C" + b"\x01" * 32,  # no such side
        b"A" + b"\x00" * 32,  # the identity point is refused
        "A" * 33,  # text, not bytes
    ],
)
def test_malformed_pake_is_a_bad_auth_message_at_the_host(message: Any) -> None:
    with pytest.raises(BadAuthMessage):
        HostAuth("pw", FP1).respond(message)


def test_malformed_points_and_sides_are_refused() -> None:
    with pytest.raises(BadAuthMessage):
        HostAuth("pw", FP1).respond(_not_on_curve())
    joiner = JoinerAuth("pw", FP1)
    own = joiner.start()
    with pytest.raises(BadAuthMessage):  # our own message reflected: wrong side
        joiner.finish(own, b"\x00" * 32)
    other = JoinerAuth("pw", FP1).start()  # another joiner's message: also side A
    second = JoinerAuth("pw", FP1)
    second.start()
    with pytest.raises(BadAuthMessage):
        second.finish(other, b"\x00" * 32)


def test_malformed_host_message_is_a_bad_auth_message_at_the_joiner() -> None:
    joiner = JoinerAuth("pw", FP1)
    joiner.start()
    with pytest.raises(BadAuthMessage):
        joiner.finish(b"B" + b"\xff" * 10, b"\x00" * 32)


def test_each_half_runs_once(identity: Identity) -> None:
    fp = identity.fingerprint
    joiner, host = JoinerAuth("pw", fp), HostAuth("pw", fp)
    with pytest.raises(RuntimeError):
        joiner.finish(b"", b"")  # before start
    with pytest.raises(RuntimeError):
        host.verify(b"")  # before respond
    message = joiner.start()
    with pytest.raises(RuntimeError):
        joiner.start()
    host_pake, host_confirm = host.respond(message)
    with pytest.raises(RuntimeError):
        host.respond(message)
    host.verify(joiner.finish(host_pake, host_confirm))
    with pytest.raises(RuntimeError):
        host.verify(b"")


def test_a_failed_respond_cannot_be_retried() -> None:
    host = HostAuth("pw", FP1)
    with pytest.raises(BadAuthMessage):
        host.respond(b"junk")
    with pytest.raises(RuntimeError):
        host.respond(JoinerAuth("pw", FP1).start())


def test_password_and_fingerprint_are_checked_up_front() -> None:
    with pytest.raises(ValueError, match="empty"):
        JoinerAuth("", FP1)
    with pytest.raises(ValueError, match="empty"):
        HostAuth("", FP1)
    with pytest.raises(ValueError, match="surrogate"):
        HostAuth("\ud800", FP1)
    with pytest.raises(ValueError, match="fingerprint"):
        JoinerAuth("pw", "nope")


def test_base64_fields() -> None:
    data = bytes(range(33))
    assert from_b64(to_b64(data), 33) == data
    assert to_b64(data).isascii()
    for bad in (None, 5, ["x"], "not base64!", "é" * 44, to_b64(data[:-1]), "A" * 1000):
        with pytest.raises(BadAuthMessage, match="pake"):
            from_b64(bad, 33, "pake")
