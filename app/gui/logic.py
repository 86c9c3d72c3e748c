"""The window's decisions, without a window: field checks, what each event shows, colours, unread.

Everything here is plain Python so it is tested without Tk (tests/test_gui_logic.py). The
widgets in `app/gui/window.py` only draw what `SessionView` and friends decide.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from app import events as ev
from app.address import parse_address, parse_port
from app.invite import Invite, is_invite, parse_invite
from app.protocol import check_name, name_key, not_encrypted_warning

Mode = Literal["host", "join"]
State = Literal["idle", "starting", "in_room"]
LineKind = Literal["chat", "mine", "pending", "confirm", "notice", "error", "alarm", "ended"]

# Readable on white (contrast ≥ 4.5:1), and far enough apart to tell people apart: a few clearly
# different colours beat many similar ones. Red is left out: it means "error" in the transcript.
PALETTE = (
    "#1d4ed8",  # blue
    "#15803d",  # green
    "#9333ea",  # purple
    "#c2410c",  # orange
    "#0e7490",  # teal
    "#be185d",  # pink
    "#4d7c0f",  # olive
    "#a16207",  # amber
    "#7c2d12",  # brown
)

IDLE_STATUS = "Not in a chat. Host a room, or join one by its address or invite."
NOT_ENCRYPTED = "Not encrypted: anyone on the network can read this chat."
NOT_ENCRYPTED_BADGE = "Not encrypted"  # the person's own connection is plain
PLAIN_WITH_INVITE = (
    "An invite is for an encrypted connection (it pins the host's identity): "
    "untick “No encryption”."
)
PLAIN_WITH_PASSWORD = (
    "A password needs an encrypted connection: untick “No encryption”, or leave the password empty."
)
_NO_PORT = -1  # "no port was typed with the address"


# --- fields ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A checked request to host or join, ready to become HostOptions / JoinOptions.

    The security fields are what the person chose in the bar (or what their invite says);
    the window copies them onto the options, so no options factory can drop them by mistake.
    """

    mode: Mode
    host: str  # "" when hosting
    port: int
    name: str
    password: str | None = None  # None: no password (an empty field)
    fingerprint: str | None = None  # joining through an invite: the only identity to accept
    plain: bool = False  # joining without TLS (nc -l, ncat --chat, an allow-plain host)
    allow_plain: bool = False  # hosting: admit unencrypted peers too
    trust_new: bool = False  # joining: accept a host identity that changed (an explicit act)


@dataclass(frozen=True)
class Checked:
    """The outcome of checking the connection bar: a request, or a hint per bad field."""

    request: Request | None
    errors: dict[str, str] = field(default_factory=dict)


def check_port(text: str, *, hosting: bool) -> int:
    """A port from the port field; 0 ("let the system choose") only makes sense when hosting."""
    port = parse_port(text)
    if port == 0 and not hosting:
        raise ValueError("Port must be a number from 1 to 65535 when joining.")
    return port


def check_fields(
    mode: Mode,
    address: str,
    port_text: str,
    name: str,
    *,
    password: str = "",
    plain: bool = False,
    allow_plain: bool = False,
) -> Checked:
    """Check every field at once, so the user sees all the hints together.

    When joining, the address may be an invite: then host, port, identity and (if it carries
    one) password come from the invite, and the port field is not consulted. A damaged invite
    is refused at the address field in `parse_invite`'s words, never tried as a host name.
    """
    errors: dict[str, str] = {}
    port = 0
    try:
        port = check_port(port_text, hosting=mode == "host")
    except ValueError as exc:
        errors["port"] = str(exc)
    host = ""
    fingerprint: str | None = None
    if mode == "join" and is_invite(address):
        errors.pop("port", None)  # the invite names the port
        try:
            invite = parse_invite(address)
        except ValueError as exc:
            errors["address"] = str(exc)
        else:
            host, port, fingerprint = invite.host, invite.port, invite.fingerprint
            password = invite.password or password  # the field may hold an older one
            if plain:
                errors["plain"] = PLAIN_WITH_INVITE
    elif mode == "join":
        try:
            host, typed = parse_address(address, _NO_PORT)
        except ValueError as exc:
            errors["address"] = str(exc)
        else:
            if typed != _NO_PORT:  # a port typed with the address ("host:6000") wins
                errors.pop("port", None)
                port = typed
                if typed == 0:
                    errors["address"] = "Port must be a number from 1 to 65535 when joining."
    if mode == "join" and plain and password and "plain" not in errors:
        errors["password"] = PLAIN_WITH_PASSWORD
    try:
        name = check_name(name)
    except ValueError as exc:
        errors["name"] = str(exc)
    if errors:
        return Checked(None, errors)
    joining = mode == "join"
    return Checked(
        Request(
            mode,
            host,
            port,
            name,
            password=password or None,
            fingerprint=fingerprint,
            plain=plain and joining,
            allow_plain=allow_plain and not joining,
        )
    )


