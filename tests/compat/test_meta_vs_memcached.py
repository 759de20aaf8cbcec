"""A fixed script of meta commands replayed against pymcd and Debian's memcached 1.6.18.

Both servers start fresh and get the same requests on two connections (the second one plays the
other client of the stale/win sequence). Replies must match byte for byte, after two
normalisations, because these values cannot be equal across two processes:

- CAS values (``c<n>``, ``cas=<n>``, the last field of a ``gets`` VALUE line) become ``#1``,
  ``#2``... numbered by first appearance, so a reply that must repeat a CAS (or show a new one)
  still has to; a CAS of 0 (nothing stored) is kept;
- times (``t<n>``, ``l<n>``, ``exp=<n>``, ``la=<n>``) become ``<time>``, since the two clocks tick
  at different moments; ``t-1`` and ``exp=-1`` (no expiry) are kept as they are.

The statistics the script moves (hits, misses, touches, deletes, counters, items) are compared
too, exactly.

Each step ends with ``mn``, so a step's reply is complete when it ends with ``MN``; this is also
how the quiet-mode steps show which replies were suppressed. Flags newer than 1.6.18 that pymcd
accepts (``E``, md's ``x``) are left out: 1.6.18 rejects them.
"""

from __future__ import annotations

import re
import time
from typing import Dict, List, Tuple

import pytest
from support import exchange, have_memcached, start_memcached, start_pymcd

LONG_OPAQUE = b"O" + b"x" * 32
MANY_FLAGS = b" ".join(b"O%d" % i for i in range(18))
# 17 distinct flags: the most a meta line may carry.
JUST_ENOUGH_FLAGS = b"s t c f k v h l u O1 P L C5 R10 D1 J1 I"

