"""The window's decisions, without a window: field checks, what each event shows, colours, unread.

Everything here is plain Python so it is tested without Tk (tests/test_gui_logic.py). The
widgets in `app/gui/window.py` only draw what `SessionView` and friends decide.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from app.address import parse_address, parse_port
from app.invite import Invite, is_invite, parse_invite

if TYPE_CHECKING:
    from app import events as ev

# The window draws its first screen from this module before anything has happened, so it must
# not import the protocol, its names (`regex`) or the events (dataclasses by the score): they
# cost tens of milliseconds before the window shows (tests/gui/test_startup.py checks that).
# The functions that need them import them where they run: on Start, on Send, on an event.

Mode = Literal["host", "join"]
State = Literal["idle", "starting", "in_room"]
LineKind = Literal[
    "chat", "mine", "pending", "confirm", "notice", "error", "alarm", "ended", "divider"
]
EARLIER_DIVIDER = "Earlier in the room"

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
    from app.names import check_name

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


def masked_invite(text: str) -> str:
    """An invite as the address field shows it: the password hidden (the field keeps standing
    for the whole invite, `ChatWindow.typed_address`). Anything else is returned as it is."""
    if not is_invite(text):
        return text
    where, sep, fragment = text.strip().partition("#")
    if not sep:
        return text
    parts = []
    for part in fragment.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}{eq}{'•' * 6}" if key == "pw" and value else part)
    return f"{where}#{'&'.join(parts)}"


# What the engine says for the terminal, in the window's words (its buttons and checkboxes).
_WINDOW_WORDS = (
    (
        re.compile(r"join again with --trust-new \(window: Trust new identity\)"),
        "press “Trust new identity”",
    ),
    (
        re.compile(r"[Jj]oin(?: again)? with --plain(?: \(window: [^)]*\))?"),
        "tick “No encryption” and connect again",
    ),
    (re.compile(r"join without --plain"), "untick “No encryption”"),
    (
        re.compile(r"(?:give it |join )?with --password(?: PW)?(?: \(window: [^)]*\))?"),
        "in the Password field",
    ),
    (re.compile(r"--allow-plain"), "“Also admit unencrypted peers”"),
    (re.compile(r"--trust-new"), "“Trust new identity”"),
    (re.compile(r"--plain"), "“No encryption”"),
    (re.compile(r" \(window: [^)]*\)"), ""),
)


def in_window_words(text: str) -> str:
    """`text` with command-line advice ("join again with --trust-new") put in the words of
    the window's own controls ("press “Trust new identity”")."""
    for pattern, words in _WINDOW_WORDS:
        text = pattern.sub(words, text)
    return text


def text_limit() -> int:
    """The largest message the window lets you send: the protocol's size contract."""
    from app.protocol import MAX_TEXT

    return MAX_TEXT


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
    return PALETTE[zlib.crc32(_name_key(name).encode("utf-8")) % len(PALETTE)]


def _name_key(name: str) -> str:
    """`app.names.name_key`, imported on first use (it loads `regex`)."""
    from app.names import name_key

    return name_key(name)


class NameColours:
    """Which of `slots` name colours each person present gets.

    A name keeps its colour while its owner stays; a newcomer gets the colour its name hashes to
    if nobody present has it, else the first free one, so no two people present share a colour
    while the palette has room. Someone not present (an earlier line) gets their hashed colour.
    """

    def __init__(self, slots: int, families: tuple[int, ...] = ()) -> None:
        """`families[i]` groups colours that look alike (green and olive): a newcomer gets a
        colour of a family nobody present has, while there is one."""
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.families = families if len(families) == slots else tuple(range(slots))
        self._given: dict[str, int] = {}
        self._slots: dict[str, int] = {}  # name -> slot, until the next update or rename

    def preferred(self, name: str) -> int:
        return zlib.crc32(_name_key(name).encode("utf-8")) % self.slots

    def update(self, members: Iterable[str]) -> None:
        self._slots.clear()
        present = {_name_key(m): m for m in members}
        self._given = {k: v for k, v in self._given.items() if k in present}
        for key, name in present.items():
            if key in self._given:
                continue
            taken = set(self._given.values())
            seen = {self.families[i] for i in taken}
            want = self.preferred(name)
            free = [i for i in range(self.slots) if i not in taken]
            apart = [i for i in free if self.families[i] not in seen]
            if want in taken or (apart and self.families[want] in seen):
                want = (apart or free or [want])[0]
            self._given[key] = want

    def rename(self, old: str, new: str) -> None:
        """/nick keeps the person's colour."""
        self._slots.clear()
        slot = self._given.pop(_name_key(old), None)
        if slot is not None:
            self._given[_name_key(new)] = slot

    def slot(self, name: str) -> int:
        """Cached per name: every message asks, and `name_key` (NFKC, casefold, the TR39
        skeleton) is the dearest part of drawing a line in a flood."""
        slot = self._slots.get(name)
        if slot is None:
            key = _name_key(name)
            slot = self._given.get(key)
            if slot is None:
                slot = zlib.crc32(key.encode("utf-8")) % self.slots
            if len(self._slots) >= 4096:  # earlier lines of many absent names: stay bounded
                self._slots.clear()
            self._slots[name] = slot
        return slot