def invite_in(text: str) -> Invite | None:
    """The invite typed or pasted into the address field, if it is one and it is whole."""
    if not is_invite(text):
        return None
    try:
        return parse_invite(text)
    except ValueError:
        return None


def invite_note(text: str) -> str:
    """What to say under the bar about the address field: something only for a good invite
    (a damaged one is refused, with its reason, when the person presses Connect)."""
    invite = invite_in(text)
    if invite is None:
        return ""
    password = ", with its password" if invite.password else ""
    return f"Invite: {invite.address}{password} — identity verified on connect."


def address_to_remember(text: str) -> tuple[str, int | None]:
    """The host (and port) worth remembering from the address field.

    Never the invite itself: it may carry the room's password, and passwords are not saved.
    Its fingerprint need not be kept either: joining through it remembers the host's identity.
    """
    if is_invite(text):
        invite = invite_in(text)
        return ("", None) if invite is None else (invite.host, invite.port)
    return text.strip(), None


def invite_shown(invite: str) -> str:
    """The invite as the host's window shows it: the fingerprint shortened and the password
    masked (Copy invite copies the whole thing), so a glance over a shoulder gets nothing."""
    where, sep, fragment = invite.partition("#")
    if not sep:
        return invite
    parts = []
    for part in fragment.split("&"):
        key, eq, value = part.partition("=")
        if key == "fp" and len(value) > 10:
            value = value[:8] + "…"
        elif key == "pw":
            value = "•" * 6
        parts.append(f"{key}{eq}{value}")
    return f"{where}#{'&'.join(parts)}"


def split_join_target(text: str) -> tuple[str, int | None]:
    """`--join HOST[:PORT]` split for the address and port fields (None: no port was given).

    An invite stays whole: the address field takes invites as they are."""
    if is_invite(text):
        return text.strip(), None
    try:
        host, port = parse_address(text, _NO_PORT)
    except ValueError:
        return text, None
    return host, None if port == _NO_PORT else port


# --- appearance --------------------------------------------------------------------------------


def colour_for(name: str) -> str:
    """The same name gets the same colour in every window, on every run."""
    return PALETTE[zlib.crc32(name_key(name).encode("utf-8")) % len(PALETTE)]


def clock_text(when: float | None, now: Callable[[], float] = time.time) -> str:
    """HH:MM in local time; messages without a time are stamped with the time they are shown."""
    return time.strftime("%H:%M", time.localtime(now() if when is None else when))


def title_for(unread: int, base: str = "Parley") -> str:
    return f"({unread}) {base}" if unread else base


def end_status(reason: str) -> str:
    if reason.lower().startswith("connection lost"):
        return "Connection lost. Chat ended."
    if reason:
        return f"Chat ended: {reason[0].lower()}{reason[1:]}"
    return "Chat ended."


# --- what events show --------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One transcript entry. `confirm` restyles the pending entry with the same `id`."""

    kind: LineKind
    text: str = ""
    sender: str | None = None
    time: float | None = None
    earlier: bool = False
    id: str | None = None

    @property
    def unread(self) -> bool:
        """Counts towards the unread badge: someone else's new chat line."""
        return self.kind == "chat" and not self.earlier


@dataclass(frozen=True)
class Security:
    """The status bar's word on the connection: "Encrypted · safety code …" or a warning."""

    text: str = ""
    warn: bool = False


NO_SECURITY = Security()


def joined_text(event: ev.MemberJoined) -> str:
    """ "Ann joined from 192.168.1.7:50123 (safety code …)." — address and code are the host's
    to see; the code is per member in a password room, for comparing with that member's."""
    where = f" from {event.address}" if event.address else ""
    code = f" (session code {event.safety_code})" if event.safety_code else ""
    plain = " — not encrypted" if event.encrypted is False else ""
    return f"{event.name} joined{where}{plain}{code}."


