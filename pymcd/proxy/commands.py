"""The proxy's text commands: what a client may send, and which of it is routed.

A proxy connection runs pymcd's own text machine over a dispatch table that is the server's with
the keyed verbs replaced by the routed ones below, so framing, ``ERROR`` for bad token counts,
and every keyless command (``version``, ``stats``, ``flush_all``, ``mn``, ``verbosity``,
``watch``, ``quit``...) behave exactly as pymcd's server; those are answered by the proxy
itself, as memcached's proxy answers them. ``stats proxy`` adds the proxy's counters.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from pymcd.commands.base import BAD_FORMAT, KEY_MAX_LENGTH, TextCommand
from pymcd.commands.registry import UNBOUNDED, TextDispatch
from pymcd.c_numbers import parse_storage_numbers
from pymcd.stats import render_stats

BAD_DATA_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
Hide = Optional[Callable[[bytes], bool]]


def _hide_all(reply: bytes) -> bool:
    """Classic ``noreply``: the proxy swallows the backend's answer."""
    return True


# Meta ``q``: which answers each command's quiet mode hides (errors always show).
QUIET_HIDES: Dict[bytes, Callable[[bytes], bool]] = {
    b"mg": lambda reply: reply[:2] == b"EN",
    b"ms": lambda reply: reply[:2] == b"HD",
    b"md": lambda reply: reply[:2] == b"HD",
    b"ma": lambda reply: reply[:2] in (b"HD", b"VA"),
}


def _classic_noreply(tokens: List[bytes]):
    """(tokens to forward, what to hide): a final ``noreply`` is the proxy's to honour."""
    if tokens[-1] == b"noreply":
        return tokens[:-1], _hide_all
    return tokens, None


def _meta_quiet(tokens: List[bytes], first_flag: int):
    """(tokens to forward, what to hide): ``q`` is taken out and applied by the proxy."""
    command = tokens[0]
    flags = tokens[first_flag:]
    if not any(flag[:1] == b"q" for flag in flags):
        return tokens, None
    kept = tokens[:first_flag] + [flag for flag in flags if flag[:1] != b"q"]
    return kept, QUIET_HIDES.get(command)


class Routed(TextCommand):
    """A routed twin of one of the server's commands: the same names and token counts."""

    def __init__(self, served: TextCommand, meta: bool = False) -> None:
        self.names = served.names
        self.arity = served.arity
        self.meta = meta


class RoutedFetch(Routed):
    """get/gets/gat/gats: each key routed on its own, the answers merged in the request's order
    under one END."""

    writes_at_once = True

    def __init__(self, served: TextCommand) -> None:
        super().__init__(served)
        self.first_key = 2 if served.touch else 1

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        first_key = self.first_key
        if len(tokens) <= first_key:
            session.reply(b"ERROR\r\n")
            return
        keys = tokens[first_key:]
        for key in keys:
            if len(key) > KEY_MAX_LENGTH:
                session.reply(BAD_FORMAT)
                return
        client = session.proxy
        if len(keys) == 1:
            client.route(tokens[0], keys[0], tokens, None, None)
        else:
            client.route_multiget(tokens[:first_key], keys)


class RoutedKeyed(Routed):
    """delete, incr, decr, touch (classic) and mg, md, ma, me (meta): one key at token 1."""

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            session.error(BAD_FORMAT)
            return
        forwarded, hide = _meta_quiet(tokens, 2) if self.meta else _classic_noreply(tokens)
        session.proxy.route(tokens[0], key, forwarded, None, hide)


class RoutedStore(Routed):
    """set/add/replace/append/prepend/cas and ms: the block is read here, then routed."""

    takes_value = True

    def begin(self, session, tokens: List[bytes]) -> Optional[int]:
        if len(tokens[1]) > KEY_MAX_LENGTH:
            session.error(BAD_FORMAT)
            return None
        if self.meta:
            length = tokens[2]
            if not length.isdigit():
                session.error(BAD_DATA_CHUNK)
                return None
            return int(length)
        numbers = parse_storage_numbers(tokens[2], tokens[3], tokens[4])
        if numbers is None or numbers[2] < 0:
            session.error(BAD_FORMAT)
            return None
        return numbers[2]

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        forwarded, hide = _meta_quiet(tokens, 3) if self.meta else _classic_noreply(tokens)
        session.proxy.route(tokens[0], tokens[1], forwarded, value, hide)


class ProxyStats(Routed):
    """``stats proxy`` is the proxy's; every other ``stats`` is the server's own."""

    writes_at_once = True

    def __init__(self, served: TextCommand) -> None:
        super().__init__(served)
        self.served = served

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        if len(tokens) == 2 and tokens[1] == b"proxy":
            session.out.append(render_stats(session.proxy.service.stats()))
        else:
            self.served.execute(session, tokens, value)


CLASSIC_FETCHES = (b"get", b"bget", b"gets", b"gat", b"gats")
CLASSIC_STORES = (b"set", b"add", b"replace", b"append", b"prepend", b"cas")
CLASSIC_KEYED = (b"delete", b"incr", b"decr", b"touch")
META_KEYED = (b"mg", b"md", b"ma", b"me")


def proxy_dispatch(served: Dict[bytes, TextCommand]) -> Dict[bytes, TextDispatch]:
    """The server's text commands, the keyed ones replaced by their routed twins."""
    commands: Dict[bytes, TextCommand] = dict(served)
    for name in CLASSIC_FETCHES:
        commands[name] = RoutedFetch(served[name])
    for name in CLASSIC_STORES:
        commands[name] = RoutedStore(served[name], meta=False)
    commands[b"ms"] = RoutedStore(served[b"ms"], meta=True)
    for name in CLASSIC_KEYED:
        commands[name] = RoutedKeyed(served[name], meta=False)
    for name in META_KEYED:
        commands[name] = RoutedKeyed(served[name], meta=True)
    commands[b"stats"] = ProxyStats(served[b"stats"])
    dispatch = {}
    for name, command in commands.items():
        low, high = command.arity
        dispatch[name] = (command, low, UNBOUNDED if high is None else high, command.takes_value)
    return dispatch