_RTL = frozenset(("R", "AL", "AN"))
_LINK = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"»”’"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def has_rtl(text: str) -> bool:
    if text.isascii():  # most lines: one C pass, not a bidi lookup per character
        return False
    return any(unicodedata.bidirectional(ch) in _RTL for ch in text)


def for_display(text: str) -> str:
    """`text` as Tk must draw it to be read: Tk 8.6 draws characters in logical order, so
    right-to-left scripts are reordered (Unicode bidi) and Arabic is shaped into its joined
    forms. For display only: what is sent and stored stays as typed. Left-to-right text is
    returned as it is."""
    if not has_rtl(text):
        return text
    import arabic_reshaper
    from bidi import get_display

    return "\n".join(get_display(arabic_reshaper.reshape(line)) for line in text.split("\n"))


def link_spans(text: str) -> list[tuple[str, str]]:
    """`text` cut into (piece, url) pairs: url is "" for plain text, else the http(s) link the
    piece is. Trailing punctuation and an unmatched closing bracket are not part of a link
    ("see https://x.org/a)." links https://x.org/a)."""
    if "://" not in text:  # most lines: no link, and no regular expression run
        return [(text, "")]
    spans: list[tuple[str, str]] = []
    last = 0
    for match in _LINK.finditer(text):
        url = match.group(0)
        while url:
            tail = url[-1]
            if tail in _TRAILING or (tail in _PAIRS and url.count(_PAIRS[tail]) < url.count(tail)):
                url = url[:-1]
            else:
                break
        if len(url) <= len("https://"):
            continue
        start = match.start()
        if start > last:
            spans.append((text[last:start], ""))
        spans.append((url, url))
        last = start + len(url)
    if last < len(text) or not spans:
        spans.append((text[last:], ""))
    return spans


def clock_text(when: float | None, now: Callable[[], float] = time.time) -> str:
    """HH:MM in local time; messages without a time are stamped with the time they are shown.

    The last minute's text is kept (a burst is mostly one minute): every UTC offset in use is
    a whole number of minutes, so one UTC minute is one local minute."""
    global _last_clock
    stamp = now() if when is None else when
    minute = math.floor(stamp / 60)
    last = _last_clock  # one read: another thread may replace it meanwhile
    if last[0] != minute:
        last = _last_clock = (minute, time.strftime("%H:%M", time.localtime(stamp)))
    return last[1]


_last_clock: tuple[int | None, str] = (None, "")


def title_for(unread: int, base: str = "Parley", room: str = "") -> str:
    """ "(3) Maya's room — Parley": the room first, so two windows can be told apart."""
    title = f"{room} — {base}" if room else base
    return f"({unread}) {title}" if unread else title