def member_label(name: str, me: str, plain: tuple[str, ...]) -> str:
    """A member list entry: "Ann (you)", "guest1 (not encrypted)"."""
    marks = [word for word, on in (("you", name == me), ("not encrypted", name in plain)) if on]
    return f"{name} ({', '.join(marks)})" if marks else name


class SessionView:
    """Follows the session through its events: state, who I am, members, status line.

    `apply(event)` updates that state and returns the transcript lines the event shows.
    Besides the status line it keeps what the window shows about security: `security` (the
    badge in the status bar), the host's `invite`, and `changed`, set when a host's identity
    changed and the join was refused (the window then offers "Trust new identity").
    """

    def __init__(self) -> None:
        self.state: State = "idle"
        self.mode: Mode = "host"
        self.me = ""
        self.members: tuple[str, ...] = ()
        self.status = IDLE_STATUS
        self.where = ""  # "host:port" when joining
        self.addresses: tuple[str, ...] = ()
        self.port = 0
        self.foreign = False
        self.reconnecting = False
        self.request: Request | None = None  # the last Start, for "Trust new identity"
        self.security: Security = NO_SECURITY
        self._secure = NO_SECURITY  # the badge while every member is encrypted
        self.plain: tuple[str, ...] = ()  # members whose connection is not encrypted
        self.invite = ""  # hosting: the invite to hand out
        self.password_room = False
        self.changed: ev.IdentityChanged | None = None
        self.warning = ""  # the refusal that followed `changed`, in the engine's words
        self._pending: set[str] = set()

    def starting(self, request: Request) -> None:
        """The user pressed Start: nothing has been heard from the worker yet."""
        self.state = "starting"
        self.mode = request.mode
        self.me = request.name
        self.members = ()
        self.addresses = ()
        self.foreign = False
        self.reconnecting = False
        self.request = request
        self.security = self._secure = NO_SECURITY
        self.plain = ()
        self.invite = ""
        self.password_room = False
        self.changed = None
        self.warning = ""
        self._pending.clear()
        if request.mode == "host":
            self.status = f"Starting to host on port {request.port}…"
        else:
            self.where = _where(request.host, request.port)
            self.status = f"Connecting to {self.where}…"

    def apply(self, event: object) -> list[Line]:
        """Update the state for `event`; events this view does not know show nothing."""
        if isinstance(event, ev.Hosting):
            return self._hosting(event)
        if isinstance(event, ev.Connecting):
            self.mode = "join"
            self.where = _where(event.host, event.port)
            self.status = f"Connecting to {self.where}…"
            return [Line("notice", f"Connecting to {self.where}…")]
        if isinstance(event, ev.Connected):
            return self._connected(event)
        if isinstance(event, ev.Reconnecting):
            # Still in the room as far as the user is concerned: the transcript stays, and
            # what is typed meanwhile waits (pending) until the connection is back.
            first = not self.reconnecting
            self.reconnecting = True
            self.status = (
                f"Connection lost. Reconnecting in {event.delay:g} s (attempt {event.attempt})…"
            )
            if not first:
                return []
            return [
                Line("error", event.reason),
                Line("notice", "Reconnecting… what you send now goes out once back."),
            ]
        if isinstance(event, ev.MessagePending):
            self._pending.add(event.id)
            return [Line("pending", event.text, self.me, None, id=event.id)]
        if isinstance(event, ev.MessageReceived):
            return [self._message(event)]
        if isinstance(event, ev.MemberJoined):
            self.members = event.members
            plain = event.encrypted is False
            self._set_plain(
                tuple(m for m in self.plain if m != event.name) + ((event.name,) if plain else ())
            )
            lines = [Line("notice", joined_text(event))]
            if plain and self._secure.text and not self._secure.warn:
                lines.append(Line("error", not_encrypted_warning((event.name,))))
            return lines
        if isinstance(event, ev.MemberLeft):
            self.members = event.members
            self._set_plain(tuple(m for m in self.plain if m in event.members))
            why = "" if event.reason == "left" else f" ({event.reason})"
            return [Line("notice", f"{event.name} left{why}.")]
        if isinstance(event, ev.MemberRenamed):
            self.members = event.members
            self._set_plain(tuple(event.new if m == event.old else m for m in self.plain))
            if event.you:
                self.me = event.new
                if self.mode == "join" and self.state == "in_room":
                    self.status = f"Connected as {event.new} to {self.where}"
                return [Line("notice", f"You are now {event.new}.")]
            return [Line("notice", f"{event.old} is now {event.new}.")]
        if isinstance(event, ev.NoticeShown):
            return [Line("notice", event.text)]
        if isinstance(event, ev.ErrorShown):
            return [Line("error", event.text)]
        if isinstance(event, ev.IdentityChanged):
            self.changed = event  # the Failed that follows says it in words
            return []
        if isinstance(event, ev.ChatEnded):
            self._end(end_status(event.reason))
            lines = [Line("notice", event.reason)] if event.reason else []
            return [*lines, Line("ended", "Chat ended.")]
        if isinstance(event, ev.Failed):
            if self.changed is not None and not self.warning:
                self._end(f"Not connected: the identity of {self.changed.address} has changed.")
                self.warning = event.text
                return [Line("alarm", event.text)]
            self._end(event.text)
            return [Line("error", event.text)]
        return []

    @property
    def can_trust(self) -> bool:
        """Whether "Trust new identity" makes sense now: refused for a changed identity,
        with the request that was refused at hand to try again."""
        return (
            self.state == "idle"
            and self.changed is not None
            and self.request is not None
            and self.request.mode == "join"
        )

    def forget_warning(self) -> None:
        """The person dismissed the warning, or changed where to connect."""
        self.changed = None
        self.warning = ""

    def _hosting(self, event: ev.Hosting) -> list[Line]:
        self.state, self.mode = "in_room", "host"
        self.me, self.port, self.addresses = event.name, event.port, event.addresses
        self.members = (event.name,)
        self.invite = event.invite
        self.password_room = event.password
        code = f" · safety code {event.safety_code}" if event.safety_code else ""
        self.plain = ()
        if event.allow_plain and not event.password:  # some members may be unencrypted
            self._set_security(Security(f"Unencrypted peers admitted{code}", warn=True))
        else:
            self._set_security(Security(f"Encrypted{code}"))
        tell = ", ".join(event.addresses)
        room = "a password room " if event.password else ""
        # Short: the security badge shares the status bar; the bar shows the addresses.
        self.status = f"Hosting {room}on port {event.port} as {event.name}"
        lines = [
            Line(
                "notice",
                f"You are hosting {room}on port {event.port} as {event.name}.",
            ),
            Line("notice", f"Tell others to join: {tell}"),
        ]
        if event.password:
            lines.append(
                Line(
                    "notice",
                    "Password room: joiners need the password or the invite (share it privately).",
                )
            )
        if event.safety_code:
            lines.append(
                Line(
                    "notice",
                    f"Safety code {event.safety_code} — read it to joiners to compare.",
                )
            )
        if event.allow_plain and event.password:
            lines.append(
                Line("notice", "Unencrypted peers cannot prove the password: they are refused.")
            )
        elif event.allow_plain:
            lines.append(
                Line(
                    "error",
                    "Unencrypted peers (nc, telnet) are admitted too: what they send and "
                    "receive can be read by anyone on the network.",
                )
            )
        return lines

    def _connected(self, event: ev.Connected) -> list[Line]:
        again, self.reconnecting = self.reconnecting, False
        self.state, self.mode = "in_room", "join"
        self.me, self.members, self.foreign = event.name, event.members, event.foreign
        self.where = _where(event.host, event.port)
        self.plain = event.plain
        if event.safety_code is None:
            self._set_security(Security(NOT_ENCRYPTED_BADGE, warn=True))
        else:
            self._set_security(Security(f"Encrypted · safety code {event.safety_code}"))
        if event.foreign:
            self.status = f"Connected to {self.where} (not a Parley server)"
            lines = [Line("notice", f"Connected to {self.where}.")]
        elif again and event.resumed:
            self.status = f"Connected as {event.name} to {self.where}"
            lines = [Line("notice", "Back in the room.")]
        else:
            self.status = f"Connected as {event.name} to {self.where}"
            others = [m for m in event.members if m != event.name]
            present = ", ".join(others) if others else "nobody else yet"
            how = "Connected again" if again else "Connected"
            lines = [Line("notice", f"{how} as {event.name}. In the room: {present}.")]
        if event.note:
            lines.append(Line("notice", event.note))
        if again and event.resumed:
            return lines  # said when first connected
        if event.safety_code is None:
            lines.append(Line("error", NOT_ENCRYPTED))
        else:
            lines.append(
                Line(
                    "notice",
                    f"Encrypted. Safety code {event.safety_code} — compare it with the host's.",
                )
            )
        if event.session_code:
            lines.append(
                Line(
                    "notice",
                    f"Password checked. Session code {event.session_code} — the host sees the "
                    "same next to your name.",
                )
            )
        unencrypted = tuple(m for m in event.plain if m != event.name)
        if unencrypted and event.safety_code is not None:
            lines.append(Line("error", not_encrypted_warning(unencrypted)))
        return lines

    def _message(self, event: ev.MessageReceived) -> Line:
        if event.mine and event.id is not None and event.id in self._pending:
            self._pending.discard(event.id)
            return Line("confirm", event.text, event.sender, event.time, id=event.id)
        kind: LineKind = "mine" if event.mine else "chat"
        return Line(kind, event.text, event.sender, event.time, event.earlier, event.id)

    def _set_security(self, secure: Security) -> None:
        self._secure = secure
        self._set_plain(self.plain)

    def _set_plain(self, plain: tuple[str, ...]) -> None:
        """Who is not encrypted decides the badge: the room is only as private as its least
        encrypted member (the person's own unencrypted link is said by `_secure` already)."""
        self.plain = plain
        others = tuple(m for m in plain if m != self.me)
        if others and self._secure.text and self._secure.text != NOT_ENCRYPTED_BADGE:
            code = self._secure.text.partition(" · ")[2]
            self.security = Security(
                f"Not all encrypted: {', '.join(others)}" + (f" · {code}" if code else ""),
                warn=True,
            )
        else:
            self.security = self._secure

    def _end(self, status: str) -> None:
        self.state = "idle"
        self.reconnecting = False
        self.members = ()
        self.plain = ()
        self._secure = NO_SECURITY
        self.addresses = ()
        self.security = NO_SECURITY
        self.invite = ""
        self.password_room = False
        self._pending.clear()
        self.status = status


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- unread and input history ------------------------------------------------------------------


