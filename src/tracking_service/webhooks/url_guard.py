"""Which webhook URLs may be called: no loopback, private, link-local, multicast or cloud
metadata address unless the settings allow it, and `https` unless `TRACKING_WEBHOOK_ALLOW_HTTP`.

A receiver's URL is checked twice: when it is registered (`check_url`, a 422 for the API) and
at every connection the sender opens (`allowed_addresses`, called by the sender's resolver on
the addresses it is about to connect to), so a name that resolved to a public address when it
was registered and to 10.0.0.5 since (DNS rebinding) is refused at send time: the sender
connects only to addresses that passed the check.

An address is refused unless it is globally routable (Python's `is_global`, which excludes
loopback, RFC 1918 and unique-local ranges, link-local 169.254.0.0/16 and fe80::/10 where the
cloud metadata services live, shared 100.64.0.0/10, documentation and reserved ranges) and not
multicast; IPv4 addresses mapped into IPv6 are judged as IPv4. `TRACKING_WEBHOOK_ALLOW_HOSTS`
names exceptions: a host name (exactly, any case) allows whatever it resolves to; an address
or CIDR range allows the addresses in it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from tracking_service.errors import InvalidInput
from tracking_service.webhooks.config import WebhookConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses the name resolves to (raises OSError when it does not)."""

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
"""Cloud metadata services (AWS, GCP, Azure, Alibaba): refused even when a range that holds
them is allowed, unless the address itself is named."""


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """A URL's parts the guard and the sender need."""

    url: str
    scheme: str
    host: str
    """Lower case, without brackets or a trailing dot."""
    port: int


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL that passed every check, with the addresses it resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllowList:
    """`TRACKING_WEBHOOK_ALLOW_HOSTS`, parsed."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]
    addresses: frozenset[IPAddress]

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows(self, address: IPAddress) -> bool:
        if address in self.addresses:
            return True
        if address in METADATA_ADDRESSES:
            return False
        return any(address in net for net in self.networks)


@lru_cache(maxsize=32)
def allow_list(entries: tuple[str, ...]) -> AllowList:
    """Parse the allow-list: every entry is an address, a CIDR range or a host name."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    addresses: set[IPAddress] = set()
    for raw in entries:
        entry = raw.strip().strip("[]").lower().rstrip(".")
        if not entry:
            continue
        try:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                addresses.add(ipaddress.ip_address(entry))
            continue
        except ValueError:
            hosts.add(entry)
    return AllowList(frozenset(hosts), tuple(networks), frozenset(addresses))


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, field="url")


def parse_url(url: str, config: WebhookConfig) -> ParsedUrl:
    """The scheme, host and port of a webhook URL; raises `InvalidInput(field="url")` when it
    is not an absolute http(s) URL, or http without `allow_http`, or carries credentials."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() for c in url):
        raise _bad("the URL must be an absolute https URL of at most 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"the URL cannot be parsed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _bad("the URL must start with https://")
    if scheme == "http" and not config.allow_http:
        raise _bad(
            "the URL must use https (http:// is allowed only with TRACKING_WEBHOOK_ALLOW_HTTP)"
        )
    if parts.username is not None or parts.password is not None:
        raise _bad("the URL must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _bad("the URL has no host")
    return ParsedUrl(url, scheme, host, port or (443 if scheme == "https" else 80))


def literal_address(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be called (None: it may): the kind of range it is in."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved or non-public address"
    return None


def allowed_addresses(host: str, addresses: Iterable[str], config: WebhookConfig) -> list[str]:
    """The addresses of `host` that may be called; raises `InvalidInput(field="url")` naming
    the first refused one when none may."""
    allow = allow_list(config.allow_hosts)
    found = list(addresses)
    if allow.allows_host(host):
        return found
    ok: list[str] = []
    first_refusal: str | None = None
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        reason = refusal(address)
        if reason is None or allow.allows(address):
            ok.append(text)
        elif first_refusal is None:
            first_refusal = (
                f"{host} is {reason} ({address})"
                if str(address) != host
                else (f"{host} is {reason}")
            )
    if not ok:
        if first_refusal is None:
            raise _bad(f"{host} does not resolve to any address")
        raise _bad(
            f"the URL's host is refused: {first_refusal}; name it in "
            "TRACKING_WEBHOOK_ALLOW_HOSTS to allow it"
        )
    return ok


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


async def check_url(url: str, config: WebhookConfig, *, resolver: Resolve = resolve) -> CheckedUrl:
    """Check a receiver's URL as the API registers it: syntax and scheme, then every address
    its host resolves to now. Raises `InvalidInput(field="url")` with the reason."""
    parsed = parse_url(url, config)
    literal = literal_address(parsed.host)
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = await resolver(parsed.host, parsed.port)
        except (OSError, UnicodeError) as exc:
            raise _bad(f"{parsed.host} does not resolve: {exc}") from None
    ok = allowed_addresses(parsed.host, found, config)
    return CheckedUrl(parsed.url, parsed.scheme, parsed.host, parsed.port, tuple(ok))
