"""tenants/netguard.py: which addresses count as public, and which are on a network."""

from __future__ import annotations

import pytest

from tenants import netguard

NOT_PUBLIC = {
    "loopback": "127.0.0.1",
    "loopback, elsewhere in its /8": "127.45.0.9",
    "private": "10.0.0.5",
    "private 172.16/12": "172.20.1.1",
    "private 192.168/16": "192.168.0.10",
    "CGNAT": "100.64.0.1",
    "link-local (cloud metadata)": "169.254.169.254",
    "unspecified": "0.0.0.0",
    "this network": "0.1.2.3",
    "multicast": "224.0.0.1",
    "broadcast": "255.255.255.255",
    "reserved": "240.0.0.1",
    "documentation": "203.0.113.7",
    "benchmarking": "198.18.0.1",
    "IPv6 loopback": "::1",
    "IPv6 unspecified": "::",
    "IPv6 unique local": "fd00::1",
    "IPv6 link-local": "fe80::1",
    "IPv6 multicast, global scope": "ff0e::1",
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped private": "::ffff:10.0.0.5",
    "6to4 of loopback": "2002:7f00:1::1",
    "NAT64 of loopback": "64:ff9b::7f00:1",
    "NAT64 of a private address": "64:ff9b::a00:5",
    "IPv4-compatible loopback": "::7f00:1",
    "Teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
}
PUBLIC = {
    "IPv4": "93.184.215.14",
    "IPv6": "2606:4700:4700::1111",
    "IPv4-mapped public": "::ffff:93.184.215.14",
    "6to4 of a public address": "2002:5db8:d70e::1",
}


@pytest.mark.parametrize("address", NOT_PUBLIC.values(), ids=NOT_PUBLIC.keys())
def test_an_address_that_reaches_a_private_network_is_not_public(address):
    assert netguard.is_public(address) is False


@pytest.mark.parametrize("address", PUBLIC.values(), ids=PUBLIC.keys())
def test_a_globally_reachable_address_is_public(address):
    assert netguard.is_public(address) is True


def test_an_ipv4_mapped_address_is_on_the_network_of_its_ipv4():
    lan = ["192.168.0.0/16"]
    assert netguard.in_networks("::ffff:192.168.1.20", lan)
    assert not netguard.in_networks("::ffff:127.0.0.1", lan)
    assert not netguard.in_networks("fe80::1", lan)
