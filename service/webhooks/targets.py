"""Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses.

A subscriber chooses the URL, so without this rule the service could be made to POST into
its own network (databases, cloud metadata at 169.254.169.254, admin ports). Every address
the host resolves to is checked, when the webhook is saved and again before each attempt,
and the attempt connects to the address that was checked (the URL's host stays in the Host
header and in TLS), so a name that resolves to a public address at the check and to a
private one a moment later (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

RESOLVE_SECONDS = 5.0
MAX_URL_LENGTH = 2048

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# http(s), a host name of letter-digit-hyphen labels, an IPv4 address or a bracketed IPv6
# one, an optional port, then any printable ASCII. Names outside ASCII are sent in their
# punycode (xn--) form. What the pattern lets through is checked further by `parse`.
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)
_URL = re.compile(URL_PATTERN)


class TargetRefused(ValueError):
    """The URL cannot be used as a webhook target; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class Request:
    """How to reach a vetted target: the URL to connect to, and what keeps the original
    host name in the request (Host header, TLS server name)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def check_syntax(url: str) -> str:
    """`url` if it matches URL_PATTERN, else ValueError (the schema states the same)."""
    if not _URL.fullmatch(url):  # not match: its "$" would let a trailing newline through
        raise ValueError(
            "must be an http:// or https:// URL with a host name or IP address "
            "(printable ASCII; non-ASCII names in their xn-- form)"
        )
    return url


def parse(url: str) -> Target:
    try:
        parts = urlsplit(url)  # refuses a bracketed host that is no IPv6 address
        host = parts.hostname or ""
    except ValueError:
        raise TargetRefused("the host in [...] is not a valid IPv6 address") from None
    try:
        port = parts.port
    except ValueError:
        raise TargetRefused("the port must be from 1 to 65535") from None
    if port == 0:
        raise TargetRefused("the port must be from 1 to 65535")
    scheme = parts.scheme.lower()
    return Target(scheme, host, port or (443 if scheme == "https" else 80))


def refused_because(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `address` may not be a target, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is not None:
            return refused_because(embedded)
    # Most specific first: 169.254.0.0/16 is both link-local and private, say link-local.
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise TargetRefused(
            f"host {host!r} did not resolve within {RESOLVE_SECONDS:.0f} s"
        ) from None
    except (socket.gaierror, UnicodeError) as error:
        raise TargetRefused(f"host {host!r} does not resolve ({error})") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


async def vetted_addresses(target: Target) -> list[str]:
    """Every address of the target's host, each public; else TargetRefused."""
    addresses = await resolve(target.host, target.port)
    for text in addresses:
        reason = refused_because(ipaddress.ip_address(text.split("%")[0]))
        if reason is not None:
            raise TargetRefused(
                f"host {target.host!r} resolves to {text} ({reason}): only public addresses "
                "are targets unless SCORER_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"
            )
    return addresses


async def check(url: str, allow_private: bool) -> None:
    """TargetRefused unless `url` may be saved as a webhook target."""
    target = parse(url)
    if not allow_private:
        await vetted_addresses(target)


async def request_for(url: str, allow_private: bool) -> Request:
    """How to send to `url` now: checked again (its DNS may have changed since it was
    saved) and pinned to the address that passed."""
    target = parse(url)
    if allow_private:
        return Request(url)
    address = (await vetted_addresses(target))[0]
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    # URL_PATTERN admits no user:password@, so the netloc is exactly host[:port].
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return Request(urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc}, extensions)