def too_long(text: str, limit: int) -> str | None:
    """Why `text` cannot be sent (over `limit` bytes as the protocol counts them: UTF-8 inside
    a JSON string, escapes included), or None if it fits."""
    from app.protocol import text_size

    size = text_size(text)
    if size <= limit:
        return None
    return (
        f"Too long to send: {size:,} bytes, and a message can be at most {limit:,}. "
        "Shorten it or send it in parts; your text is still here."
    )


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
    seq: int | None = None
    private: str | None = None  # belongs to the private conversation with this member
    mention: bool = False  # names you: highlighted, and always notifies

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

    def __init__(self, clock: Callable[[], float] = time.monotonic, remember: int = 10_000) -> None:
        self._clock = clock
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
        self.room = ""  # the room's own name, when the engine tells one
        self.host_name = ""  # joining: the first member, who is the host
        self.retry_at: float | None = None  # reconnecting: when the next try starts
        self.attempt = 0
        # Earlier messages already shown in this window, so rejoining does not repeat them.
        self._seen: OrderedDict[tuple[str, int | None, str | None, str], None] = OrderedDict()
        self._remember = remember
        self._divided = False  # the "earlier" divider is up for this session

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
        self.room = ""
        self.host_name = ""
        self.retry_at = None
        self.attempt = 0
        self._divided = False
        if request.mode == "host":
            self.status = f"Starting to host on port {request.port}…"
        else:
            self.where = _where(request.host, request.port)
            self.status = f"Connecting to {self.where}…"

    def apply(self, event: object) -> list[Line]:
        """Update the state for `event`; events this view does not know show nothing."""
        from app import events as ev
        from app.protocol import is_bye, is_command, not_encrypted_warning

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
            self.retry_at = self._clock() + event.delay
            self.attempt = event.attempt
            self.status = self.reconnect_status()
            if not first:
                return []
            return [
                Line("error", event.reason),
                Line("notice", "Reconnecting… what you send now goes out once back."),
            ]
        if isinstance(event, ev.MessagePending):
            public = event.private is None
            if public and (is_command(event.text) or is_bye(event.text)):
                return []  # a command is answered by the host; a bye by "You left the chat."
            self._pending.add(event.id)
            return [Line("pending", event.text, self.me, None, id=event.id, private=event.private)]
        if isinstance(event, ev.MessageReceived):
            return self.message(event)
        if isinstance(event, ev.EarlierShown):  # kept from earlier visits: under the divider
            return [line for m in event.messages for line in self._earlier(m)]
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
        self.room = str(getattr(event, "room", "") or "")
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
        self.retry_at = None
        self.room = str(getattr(event, "room", "") or "")
        if event.members and not event.foreign:
            self.host_name = event.members[0]
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
            from app.protocol import not_encrypted_warning

            lines.append(Line("error", not_encrypted_warning(unencrypted)))
        return lines

    def message(self, event: ev.MessageReceived) -> list[Line]:
        """`apply` for a message, without asking what the event is (a flood's events)."""
        from app.protocol import is_bye

        if event.mine and event.id is not None and event.id in self._pending:
            self._pending.discard(event.id)
            self._remember_seen(self._seen_key(event))
            confirm = Line("confirm", event.text, event.sender, event.time, id=event.id)
            return [replace(confirm, private=event.private)]
        if event.earlier:
            return self._earlier(event)
        self._remember_seen(self._seen_key(event))
        if is_bye(event.text) and event.private is None:
            return []  # the "left" (or "chat ended") line that follows says it once
        kind: LineKind = "mine" if event.mine else "chat"
        when, sender, private = event.time, event.sender, event.private
        mention = event.mention
        return [Line(kind, event.text, sender, when, False, event.id, event.seq, private, mention)]

    def _earlier(self, event: ev.MessageReceived) -> list[Line]:
        """History on joining: under one divider, and never twice in this window."""
        from app.protocol import is_bye

        key = self._seen_key(event)
        if key in self._seen:
            return []
        self._remember_seen(key)
        lines = []
        if not self._divided:
            self._divided = True
            lines.append(Line("divider", EARLIER_DIVIDER, earlier=True))
        if is_bye(event.text) and event.sender is not None:
            lines.append(Line("notice", f"{event.sender} left.", earlier=True, seq=event.seq))
        else:
            kind: LineKind = "mine" if event.mine else "chat"
            line = Line(kind, event.text, event.sender, event.time, True, event.id, event.seq)
            lines.append(replace(line, private=event.private))
        return lines

    def _seen_key(self, event: ev.MessageReceived) -> tuple[str, int | None, str | None, str]:
        """The same message, the same key: the engine's (host identity, epoch, seq) when it
        gives one, else where it came from, its number, sender and text."""
        if event.key:
            return (event.key, None, None, "")
        return (self.where, event.seq, event.sender, event.text)

    def _remember_seen(self, key: tuple[str, int | None, str | None, str]) -> None:
        self._seen[key] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)

    def reconnect_status(self) -> str:
        """ "Connection lost. Next try in 3 s (attempt 2)." — counted down by the window."""
        if self.retry_at is None:
            return self.status
        left = max(0, math.ceil(self.retry_at - self._clock()))
        nb = "\u00a0"  # "1 s" and "(attempt 2)" never split over two lines
        when = f"next try in {left}{nb}s" if left else "trying again now"
        return f"Connection lost. Reconnecting: {when} (attempt{nb}{self.attempt})."

    @property
    def title(self) -> str:
        """What the window's title names: the room ("Maya's room"), or "" when not in one."""
        if self.state == "idle":
            return ""
        if self.room:
            return self.room
        if self.mode == "host":
            return f"{self.me}'s room" if self.me else ""
        if self.host_name and not self.foreign:
            return f"{self.host_name}'s room"
        return self.where

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
        self.retry_at = None
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
