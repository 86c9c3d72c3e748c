"""Rooms announced and found on the local network: DNS-SD over multicast DNS (python-zeroconf).

How this works
--------------
This is the only module that imports `zeroconf`. A `Discovery` belongs to one `NetWorker` and
lives on its loop: it makes one `AsyncZeroconf` when something first needs it (an announcement
or a browser) and closes it with `close()` when the loop stops. Everything it learns goes out
through the worker's `post`, as `RoomFound` / `RoomGone` events, like everything else.

* **Announcing.** A host calls `announce(...)` once its room is open and gets an
  `Announcement` back (or None, with a notice, when the network will not have it: hosting never
  waits for, or fails because of, multicast DNS). The service is `_parley._tcp.local.`; its
  instance name is the room name; the TXT record says the protocol version, the host's
  identity fingerprint, the member count, and whether a password is needed or unencrypted peers
  are admitted. Never the password. `set_members` keeps the count current, at most one update
  per `interval`. `withdraw()` sends the goodbye, so browsers drop the room at once; a host that
  is killed simply stops answering and its records run out after `ttl` seconds.
* **Browsing.** `browse()` starts an `AsyncServiceBrowser`; each room added or updated is
  resolved (`AsyncServiceInfo.async_request`) and posted as `RoomFound`; a removed one as
  `RoomGone`. What an announcement says is untrusted input: it is parsed with limits and
  cleaned before anyone sees it, and joining from it is first contact on trust, exactly like a
  typed address.
* **Interfaces.** `PARLEY_MDNS_INTERFACES` (comma-separated local addresses) limits every
  instance to those interfaces, announcing and browsing alike; the test suite sets it to
  127.0.0.1. A host announces only on the interfaces it listens on (`--bind 127.0.0.1`:
  loopback alone). When a host needs another set of interfaces than the current instance has,
  the instance is replaced (a browser running on it is restarted on the new one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from zeroconf import BadTypeInNameException, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from app import events as ev
from app.net.common import Post
from app.protocol import VERSION, clean_text
from app.room_names import check_room_name, default_room_name, trim_room_name

__all__ = ["check_room_name", "default_room_name", "trim_room_name"]  # with the rest below

log = logging.getLogger(__name__)

SERVICE = "_parley._tcp.local."
ENV_INTERFACES = "PARLEY_MDNS_INTERFACES"
TTL = 20  # seconds an announcement's address records live without a refresh: a host that was
# killed (no goodbye) leaves lists about this long after (plus one `SWEEP`)
SWEEP = 5.0  # how often a browser checks that the rooms it lists still answer
UPDATE_INTERVAL = 1.0  # at most one member-count update per this many seconds
RESOLVE_MS = 3000  # how long resolving one found room may take
MAX_ROOM_NAME = 63  # characters shown for a room's name


@dataclass(frozen=True)
class RoomAd:
    """What a host tells the network about its room."""

    name: str
    port: int
    addresses: tuple[str, ...]
    fingerprint: str
    members: int
    password: bool
    allow_plain: bool
    serial: int = 0  # counts the announcement's updates


def interfaces_from_env(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The addresses in `PARLEY_MDNS_INTERFACES`, or None (every interface) when it is unset.

    Entries that are not IP addresses are ignored with a warning, so a typo never widens the
    choice to every interface: an empty result means "nowhere"."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_INTERFACES, "").strip()
    if not text:
        return None
    chosen: list[str] = []
    for part in text.split(","):
        part = part.strip()
        try:
            chosen.append(str(ipaddress.ip_address(part)))
        except ValueError:
            log.warning("%s: %r is not an IP address; ignored", ENV_INTERFACES, part)
    return chosen


def announce_interfaces(
    bind: str | None, environ: Mapping[str, str] | None = None
) -> list[str] | None:
    """Where a host listening on `bind` announces: None is every interface, [] nowhere."""
    allowed = interfaces_from_env(environ)
    if bind in (None, "", "0.0.0.0", "::"):
        return allowed
    try:
        bound = str(ipaddress.ip_address(bind))
    except ValueError:
        return []
    if allowed is not None and bound not in allowed:
        return []
    return [bound]


def announce_addresses(interfaces: list[str] | None, addresses: tuple[str, ...]) -> list[str]:
    """The IP addresses a room's announcement gives: the interfaces it is announced on, or, on
    every interface, the host's own "ip:port" addresses (loopback and link-local left out)."""
    if interfaces is not None:
        return list(interfaces)
    ips = []
    for item in addresses:
        ip = item.rsplit(":", 1)[0].strip("[]")
        with contextlib.suppress(ValueError):
            parsed = ipaddress.ip_address(ip)
            if not parsed.is_loopback and not parsed.is_link_local:
                ips.append(str(parsed))
    return ips


