"""One routed request: its command, key, tokens and value, and the bytes a backend gets."""

from __future__ import annotations

from typing import List, Optional

CRLF = b"\r\n"
FETCHES = frozenset((b"get", b"gets", b"gat", b"gats", b"mg"))
# Commands whose TTL route_ttl rewrites: classic stores carry it as token 3, ms as a T flag.
CLASSIC_STORES = frozenset((b"set", b"add", b"replace", b"cas"))


class ProxyRequest:
    """A request as routes see it. ``raw`` is what is written to a backend: the client's line
    rebuilt from its tokens (``noreply`` and meta ``q`` taken out: the proxy must see every
    reply to keep a connection's replies in step, and hides them itself) plus the data block."""

    __slots__ = ("command", "key", "tokens", "value", "raw", "client")

    def __init__(self, command: bytes, key: bytes, tokens: List[bytes], value: Optional[bytes],
                 client) -> None:
        self.command = command
        self.key = key
        self.tokens = tokens
        self.value = value
        self.client = client
        line = b" ".join(tokens)
        self.raw = line + CRLF if value is None else b"".join((line, CRLF, value, CRLF))

    @property
    def is_fetch(self) -> bool:
        return self.command in FETCHES

    def with_ttl(self, ttl: int) -> "ProxyRequest":
        """The same request storing with TTL ``ttl`` (route_ttl); other commands unchanged."""
        tokens = list(self.tokens)
        if self.command in CLASSIC_STORES:
            tokens[3] = b"%d" % ttl
        elif self.command == b"ms":
            tokens = [t for t in tokens[:3]] + [t for t in tokens[3:] if t[:1] != b"T"]
            tokens.append(b"T%d" % ttl)
        else:
            return self
        return ProxyRequest(self.command, self.key, tokens, self.value, self.client)


def is_miss(reply: bytes) -> bool:
    """A fetch that found nothing: classic ``END`` alone, or meta ``EN``."""
    return reply == b"END\r\n" or reply[:3] in (b"EN\r", b"EN ")