# (connection, request bytes); every step is followed by "mn".
SCRIPT = [
    # mg: misses, hits, return flags in request order, quiet
    (0, b"mg foo v\r\n"),
    (0, b"mg foo q v\r\nmg foo k Oab q\r\nmg foo k Oab\r\n"),
    (0, b"ms foo 3 F5 T0\r\nbar\r\n"),
    (0, b"mg foo v\r\nmg foo s f k c t Oop\r\nmg foo Oop t c k f s v\r\n"),
    (0, b"mg foo h l\r\nmg foo h u\r\nmg foo h\r\n"),
    (0, b"mg foo q s v\r\nmg foo P L s\r\nmg foo C999 s\r\n"),
    (0, b"mg foo T100 t\r\nmg foo t\r\n"),
    # ms: return flags, CAS, modes, quiet, invalidate
    (0, b"ms k1 2 c k O9\r\nhi\r\n"),
    (0, b"ms k1 2 C1 c\r\nho\r\nms k1 2 C999 c\r\nhu\r\nms nope 2 C1 c k\r\nhu\r\n"),
    (0, b"ms k1 1 ME\r\nx\r\nms new 1 ME\r\nx\r\n"),
    (0, b"ms k1 1 MA\r\n+\r\nms k1 1 MP\r\n-\r\nms gone 1 MA\r\nx\r\nms gone 1 MP N30\r\nx\r\n"),
    (0, b"ms k1 1 MR\r\nr\r\nms gone 1 MR\r\nr\r\nms k1 2 MS s\r\nss\r\nmg k1 v\r\n"),
    (0, b"ms k1 1 MA C999\r\nx\r\nms gone 1 MA C1\r\nx\r\n"),
    (0, b"ms q1 1 q\r\nx\r\nms q1 1 q C999\r\nx\r\nms q1 1 q MR\r\nx\r\nms nah 1 q MR\r\nx\r\n"),
    (0, b"ms bin 1 F4294967295\r\nx\r\nmg bin f\r\n"),
    # ms errors, and what becomes of the data block
    (0, b"ms\r\n"),
    (0, b"ms k1\r\n"),
    (0, b"ms k1 x\r\n"),
    (0, b"ms k1 -1\r\n"),
    (0, b"ms " + b"k" * 251 + b" 1\r\nx\r\n"),
    (0, b"ms k1 4 MX\r\nmg k\r\n"),
    (0, b"ms k1 4 M\r\nmg k\r\n"),
    (0, b"ms k1 4 MSS\r\nmg k\r\n"),
    (0, b"ms k1 4 " + LONG_OPAQUE + b"\r\nmg k\r\n"),
    (0, b"ms k1 4 " + LONG_OPAQUE + b" MX\r\nmg k\r\n"),
    (0, b"ms k1 4 z\r\nmg k\r\n"),
    (0, b"ms k1 4 S4\r\nmg k\r\n"),
    (0, b"ms k1 4 c c\r\nmg k\r\n"),
    (0, b"ms k1 4 Fx\r\nmg k\r\n"),
    (0, b"ms k1 4 Tx\r\nmg k\r\n"),
    (0, b"ms k1 4 Cx\r\nmg k\r\n"),
    (0, b"ms k1 4 Tx Jx\r\nmg k\r\n"),
    (0, b"ms k1 4 " + MANY_FLAGS + b"\r\nmg k\r\n"),
    (0, b"ms k1 1 q\r\nxyz\r\n"),
    # mg errors
    (0, b"mg\r\n"),
    (0, b"mg " + b"k" * 251 + b" v\r\n"),
    (0, b"mg foo " + MANY_FLAGS + b"\r\n"),
    (0, b"mg foo " + JUST_ENOUGH_FLAGS + b"\r\n"),
    (0, b"mg foo a\r\nmg foo v v\r\nmg foo O1 O2\r\nmg foo Nx\r\nmg foo R\r\nmg foo q Tx\r\n"),
    (0, b"mg foo " + LONG_OPAQUE + b"\r\nmg nope " + LONG_OPAQUE + b"\r\n"),
    (0, b"mg foo \xc3\xa9\r\n"),
    # base64 keys
    (0, b"ms AGJpbv9rZXk= 1 b k c\r\nx\r\n"),
    (0, b"mg AGJpbv9rZXk= b k v\r\nmg Zm9v b k v\r\nmg Zm!9v b k\r\nmg Zg=x b k\r\n"),
    (0, b"mg Zm9 b k\r\nmg Zm9v= b\r\nmg Zm9vZg b\r\n"),
    (0, b"me AGJpbv9rZXk= b\r\nme Zm9v b\r\nme Zm9 b\r\n"),
    (0, b"mg YmluYXJ5 b N30 k v\r\nme binary\r\n"),
    (0, b"md AGJpbv9rZXk= b k q\r\nmg AGJpbv9rZXk= b k\r\n"),
    # md
    (0, b"ms d1 1\r\nx\r\nms d2 1\r\nx\r\nmd d1 O1 k\r\nmd d1 O1 k\r\nmd d2 C999 k\r\n"),
    (0, b"md d2 q C999\r\nmd d2 q\r\nmd d2 q\r\nmg d2\r\n"),
    (0, b"md\r\nmd " + b"k" * 251 + b"\r\nmd d2 v v\r\nmd d2 z\r\nmd d2 Tx\r\n"),
    (0, b"md d2 " + MANY_FLAGS + b"\r\nmd d2 " + LONG_OPAQUE + b"\r\n"),
    # ma
    (0, b"ma n\r\nma n q\r\nms n 2\r\n10\r\nma n\r\nma n v\r\nma n v D10 MI\r\nma n v D2 M+\r\n"),
    (0, b"ma n v D4 MD\r\nma n v D100 M-\r\nma n v D18446744073709551615\r\nma n v c\r\n"),
    (0, b"ma v N60 J7 v t\r\nma v N60 J7 v t\r\nma w t N0\r\nma w2 N0 J3 q\r\n"),
    (0, b"ma n C1 O7 k\r\nma n T90 t O7 k\r\nma nope O7 k\r\nma nope b k\r\n"),
    (0, b"ma n q\r\nma n q v\r\nma nope q\r\nmg n v\r\n"),
    (0, b"ma foo\r\nma n MX\r\nma n Jx\r\nma n Dx\r\nma n v v\r\nma\r\n"),
    (0, b"ma n " + MANY_FLAGS + b"\r\nma n " + LONG_OPAQUE + b"\r\nma n v\r\n"),
    # mn and me
    (0, b"mn extra tokens\r\n"),
    (0, b"me nope\r\nme\r\nme " + b"k" * 251 + b"\r\nme k1\r\nme n\r\n"),
    # vivify, recache and the stale/win sequence across two clients
    (0, b"mg viv N30 s t v c\r\n"),
    (1, b"mg viv N30 s t v c\r\n"),
    (0, b"ms viv 3 T60\r\nnew\r\nmg viv N30 v\r\n"),
    (0, b"ms rc 1 T100\r\nx\r\nmg rc R30 t\r\nmg rc R200 t\r\n"),
    (1, b"mg rc R200 t\r\n"),
    (0, b"ms hot 3 T300\r\nold\r\nmg hot c\r\nmd hot I T30\r\n"),
    (0, b"mg hot v c t\r\n"),
    (1, b"mg hot v c t\r\nmg hot v\r\n"),
    (1, b"ms hot 3 C1 c\r\nnew\r\nms hot 3 C1 I c\r\nnew\r\nmg hot v t\r\n"),
    (0, b"mg hot c\r\n"),
    (0, b"ms hot 3 T300\r\nnew\r\n"),
    (1, b"mg hot v\r\nmd hot I\r\nmg hot\r\n"),
    # an invalidated item overwritten with an older CAS keeps its TTL, however far away it is
    # (an absolute exptime beyond 30 days from now), and its win token
    (0, b"ms far 1 T2000000000\r\nx\r\nmg far c\r\nmd far I\r\nmg far\r\n"),
    (0, b"ms far 1 C1 I\r\ny\r\nmg far v t\r\nme far\r\n"),
    # a hit refused for its opaque still counts as fetched (no lock), unless h/l/T/N/R lock it
    (0, b"ms fe 1\r\nx\r\nmg fe s " + LONG_OPAQUE + b"\r\nme fe\r\n"),
    (0, b"ms fl 1\r\nx\r\nmg fl h " + LONG_OPAQUE + b"\r\nme fl\r\n"),
    # append/prepend build a new item: the binary-key bit is gone
    (0, b"ms YmluYg== 1 b\r\nx\r\nms binb 1 MA\r\ny\r\nmg binb k v\r\nme binb\r\n"),
    # the same items through the classic commands
    (0, b"set cl 7 0 3\r\nabc\r\nmg cl f v s\r\nms m2 2 F9\r\nhi\r\ngets m2\r\n"),
    (0, b"ma n2 N0 J41\r\nincr n2 1\r\nmd m2\r\ndelete cl\r\nget m2 cl\r\n"),
    # a counter created in the second of a flush_all is flushed at once, yet its reply has a TTL
    (0, b"flush_all 1\r\nma fresh J1 t h T10 N0\r\nma fresh2 t N0\r\n"),
]

