"""The text machine without sockets: bytes in, replies out, whatever the read boundaries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pymcd.context import ServerContext
from pymcd.protocol.text import TextMachine
from pymcd.settings import Settings
from pymcd.store import Store

CONVERSATION = (
    b"set a 1 0 5\r\nhello\r\n"
    b"get a b\r\n"
    b"append a 0 0 3\r\n!!!\r\n"
    b"gets a\r\n"
    b"incr a 1\r\n"
    b"set n 0 0 2 noreply\r\n41\r\n"
    b"incr n 1\r\n"
    b"delete a\r\n"
    b"bogus\r\n"
    b"set x 0 0 1\r\nabc\r\n"
    b"get n a\r\n"
)


def new_machine():
    settings = Settings()
    store = Store(settings.store, clock=lambda: 1_000_000.0)
    server = ServerContext(settings, store)
    session = server.open_session()
    return TextMachine(session, server.commands.text_dispatch), session


def feed(chunks) -> bytes:
    machine, session = new_machine()
    for chunk in chunks:
        while machine.receive(chunk):
            chunk = b""
    return b"".join(session.out)


def test_whole_conversation():
    reply = feed([CONVERSATION])
    assert reply.startswith(b"STORED\r\nVALUE a 1 5\r\nhello\r\nEND\r\nSTORED\r\nVALUE a 1 8 ")
    assert reply.endswith(
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        b"42\r\nDELETED\r\nERROR\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\n"
        b"VALUE n 0 2\r\n42\r\nEND\r\n"
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(CONVERSATION)), max_size=12))
def test_read_boundaries_do_not_matter(cuts):
    points = sorted(set(cuts))
    chunks = [CONVERSATION[a:b] for a, b in zip([0] + points, points + [len(CONVERSATION)])]
    assert feed(chunks) == feed([CONVERSATION])


def test_budget_yields_and_resumes():
    machine, session = new_machine()
    session.server.settings.reqs_per_event = 3
    machine.requests_per_event = 3
    assert machine.receive(b"version\r\n" * 7) is True
    assert b"".join(session.out) == b"VERSION 1.6.18\r\n" * 3
    assert machine.receive(b"") is True
    assert machine.receive(b"") is False
    assert b"".join(session.out) == b"VERSION 1.6.18\r\n" * 7
    assert session.server.stats.conn_yields == 2


VERBS = st.sampled_from([b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append",
                         b"prepend", b"cas", b"incr", b"decr", b"delete", b"touch", b"flush_all",
                         b"verbosity", b"stats", b"version", b"bogus", b"lru_crawler", b"slabs",
                         b"lru", b"cache_memlimit", b"misbehave"])
TOKENS = st.sampled_from([b"k", b"1", b"0", b"-1", b"4294967296", b"18446744073709551616", b"x",
                          b"noreply", b"+3", b"k" * 251, b"\xff\x10", b"2", b"on", b"all"])


@st.composite
def classic_requests(draw) -> bytes:
    line = b" ".join([draw(VERBS)] + draw(st.lists(TOKENS, max_size=6)))
    if draw(st.booleans()):  # a data block, announced or not
        line += b"\r\n" + draw(st.sampled_from([b"", b"1", b"abc", b"12345"]))
    return line + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(classic_requests(), min_size=1, max_size=8))
def test_any_classic_conversation_is_answered_or_closed(requests):
    """Whatever the tokens, no request escapes as an exception; the connection either closes
    (as memcached closes) or answers a final version, after swallowing any announced block."""
    machine, session = new_machine()
    data = b"".join(requests) + b"\r\n" * 8 + b"version\r\n"
    while machine.receive(data):
        data = b""
    assert session.close_now or b"".join(session.out).endswith(b"VERSION 1.6.18\r\n")