def txt_for(ad: RoomAd) -> dict[str, str]:
    """The TXT record of a room. Never the password: only whether one is needed."""
    return {
        "v": str(VERSION),
        "room": ad.name,
        "fp": ad.fingerprint,
        "n": str(ad.members),
        "pw": "1" if ad.password else "0",
        "plain": "1" if ad.allow_plain else "0",
        # Changes with every update: a TXT record equal to one seen a moment ago (the count
        # went 1, 2, 1) is taken by browsers' caches for the old record, and no update fires.
        "u": str(ad.serial),
    }


def _text(props: Mapping[bytes, bytes | None], key: str, limit: int = 200) -> str:
    value = props.get(key.encode())
    if not value:
        return ""
    return clean_text(value[:limit].decode("utf-8", "replace"))


def room_from_info(
    key: str,
    name: str,
    port: int | None,
    addresses: list[str],
    props: Mapping[bytes, bytes | None],
    local_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
) -> ev.RoomFound | None:
    """A `RoomFound` from a resolved service, or None when it is not a usable Parley room.

    Everything here came from the network unauthenticated: lengths are capped, control
    characters removed, numbers checked. The address offered first is one on a network of
    this machine's when there is one."""
    if not port or not (0 < port < 65536) or not addresses:
        return None
    shown = " ".join(_text(props, "room").split())[:MAX_ROOM_NAME]
    if not shown:
        shown = " ".join(clean_text(name).split())[:MAX_ROOM_NAME]
    if not shown:
        return None
    count_text = _text(props, "n", 8)
    members = int(count_text) if count_text.isdecimal() else 0
    version = _text(props, "v", 8)
    ordered = _best_first(addresses, local_networks or [])
    return ev.RoomFound(
        key=key,
        name=shown,
        host=ordered[0],
        port=port,
        members=members,
        password=_text(props, "pw", 2) == "1",
        allow_plain=_text(props, "plain", 2) == "1",
        fingerprint=_text(props, "fp", 128),
        version=version,
        addresses=tuple(ordered),
    )


def _best_first(
    addresses: list[str], networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> list[str]:
    def rank(ip: str) -> int:
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            return 3
        if any(parsed in net for net in networks):
            return 0
        if parsed.is_link_local:
            return 2
        return 1

    return sorted(dict.fromkeys(addresses), key=rank)


def _local_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    import ifaddr

    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    with contextlib.suppress(Exception):
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                addr = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.ip_network(f"{addr}/{ip.network_prefix}", strict=False))
    return nets


class Announcement:
    """One room on the network, from `Discovery.announce` until `withdraw()`."""

    def __init__(
        self, discovery: Discovery, zc: AsyncZeroconf, info: AsyncServiceInfo, ad: RoomAd
    ) -> None:
        self._discovery = discovery
        self._zc = zc
        self._info = info
        self._ad = ad
        self._members = ad.members
        self._last_update = asyncio.get_running_loop().time()
        self._timer: asyncio.TimerHandle | None = None
        self._updating: asyncio.Task[None] | None = None
        self.withdrawn = False

    @property
    def name(self) -> str:
        """The instance name as announced (the network may have made it unique)."""
        return self._info.name[: -len(SERVICE) - 1]

    def set_members(self, count: int) -> None:
        """Keep the announced member count current, at most one update per interval."""
        if self.withdrawn or count == self._members:
            return
        self._members = count
        if self._timer is not None:
            return  # an update is already due; it will carry the latest count
        loop = asyncio.get_running_loop()
        due = self._last_update + self._discovery.interval
        self._timer = loop.call_at(max(due, loop.time()), self._update)

    def _update(self) -> None:
        self._timer = None
        if self.withdrawn:
            return
        self._last_update = asyncio.get_running_loop().time()
        self._ad = dataclasses.replace(self._ad, members=self._members, serial=self._ad.serial + 1)
        old = self._info
        self._info = AsyncServiceInfo(
            SERVICE,
            old.name,
            port=old.port,
            addresses=old.addresses,
            properties=txt_for(self._ad),
            server=old.server,
            host_ttl=old.host_ttl,
            other_ttl=old.other_ttl,
        )
        self._updating = asyncio.ensure_future(self._send_update())

    async def _send_update(self) -> None:
        try:
            await self._zc.async_update_service(self._info)
        except Exception as exc:  # the room goes on; its count is just not current
            log.info("could not update the room's announcement: %r", exc)

    async def withdraw(self, wait_steps: int = 3) -> None:
        """Send the goodbye, so browsers drop the room at once."""
        if self.withdrawn:
            return
        self.withdrawn = True
        if self._timer is not None:
            self._timer.cancel()
        if self._updating is not None:
            self._updating.cancel()
        self._discovery.forget(self)
        try:
            await self._zc.async_unregister_service(self._info)
            # The goodbye's first copy goes out on the broadcast task's first step; its
            # repeats follow while the loop runs. Ending a room waits for no more than that.
            for _ in range(wait_steps):
                await asyncio.sleep(0)
        except Exception as exc:
            log.info("goodbye for the room's announcement: %r", exc)