# Each alternative's group is the number to normalise.
CAS = re.compile(
    rb"(?m)(?<= c)(?P<value>\d+)|(?<=cas=)(?P<cas>\d+)|^VALUE \S+ \d+ \d+ (?P<gets>\d+)"
)
TIME = re.compile(rb"(?<= [tl])\d+|(?<=exp=)-?\d+|(?<=la=)\d+")


def normalise(replies: List[bytes]) -> List[bytes]:
    """Number CAS values by first appearance and blank out times (see the module docstring)."""
    numbering: Dict[bytes, bytes] = {}

    def cas(match) -> bytes:
        group = next(name for name in ("value", "cas", "gets") if match.group(name) is not None)
        value = match.group(group)
        if value != b"0":
            value = numbering.setdefault(value, b"#%d" % (len(numbering) + 1))
        whole = match.group(0)
        return whole[:match.start(group) - match.start(0)] + value

    def time(match) -> bytes:
        return match.group(0) if match.group(0) == b"-1" else b"<time>"

    return [TIME.sub(time, CAS.sub(cas, reply)) for reply in replies]


# Counters the script moves and that pymcd keeps as memcached does. Left out: cmd_set and the
# cas_* counters, which the store counts per write rather than per request (see the report of
# issue 5), and anything about memory layout beyond the items themselves.
COUNTERS = (
    "cmd_get", "get_hits", "get_misses", "cmd_touch", "touch_hits", "touch_misses",
    "delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits", "decr_misses",
    "cmd_meta", "curr_items", "total_items", "bytes",
)