class Unread:
    """Counts new lines while the window is not focused; says when to ring the bell.

    The bell rings for the first message after a quiet spell, so a burst rings once.
    """

    def __init__(self, quiet: float = 2.0) -> None:
        self.quiet = quiet
        self.count = 0
        self.focused = True
        self._last: float | None = None

    def set_focused(self, focused: bool) -> None:
        self.focused = focused
        if focused:
            self.count = 0

    def arrived(self, now: float) -> bool:
        """A new message from someone else; returns True if it should ring the bell."""
        if self.focused:
            return False
        self.count += 1
        ring = self._last is None or now - self._last >= self.quiet
        self._last = now
        return ring


class InputHistory:
    """Up and Down through what you sent, like a shell; a half-typed draft is kept aside."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._items: list[str] = []
        self._pos: int | None = None  # index into _items while browsing
        self._draft = ""

    def add(self, text: str) -> None:
        if not self._items or self._items[-1] != text:
            self._items.append(text)
            del self._items[: -self.limit]
        self._pos = None

    def older(self, current: str) -> str | None:
        """The message before the one shown (None: nothing older)."""
        if not self._items:
            return None
        if self._pos is None:
            self._draft = current
            self._pos = len(self._items) - 1
        elif self._pos == 0:
            return None
        else:
            self._pos -= 1
        return self._items[self._pos]

    def newer(self) -> str | None:
        """The message after the one shown, or the draft again (None: not browsing)."""
        if self._pos is None:
            return None
        if self._pos < len(self._items) - 1:
            self._pos += 1
            return self._items[self._pos]
        self._pos = None
        return self._draft

    @property
    def browsing(self) -> bool:
        return self._pos is not None

    def reset(self) -> None:
        self._pos = None


def message_to_send(raw: str) -> str | None:
    """What the entry box sends: without leading/trailing blank lines; None if only blanks."""
    text = raw.strip("\r\n")
    return text if text.strip() else None
