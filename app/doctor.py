"""The connection doctor: what this machine's networks say about reaching, or being reached.

How this works
--------------
Everything here reads what an unprivileged program may read: the interfaces and their addresses
(`ifaddr`), and on Linux the firewalls' own status files. Nothing is sent anywhere.

* `interfaces()` lists this machine's IP networks, each labelled by the kind of interface the
  system names (Wi-Fi, Ethernet, VPN, loopback, virtual), best guess from its name.
* `share_notes(addresses)` says, for a host, which interface each address belongs to and warns
  when the only addresses are loopback or link-local (nobody else can reach those).
* `firewall_hint(port)` says whether a host firewall is likely to block the port, with the exact
  step to allow it (ufw, firewalld; the system's own prompt on Windows and macOS).
* `explain_unreachable(host, networks)` compares a join's target with this machine's networks
  after a failed connection ("192.168.2.7 is not on your network 10.0.0.0/24 (Wi-Fi): are you on
  the same Wi-Fi?").

The pure parts take their inputs as arguments, so tests hand them made-up networks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Interface:
    name: str  # the system's name: wlan0, eth0, "Wi-Fi"
    kind: str  # "Wi-Fi", "Ethernet", "VPN", "loopback", "virtual", or "" when unsure
    ip: str
    network: Network

    @property
    def label(self) -> str:
        return f"{self.kind}, {self.name}" if self.kind else self.name


_VPN = ("tun", "tap", "wg", "ppp", "tailscale", "utun", "ipsec", "zt", "nordlynx", "proton")
_VIRTUAL = ("docker", "br-", "virbr", "veth", "vmnet", "vboxnet", "lxc", "lxd", "cni", "podman")


def interface_kind(name: str) -> str:
    """What kind of interface `name` is, as far as its name tells (Linux, macOS, Windows)."""
    low = name.lower()
    if low == "lo" or low.startswith("lo0") or "loopback" in low:
        return "loopback"
    if low.startswith(("wl", "wifi", "ath", "ra")) or any(
        word in low for word in ("wi-fi", "wireless", "wlan", "802.11")
    ):
        return "Wi-Fi"
    if low.startswith(_VPN) or any(word in low for word in ("vpn", "wireguard", "tailscale")):
        return "VPN"
    if low.startswith(_VIRTUAL) or any(word in low for word in ("virtual", "hyper-v", "wsl")):
        return "virtual"
    if low.startswith(("en", "eth", "em", "eno", "ens", "enp")) or "ethernet" in low:
        return "Ethernet"
    return ""


def interfaces() -> list[Interface]:
    """This machine's networks (never raises: an unreadable list is an empty one)."""
    import ifaddr

    found: list[Interface] = []
    with contextlib.suppress(Exception):
        for adapter in ifaddr.get_adapters():
            name = str(adapter.nice_name or adapter.name)
            kind = interface_kind(name) or interface_kind(str(adapter.name))
            for ip in adapter.ips:
                addr = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
                with contextlib.suppress(ValueError):
                    network = ipaddress.ip_network(f"{addr}/{ip.network_prefix}", strict=False)
                    found.append(Interface(name, kind, addr, network))
    return found


def _ip_of(address: str) -> str:
    """The IP part of "ip:port" / "[v6]:port" / a bare IP."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def share_notes(addresses: Iterable[str], nets: list[Interface] | None = None) -> list[str]:
    """For a host: each address with the interface it belongs to, then a warning when none of
    them can be reached from another machine."""
    nets = interfaces() if nets is None else nets
    lines: list[str] = []
    reachable = False
    for address in addresses:
        ip = _ip_of(address)
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            continue
        owner = next((n for n in nets if n.ip == ip), None)
        if parsed.is_loopback:
            label = "this machine only"
        elif parsed.is_link_local:
            label = "link-local"
        else:
            reachable = True
            label = owner.label if owner is not None else ""
        lines.append(f"{address} ({label})" if label else address)
    if lines and not reachable:
        lines.append(
            "Warning: these addresses reach this machine only (loopback) or this cable or Wi-Fi "
            "without a router (link-local): others on the network cannot join. Connect to the "
            "network (or listen on all addresses, not --bind 127.0.0.1) first."
        )
    return lines


def firewall_hint(port: int, *, platform: str | None = None, root: Path = Path("/")) -> str | None:
    """Whether a host firewall is likely to block `port`, and the step to allow it; None when
    nothing readable says so."""
    platform = platform or sys.platform
    if platform == "win32":
        return (
            f"Windows asks the first time Parley listens: choose Allow on private networks. "
            f"If you said no: Windows Security › Firewall › Allow an app, tick Parley (port "
            f"{port}/TCP)."
        )
    if platform == "darwin":
        return (
            "macOS may ask whether Parley may accept incoming connections: choose Allow "
            "(System Settings › Network › Firewall › Options)."
        )
    ufw = root / "etc/ufw/ufw.conf"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in ufw.read_text().splitlines():
            if line.strip().replace(" ", "").lower() == "enabled=yes":
                return (
                    f"The ufw firewall is on and may block port {port}: allow it with "
                    f"`sudo ufw allow {port}/tcp` (and `sudo ufw allow mdns` to be found)."
                )
    if (root / "run/firewalld").is_dir() or (root / "var/run/firewalld.pid").exists():
        return (
            f"firewalld is running and may block port {port}: allow it with "
            f"`sudo firewall-cmd --add-port={port}/tcp --add-service=mdns` "
            f"(add --permanent to keep it after a restart)."
        )
    if root == Path("/") and shutil.which("nft") and (root / "etc/nftables.conf").is_file():
        return (
            f"nftables rules are installed (reading them needs root): if others cannot join, "
            f"allow TCP port {port} in /etc/nftables.conf."
        )
    return None


def explain_unreachable(host: str, nets: list[Interface] | None = None) -> str | None:
    """After a join to `host` failed (refused, timed out, no route): what is likely, from how
    `host` compares with this machine's networks; None when there is nothing useful to add."""
    try:
        target = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None  # a name: what it resolves to is the system's business
    if target.is_loopback:
        return None  # this machine: the message already says "is the host running?"
    nets = interfaces() if nets is None else nets
    mine = [n for n in nets if n.network.version == target.version and n.kind != "loopback"]
    if any(target == ipaddress.ip_address(n.ip) for n in mine):
        return f"{host} is this machine: is Parley hosting here, on that port?"
    home = next((n for n in mine if target in n.network), None)
    vpn = next((n for n in mine if n.kind == "VPN"), None)
    if home is not None:
        hint = (
            f"{host} is on your network {home.network} ({home.label}), so the network is not "
            "in the way: is the host running, on that port, and does its firewall allow it?"
        )
        return hint
    lans = [n for n in mine if n.kind not in ("VPN", "virtual") and not _link_local(n)]
    if not lans:
        return (
            f"This machine is not on any network but {vpn.label if vpn else 'itself'}: "
            "connect to the Wi-Fi or the cable first."
        )
    shown = ", ".join(f"{n.network} ({n.label})" for n in lans[:3])
    hint = (
        f"{host} is not on your network{'s' if len(lans) > 1 else ''} {shown}: "
        "are you on the same Wi-Fi? A guest network or another subnet cannot reach it."
    )
    if vpn is not None:
        hint += f" A VPN is on ({vpn.name}): it may send this address elsewhere."
    return hint


def _link_local(net: Interface) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(net.ip).is_link_local
    return False