def answer(sock, request: bytes, timeout: float = 2.0) -> bytes:
    """Read until every ``mn`` of ``request`` has its ``MN``: the server may write a step's
    replies in several segments, and one of them can end in ``MN`` before the last one."""
    wanted = sum(1 for line in request.split(b"\r\n") if line[:2] == b"mn")
    received = exchange(sock, request, expect_end=b"MN\r\n", timeout=timeout)
    deadline = time.time() + timeout
    while received.count(b"MN\r\n") < wanted and time.time() < deadline:
        received += exchange(sock, b"", expect_end=b"MN\r\n", timeout=timeout)
    return received


def replay(server) -> Tuple[List[bytes], Dict[str, bytes]]:
    """The replies to every step, then the counters the script left behind."""
    connections = [server.connect(), server.connect()]
    try:
        replies = [answer(connections[which], request + b"mn\r\n") for which, request in SCRIPT]
        stats = exchange(connections[0], b"stats\r\n", expect_end=b"END\r\n")
    finally:
        for sock in connections:
            sock.close()
    values = dict(line.split(b" ")[1:3] for line in stats.split(b"\r\n") if line[:5] == b"STAT ")
    return replies, {name: values[name.encode()] for name in COUNTERS}


@pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")
def test_meta_script_matches_memcached():
    with start_memcached() as memcached:
        expected, expected_counters = replay(memcached)
    with start_pymcd() as pymcd:
        actual, actual_counters = replay(pymcd)
    expected, actual = normalise(expected), normalise(actual)
    mismatches = [
        (request, want, got)
        for (_, request), want, got in zip(SCRIPT, expected, actual) if want != got
    ]
    assert not mismatches
    assert actual_counters == expected_counters
    # The script must exercise what it claims to: every step answered, CAS and times seen.
    assert all(reply.endswith(b"MN\r\n") for reply in actual)
    assert any(b"c#" in reply for reply in actual) and any(b"<time>" in reply for reply in actual)


TRACED = [
    b"ms foo 2 T0\r\nhi\r\n", b"mg foo v\r\n", b"mg nope v\r\n", b"mg nope q\r\nmn\r\n",
    b"me foo\r\n", b"me nope\r\n", b"md foo q\r\n", b"mg foo a\r\n", b"ma n N0\r\n",
    b"ma n q\r\n", b"ms k 2 MX\r\nhi\r\n", b"mg Zm9v b k v\r\n",
]


def traced_replay(server) -> List[str]:
    from test_verbose_vs_memcached import conversation_trace

    time.sleep(0.3)
    sock = server.connect()
    for request in TRACED:
        exchange(sock, request + b"mn\r\n", expect_end=b"MN\r\n")
    sock.close()
    time.sleep(0.3)
    _, err = server.stop()
    # Connection-state lines are the text machine's business and are checked elsewhere.
    return [line for line in conversation_trace(err) if "going from" not in line]


@pytest.mark.skipif(not have_memcached(), reason="Debian's memcached is not installed")
@pytest.mark.parametrize("verbosity", ["-vv", "-vvv"])
def test_meta_traces_match_memcached(verbosity):
    """Only out_string replies are traced (errors, MN, me's EN), and at -vvv every key lookup."""
    expected = traced_replay(start_memcached([verbosity]))
    assert traced_replay(start_pymcd([verbosity])) == expected