class Discovery:
    """The worker's multicast DNS: at most one `AsyncZeroconf`, its announcements and its
    browser. Every method runs on the worker's loop; `close()` when the loop stops."""

    def __init__(
        self,
        post: Post,
        *,
        ttl: int = TTL,
        interval: float = UPDATE_INTERVAL,
        sweep: float = SWEEP,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.post = post
        self.ttl = ttl
        self.interval = interval
        self.sweep = sweep
        self._sweeper: asyncio.Task[None] | None = None
        self._browsing = False
        self._environ = environ
        self._zc: AsyncZeroconf | None = None
        self._zc_interfaces: list[str] | None = None
        self._announcements: list[Announcement] = []
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: set[asyncio.Task[None]] = set()
        self._found: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    # --- the instance ---------------------------------------------------------------------------

    async def _instance(self, interfaces: list[str] | None) -> AsyncZeroconf:
        """The AsyncZeroconf for `interfaces` (None: all), replacing one made for others."""
        if self._zc is not None and self._zc_interfaces == interfaces:
            return self._zc
        browsing = self._browser is not None
        if self._zc is not None:
            await self._close_instance()
        if interfaces is None:
            zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        else:
            v6 = any(":" in ip for ip in interfaces)
            version = IPVersion.All if v6 else IPVersion.V4Only
            zc = AsyncZeroconf(interfaces=list(interfaces), ip_version=version)
        self._zc, self._zc_interfaces = zc, interfaces
        # Wait for its sockets here, once. A browser cancelled while its own start-up waits
        # would cancel the instance's shared "running" future, and every later announcement
        # on it would fail with NotRunningException (seen when a window stops browsing at once
        # because it hosts at start-up).
        await zc.zeroconf.async_wait_for_start()
        if browsing:
            self._start_browser(zc)
        return zc

    async def _close_instance(self) -> None:
        zc, self._zc = self._zc, None
        for announcement in list(self._announcements):
            await announcement.withdraw()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
            self._browser = None
        self._browsing = False
        self._stop_sweeper()
        for task in list(self._resolving):
            task.cancel()
        self._gone_all()
        if zc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(zc.async_close(), 2.0)

    async def close(self) -> None:
        """Withdraw every room, stop browsing and close the instance (the loop is stopping)."""
        await self._close_instance()

    def forget(self, announcement: Announcement) -> None:
        with contextlib.suppress(ValueError):
            self._announcements.remove(announcement)

    # --- announcing -----------------------------------------------------------------------------

    async def announce(
        self, ad: RoomAd, bind: str | None, *, ttl: int | None = None
    ) -> Announcement | None:
        """Put the room on the network where a host on `bind` listens; None (and a notice)
        when it cannot be: the room itself carries on either way."""
        interfaces = announce_interfaces(bind, self._environ)
        if interfaces == []:
            self.post(
                ev.NoticeShown(
                    f"This room is not announced on the network: {ENV_INTERFACES} leaves out "
                    f"the address it listens on ({bind}). Others can still join by address."
                )
            )
            return None
        ips = announce_addresses(interfaces, ad.addresses)
        packed = []
        for ip in ips:
            with contextlib.suppress(ValueError):
                packed.append(ipaddress.ip_address(ip).packed)
        if not packed:
            self.post(
                ev.NoticeShown(
                    "This room is not announced on the network: this machine has no address "
                    "to announce. Others can still join by address."
                )
            )
            return None
        life = ttl or self.ttl
        try:
            zc = await self._instance(interfaces)
            info = AsyncServiceInfo(
                SERVICE,
                f"{trim_room_name(ad.name) or 'Parley room'}.{SERVICE}",
                port=ad.port,
                addresses=packed,
                properties=txt_for(ad),
                server=f"parley-{secrets.token_hex(4)}.local.",
                host_ttl=life,
                other_ttl=life,
            )
            # Probing for a clash takes about a second; once registered there is no await
            # before the announcement is recorded, so a cancelled host leaves nothing behind.
            await zc.async_register_service(info, allow_name_change=True)
            announcement = Announcement(self, zc, info, ad)
            self._announcements.append(announcement)
            return announcement
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # port 5353 taken, no multicast, a name clash: say so
            log.info("could not announce the room: %r", exc)
            self.post(
                ev.NoticeShown(
                    f"This room is not announced on the network ({_why(exc)}). "
                    "Others can still join by address."
                )
            )
            return None

    # --- browsing -------------------------------------------------------------------------------

    async def browse(self) -> None:
        """Start posting the rooms on the network (`RoomFound`, `RoomGone`) until
        `stop_browsing()`. A failure is one notice, never an exception."""
        if self._browser is not None:
            return
        try:
            zc = await self._instance(
                self._zc_interfaces
                if self._zc is not None and self._announcements
                else interfaces_from_env(self._environ)
            )
            self._networks = _local_networks()
            self._start_browser(zc)
        except Exception as exc:
            log.info("could not browse for rooms: %r", exc)
            self.post(ev.NoticeShown(f"Cannot look for rooms on the network ({_why(exc)})."))

    def _start_browser(self, zc: AsyncZeroconf) -> None:
        self._browsing = True  # before the browser: it reports cached rooms while being made
        self._browser = AsyncServiceBrowser(zc.zeroconf, SERVICE, handlers=[self._changed])
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Drop the rooms that stopped answering. python-zeroconf keeps a service's pointer
        record at least 1125 s whatever its TTL says, so a killed host would stay listed for
        20 minutes: here, a room whose address record ran out (`ttl`) and that does not answer
        a query within a second is gone. A live host answers, which also refreshes it."""
        while True:
            await asyncio.sleep(self.sweep)
            zc = self._zc
            if zc is None or self._browser is None:
                continue
            for name in sorted(self._found):
                info = AsyncServiceInfo(SERVICE, name)
                with contextlib.suppress(Exception):
                    if await info.async_request(zc.zeroconf, 1000):
                        continue
                if name in self._found and self._browser is not None:
                    self._found.discard(name)
                    self.post(ev.RoomGone(name))

    async def stop_browsing(self) -> None:
        browser, self._browser = self._browser, None
        self._browsing = False
        self._stop_sweeper()
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.async_cancel()
        for task in list(self._resolving):
            task.cancel()
        self._gone_all()

    def _stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()

    def _gone_all(self) -> None:
        for key in sorted(self._found):
            self.post(ev.RoomGone(key))
        self._found.clear()

    def _changed(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if not self._browsing:
            return
        if state_change is ServiceStateChange.Removed:
            if name in self._found:
                self._found.discard(name)
                self.post(ev.RoomGone(name))
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, name))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _resolve(self, zeroconf: Zeroconf, name: str) -> None:
        try:
            info = AsyncServiceInfo(SERVICE, name)
            if not await info.async_request(zeroconf, RESOLVE_MS):
                return
        except (BadTypeInNameException, ValueError, OSError) as exc:
            log.info("could not resolve %r: %r", name, exc)
            return
        if not self._browsing:
            return
        room = room_from_info(
            name,
            name[: -len(SERVICE) - 1],
            info.port,
            info.parsed_scoped_addresses(),
            info.properties,
            self._networks,
        )
        if room is not None:
            self._found.add(name)
            self.post(room)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
