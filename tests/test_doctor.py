"""The connection doctor's reasoning, on made-up networks (nothing is sent anywhere)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from app import doctor
from app import events as ev
from app.cli import failure_hint
from app.doctor import Interface, explain_unreachable, firewall_hint, interface_kind, share_notes


def net(name: str, cidr: str) -> Interface:
    iface = ipaddress.ip_interface(cidr)
    return Interface(name, interface_kind(name), str(iface.ip), iface.network)


WIFI = [net("lo", "127.0.0.1/8"), net("wlan0", "10.0.0.5/24")]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("lo", "loopback"),
        ("wlp2s0", "Wi-Fi"),
        ("Wi-Fi", "Wi-Fi"),
        ("enp3s0", "Ethernet"),
        ("eth0", "Ethernet"),
        ("Ethernet 2", "Ethernet"),
        ("tun0", "VPN"),
        ("wg0", "VPN"),
        ("docker0", "virtual"),
        ("mystery", ""),
    ],
)
def test_interfaces_are_labelled_by_what_the_system_calls_them(name: str, kind: str) -> None:
    assert interface_kind(name) == kind


def test_a_target_on_another_network_is_said_plainly() -> None:
    hint = explain_unreachable("192.168.2.7", WIFI)
    assert hint == (
        "192.168.2.7 is not on your network 10.0.0.0/24 (Wi-Fi, wlan0): are you on the same "
        "Wi-Fi? A guest network or another subnet cannot reach it."
    )


def test_a_target_on_my_network_points_at_the_host_and_its_firewall() -> None:
    hint = explain_unreachable("10.0.0.9", WIFI)
    assert hint is not None
    assert hint.startswith("10.0.0.9 is on your network 10.0.0.0/24 (Wi-Fi, wlan0)")
    assert "firewall" in hint


def test_a_vpn_is_mentioned_and_no_network_at_all_is_said() -> None:
    hint = explain_unreachable("192.168.2.7", [*WIFI, net("tun0", "10.8.0.2/24")])
    assert hint is not None
    assert "A VPN is on (tun0)" in hint
    alone = explain_unreachable("192.168.2.7", [net("lo", "127.0.0.1/8")])
    assert alone is not None
    assert alone.startswith("This machine is not on any network")


def test_loopback_and_names_get_no_guess() -> None:
    assert explain_unreachable("127.0.0.1", WIFI) is None
    assert explain_unreachable("kitchen-pc", WIFI) is None


def test_the_terminal_adds_the_guess_only_when_the_connection_failed() -> None:
    unreachable = ev.Failed("Could not connect to 10.255.0.1:5151: timed out", "timeout")
    hint = failure_hint(unreachable, "10.255.0.1")
    assert hint == explain_unreachable("10.255.0.1", doctor.interfaces())
    assert failure_hint(ev.Failed("wrong password", "refused"), "10.255.0.1") is None
    assert failure_hint(unreachable, None) is None


def test_a_host_sees_its_addresses_by_interface_and_a_loopback_warning() -> None:
    notes = share_notes(["10.0.0.5:5151"], WIFI)
    assert notes == ["10.0.0.5:5151 (Wi-Fi, wlan0)"]
    alone = share_notes(["127.0.0.1:5151"], WIFI)
    assert alone[0] == "127.0.0.1:5151 (this machine only)"
    assert alone[1].startswith("Warning: these addresses reach this machine only")
    link = share_notes(["169.254.3.4:5151"], [net("eth0", "169.254.3.4/16")])
    assert link[0] == "169.254.3.4:5151 (link-local)"
    assert link[1].startswith("Warning:")


def test_firewall_hints_read_what_needs_no_privileges(tmp_path: Path) -> None:
    assert firewall_hint(5151, platform="linux", root=tmp_path) is None
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/ufw/ufw.conf").write_text("# comment\nENABLED=yes\n")
    hint = firewall_hint(5151, platform="linux", root=tmp_path)
    assert hint is not None
    assert "`sudo ufw allow 5151/tcp`" in hint
    (tmp_path / "etc/ufw/ufw.conf").write_text("ENABLED=no\n")
    (tmp_path / "run/firewalld").mkdir(parents=True)
    hint = firewall_hint(6000, platform="linux", root=tmp_path)
    assert hint is not None
    assert "sudo firewall-cmd --add-port=6000/tcp" in hint
    windows = firewall_hint(5151, platform="win32")
    assert windows is not None
    assert "Allow" in windows
    mac = firewall_hint(5151, platform="darwin")
    assert mac is not None
    assert "Allow" in mac
