"""Every flag of mg, ms, md, ma, mn and me, without sockets and on a clock the test moves.

Each test talks to a TextMachine over an in-memory store, so TTLs and last-access times are
exact: the clock only moves when a test says so.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machines import MachineServer


Server = MachineServer


@pytest.fixture
def server():
    return Server()


@pytest.fixture
def mc(server):
    return server.connect()


# ---------------------------------------------------------------- mg


def test_mg_miss_hit_and_value(mc):
    assert mc(b"mg k v\r\n") == b"EN\r\n"
    assert mc(b"ms k 5\r\nhello\r\n") == b"HD\r\n"
    assert mc(b"mg k\r\n") == b"HD\r\n"
    assert mc(b"mg k v\r\n") == b"VA 5\r\nhello\r\n"


def test_mg_return_flags_in_request_order(server, mc):
    mc(b"ms k 2 F77 T100\r\nhi\r\n")
    server.advance(3)
    assert mc(b"mg k t s f c k Oabc v\r\n") == b"VA 2 t97 s2 f77 c1 kk Oabc\r\nhi\r\n"
    assert mc(b"mg k Oabc k c f s t\r\n") == b"HD Oabc kk c1 f77 s2 t97\r\n"


def test_mg_ttl_minus_one_when_the_item_never_expires(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"mg k t\r\n") == b"HD t-1\r\n"


def test_mg_hit_before_and_last_access(server, mc):
    mc(b"ms k 1\r\nx\r\n")
    server.advance(5)
    # h and l read the item as it was before this request bumped it.
    assert mc(b"mg k h l\r\n") == b"HD h0 l5\r\n"
    assert mc(b"mg k h\r\n") == b"HD h1\r\n"


def test_mg_u_does_not_bump(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"mg k u\r\n") == b"HD\r\n"
    assert mc(b"mg k h\r\n") == b"HD h0\r\n"
    assert mc(b"mg k h\r\n") == b"HD h1\r\n"


def test_mg_T_updates_the_ttl_and_counts_as_a_touch(server, mc):
    mc(b"ms k 1 T10\r\nx\r\n")
    assert mc(b"mg k T100 t\r\n") == b"HD t100\r\n"
    # t before T reports the TTL the request found.
    assert mc(b"mg k t T5\r\n") == b"HD t100\r\n"
    assert mc(b"mg k t\r\n") == b"HD t5\r\n"
    assert server.store.cmd_touch == 2


def test_mg_q_hides_only_the_miss(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"mg nope q v\r\nmg k q v\r\nmn\r\n") == b"VA 1\r\nx\r\nMN\r\n"


def test_mg_miss_echoes_opaque_and_key(mc):
    assert mc(b"mg nope O1 k v s\r\n") == b"EN O1 knope\r\n"


def test_mg_vivify_on_miss_wins_once(mc):
    assert mc(b"mg k N30 s t v c\r\n") == b"VA 0 s0 t30 c1 W\r\n\r\n"
    assert mc(b"mg k N30 s t v\r\n") == b"VA 0 s0 t30 Z\r\n\r\n"
    # The winner fills the placeholder: the token is gone with the old item.
    assert mc(b"ms k 3 T60\r\nnew\r\n") == b"HD\r\n"
    assert mc(b"mg k N30 v\r\n") == b"VA 3\r\nnew\r\n"


def test_mg_recache_wins_when_the_ttl_left_is_below_R(server, mc):
    mc(b"ms k 1 T100\r\nx\r\n")
    assert mc(b"mg k R30 t\r\n") == b"HD t100\r\n"
    server.advance(80)
    assert mc(b"mg k R30 t\r\n") == b"HD t20 W\r\n"
    assert mc(b"mg k R30 t\r\n") == b"HD t20 Z\r\n"


def test_mg_R_never_wins_on_an_item_without_expiry(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"mg k R30\r\n") == b"HD\r\n"


def test_mg_opaque_too_long(mc):
    mc(b"ms k 1\r\nx\r\n")
    long_opaque = b"O" + b"x" * 32
    assert mc(b"mg k " + long_opaque + b"\r\n") == b"CLIENT_ERROR opaque token too long\r\n"
    assert mc(b"mg nope " + long_opaque + b"\r\n") == b"CLIENT_ERROR opaque token too long\r\n"
    assert mc(b"mg nope O" + b"x" * 31 + b"\r\n") == b"EN O" + b"x" * 31 + b"\r\n"


def test_mg_errors(mc):
    assert mc(b"mg\r\n") == b"ERROR\r\n"
    assert mc(b"mg " + b"k" * 251 + b" v\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert mc(b"mg k " + b"v " * 18 + b"\r\n") == b"CLIENT_ERROR options flags are too long\r\n"
    assert mc(b"mg k a\r\n") == b"CLIENT_ERROR invalid flag\r\n"
    assert mc(b"mg k v v\r\n") == b"CLIENT_ERROR duplicate flag\r\n"
    assert mc(b"mg k Tx\r\n") == b"CLIENT_ERROR bad token in command line format\r\n"
    # q never hides an error.
    assert mc(b"mg k q Rx\r\n") == b"CLIENT_ERROR bad token in command line format\r\n"


# ---------------------------------------------------------------- ms


def test_ms_return_flags_and_cas(mc):
    assert mc(b"ms k 2 c k O9\r\nhi\r\n") == b"HD c1 kk O9\r\n"
    assert mc(b"ms k 2 C1 c\r\nho\r\n") == b"HD c2\r\n"
    # A failed store returns CAS 0.
    assert mc(b"ms k 2 C1 c\r\nhu\r\n") == b"EX c0\r\n"
    assert mc(b"ms nope 2 C1 c\r\nhu\r\n") == b"NF c0\r\n"
    assert mc(b"mg k v\r\n") == b"VA 2\r\nho\r\n"


def test_ms_flags_and_ttl(server, mc):
    mc(b"ms k 1 F4294967295 T50\r\nx\r\n")
    assert mc(b"mg k f t\r\n") == b"HD f4294967295 t50\r\n"
    server.advance(51)
    assert mc(b"mg k\r\n") == b"EN\r\n"


@pytest.mark.parametrize("mode, missing, existing, value", [
    (b"E", b"HD", b"NS", b"old"),
    (b"A", b"NS", b"HD", b"old+"),
    (b"P", b"NS", b"HD", b"+old"),
    (b"R", b"NS", b"HD", b"+"),
    (b"S", b"HD", b"HD", b"+"),
])
def test_ms_modes(mc, mode, missing, existing, value):
    assert mc(b"ms nope 1 M" + mode + b"\r\n+\r\n") == missing + b"\r\n"
    mc(b"ms k 3\r\nold\r\n")
    assert mc(b"ms k 1 M" + mode + b"\r\n+\r\n") == existing + b"\r\n"
    assert mc(b"mg k v\r\n") == b"VA %d\r\n%s\r\n" % (len(value), value)


def test_ms_append_with_cas(mc):
    mc(b"ms k 1\r\na\r\n")
    assert mc(b"ms k 1 MA C9\r\nb\r\n") == b"EX\r\n"
    assert mc(b"ms k 1 MA C1\r\nb\r\n") == b"HD\r\n"
    assert mc(b"ms nope 1 MA C1\r\nb\r\n") == b"NS\r\n"
    assert mc(b"mg k v\r\n") == b"VA 2\r\nab\r\n"


def test_ms_q_hides_only_success(mc):
    assert mc(b"ms k 1 q\r\nx\r\nms k 1 q C99\r\ny\r\nmn\r\n") == b"EX\r\nMN\r\n"


def test_ms_invalidate_stores_an_older_cas_as_stale(mc):
    mc(b"ms k 1 T100\r\nx\r\n")                      # cas 1
    assert mc(b"md k I\r\n") == b"HD\r\n"            # stale, cas 2
    assert mc(b"mg k c\r\n") == b"HD c2 X W\r\n"
    # The winner's CAS (1) is older: without I it fails, with I it lands but stays stale,
    # keeping the TTL and the token already sent.
    assert mc(b"ms k 1 C1\r\ny\r\n") == b"EX\r\n"
    assert mc(b"ms k 1 C1 I c\r\ny\r\n") == b"HD c3\r\n"
    assert mc(b"mg k v t\r\n") == b"VA 1 t100 Z X\r\ny\r\n"
    assert mc(b"ms k 1 C3 I\r\nz\r\n") == b"HD\r\n"
    assert mc(b"mg k v\r\n") == b"VA 1\r\nz\r\n"


def test_explicit_cas_where_the_item_is_written(mc):
    """E (later than 1.6.18, which refuses it) sets the CAS of the item a request writes."""
    assert mc(b"ms k 1 E1000 c\r\nx\r\n") == b"HD c1000\r\n"
    assert mc(b"mg k c\r\n") == b"HD c1000\r\n"
    assert mc(b"ms k 1 MA C1000 E1001 c\r\ny\r\n") == b"HD c1001\r\n"
    assert mc(b"md k x E2000\r\nmg k c s\r\n") == b"HD\r\nHD c2000 s0\r\n"
    assert mc(b"mg viv N30 E3000 c\r\n") == b"HD c3000 W\r\n"


def test_ms_errors_swallow_the_data_block(mc):
    assert mc(b"ms\r\n") == b"ERROR\r\n"
    assert mc(b"ms k\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert mc(b"ms k x\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert mc(b"ms k -1\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert mc(b"ms " + b"k" * 251 + b" 1\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    for flags, error in [
        (b"MX", b"CLIENT_ERROR invalid mode for ms M token"),
        (b"M", b"CLIENT_ERROR incorrect length for M token"),
        (b"O" + b"x" * 33, b"CLIENT_ERROR opaque token too long"),
        (b"O" + b"x" * 33 + b" MX", b"CLIENT_ERROR invalid mode for ms M token"),
        (b"z", b"CLIENT_ERROR invalid flag"),
        (b"c c", b"CLIENT_ERROR duplicate flag"),
        (b"Fx", b"CLIENT_ERROR bad command line format"),
        (b"Tx", b"CLIENT_ERROR bad token in command line format"),
        (b"" + b"c " * 17, b"CLIENT_ERROR options flags too long"),
    ]:
        reply = mc(b"ms k 4 " + flags + b"\r\nmg k\r\nmn\r\n")
        if error.endswith(b"too long") and b"opaque" not in error:
            # Refused before the length is read: the block runs as a command line.
            assert reply == error + b"\r\nEN\r\nMN\r\n", flags
        else:
            assert reply == error + b"\r\nMN\r\n", flags


def test_ms_bad_data_chunk(mc):
    assert mc(b"ms k 1 q\r\nxyz\r\n") == b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"


def test_ms_too_large_unlinks_the_old_item(mc):
    mc(b"ms k 1\r\nx\r\n")
    big = 2 * 1024 * 1024
    reply = mc(b"ms k %d MA\r\n" % big + b"x" * big + b"\r\nmg k\r\n")
    assert reply == b"SERVER_ERROR object too large for cache\r\nEN\r\n"


# ---------------------------------------------------------------- md


def test_md_delete(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"md k O1 k\r\n") == b"HD O1 kk\r\n"
    assert mc(b"md k O1 k\r\n") == b"NF O1 kk\r\n"


def test_md_compare_cas(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"md k C9\r\n") == b"EX\r\n"
    assert mc(b"md k C1\r\n") == b"HD\r\n"


def test_md_q_hides_only_success(mc):
    mc(b"ms k 1\r\nx\r\nms j 1\r\nx\r\n")
    assert mc(b"md k q\r\nmd k q\r\nmd j q C9\r\nmn\r\n") == b"NF\r\nEX\r\nMN\r\n"


def test_md_invalidate_marks_stale_and_sets_ttl(mc):
    mc(b"ms k 1\r\nx\r\n")
    assert mc(b"md k I T30\r\n") == b"HD\r\n"
    assert mc(b"mg k t c v\r\n") == b"VA 1 t30 c2 X W\r\nx\r\n"
    assert mc(b"mg k v\r\n") == b"VA 1 Z X\r\nx\r\n"
    # A new invalidation clears the token: the next reader wins again.
    assert mc(b"md k I\r\n") == b"HD\r\n"
    assert mc(b"mg k\r\n") == b"HD X W\r\n"


def test_md_x_keeps_an_empty_item(mc):
    mc(b"ms k 5\r\nhello\r\n")
    assert mc(b"md k x\r\n") == b"HD\r\n"
    assert mc(b"mg k v s\r\n") == b"VA 0 s0\r\n\r\n"
    assert mc(b"md k x I\r\n") == b"HD\r\n"
    assert mc(b"mg k v\r\n") == b"VA 0 X W\r\n\r\n"


def test_md_errors(mc):
    assert mc(b"md\r\n") == b"ERROR\r\n"
    assert mc(b"md k v v\r\n") == b"CLIENT_ERROR invalid or duplicate flag\r\n"
    assert mc(b"md k z\r\n") == b"CLIENT_ERROR invalid or duplicate flag\r\n"
    assert mc(b"md k " + b"q " * 18 + b"\r\n") == b"CLIENT_ERROR options flags too long\r\n"
    assert mc(b"md k O" + b"x" * 40 + b"\r\n") == b"CLIENT_ERROR opaque token too long\r\n"


# ---------------------------------------------------------------- ma


def test_ma_incr_decr(mc):
    assert mc(b"ma n\r\n") == b"NF\r\n"
    mc(b"ms n 2\r\n10\r\n")
    assert mc(b"ma n\r\n") == b"HD\r\n"
    assert mc(b"ma n v\r\n") == b"VA 2\r\n12\r\n"
    assert mc(b"ma n v D10 MI\r\n") == b"VA 2\r\n22\r\n"
    assert mc(b"ma n v D2 M+\r\n") == b"VA 2\r\n24\r\n"
    assert mc(b"ma n v D4 MD\r\n") == b"VA 2\r\n20\r\n"
    assert mc(b"ma n v D100 M-\r\n") == b"VA 1\r\n0\r\n"
    assert mc(b"ma n v D18446744073709551615\r\n") == b"VA 20\r\n18446744073709551615\r\n"
    assert mc(b"ma n v\r\n") == b"VA 1\r\n0\r\n"


def test_ma_vivify_with_initial_value_and_ttl(mc):
    assert mc(b"ma n N60 J7 v t\r\n") == b"VA 1 t60\r\n7\r\n"
    assert mc(b"ma n N60 J7 v t\r\n") == b"VA 1 t60\r\n8\r\n"
    assert mc(b"ma m t N60\r\n") == b"HD t-1\r\n"


def test_ma_cas_ttl_and_echo(mc):
    mc(b"ms n 1\r\n5\r\n")
    assert mc(b"ma n c\r\n") == b"HD c2\r\n"
    assert mc(b"ma n C1 O7 k\r\n") == b"EX O7 kn\r\n"
    assert mc(b"ma n C2 T90 t c O7 k\r\n") == b"HD t90 c3 O7 kn\r\n"
    assert mc(b"ma nope O7 k\r\n") == b"NF O7 knope\r\n"


def test_ma_q_hides_only_success(mc):
    mc(b"ms n 1\r\n5\r\n")
    assert mc(b"ma n q\r\nma n q v\r\nma nope q\r\nmn\r\n") == b"NF\r\nMN\r\n"
    # Creating the counter is answered even in quiet mode.
    assert mc(b"ma new q N0\r\nma new q N0\r\nmn\r\n") == b"HD\r\nMN\r\n"
    assert mc(b"mg n v\r\n") == b"VA 1\r\n7\r\n"


def test_ma_errors(mc):
    mc(b"ms s 3\r\nabc\r\n")
    assert mc(b"ma\r\n") == b"ERROR\r\n"
    assert mc(b"ma s\r\n") == b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    assert mc(b"ma n MX\r\n") == b"CLIENT_ERROR invalid mode for ma M token\r\n"
    assert mc(b"ma n Jx\r\n") == b"CLIENT_ERROR invalid or duplicate flag\r\n"
    assert mc(b"ma n Dx\r\n") == b"CLIENT_ERROR invalid or duplicate flag\r\n"
    assert mc(b"ma n " + b"q " * 18 + b"\r\n") == b"CLIENT_ERROR options flags too long\r\n"


# ---------------------------------------------------------------- mn, me


def test_mn(mc):
    assert mc(b"mn\r\n") == b"MN\r\n"
    assert mc(b"mn ignored tokens\r\n") == b"MN\r\n"


def test_me(server, mc):
    assert mc(b"me k\r\n") == b"EN\r\n"
    mc(b"ms k 2 T100\r\nhi\r\n")
    server.advance(4)
    assert mc(b"me k\r\n") == b"ME k exp=-96 la=4 cas=1 fetch=no cls=1 size=62\r\n"
    mc(b"mg k\r\nms n 1\r\nx\r\n")
    assert mc(b"me n\r\n") == b"ME n exp=-1 la=0 cas=2 fetch=no cls=1 size=61\r\n"
    assert mc(b"me k\r\n").split()[5] == b"fetch=yes"
    assert mc(b"me\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert mc(b"me Zm9 b\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    # Refused lines are not counted, misses are.
    assert server.context.stats.cmd_meta == 4


# ---------------------------------------------------------------- across commands


def test_base64_keys_round_trip(mc):
    key = b"\x00bin\xffkey"
    encoded = base64.b64encode(key)
    assert mc(b"ms " + encoded + b" 1 b k\r\nx\r\n") == b"HD k" + encoded + b" b\r\n"
    # The item remembers its key is binary, even when fetched without b.
    assert mc(b"mg " + encoded + b" b k v\r\n") == b"VA 1 k" + encoded + b" b\r\nx\r\n"
    assert mc(b"me " + encoded + b" b\r\n").startswith(b"ME " + encoded + b" exp=-1")
    assert mc(b"ma " + encoded + b" b k\r\n").startswith(b"CLIENT_ERROR cannot")
    assert mc(b"md " + encoded + b" b k q\r\nmg " + encoded + b" b k\r\n") == \
        b"EN k" + encoded + b" b\r\n"
    assert mc(b"mg Zm9 b\r\n") == b"CLIENT_ERROR error decoding key\r\n"


def test_items_cross_protocols(mc):
    assert mc(b"set c 5 0 3\r\nabc\r\n") == b"STORED\r\n"
    assert mc(b"mg c f v c\r\n") == b"VA 3 f5 c1\r\nabc\r\n"
    assert mc(b"ms m 2 F9\r\nhi\r\n") == b"HD\r\n"
    assert mc(b"gets m\r\n") == b"VALUE m 9 2 2\r\nhi\r\nEND\r\n"
    assert mc(b"cas m 1 0 2 2\r\nho\r\n") == b"STORED\r\n"
    assert mc(b"ma n N0 J41\r\nincr n 1\r\n") == b"HD\r\n42\r\n"
    assert mc(b"md m\r\ndelete c\r\nget m c\r\n") == b"HD\r\nDELETED\r\nEND\r\n"


def test_stale_win_sequence_across_connections(server):
    writer, first, second = server.connect(), server.connect(), server.connect()
    writer(b"ms k 3 T300\r\nold\r\n")
    assert writer(b"md k I T30\r\n") == b"HD\r\n"
    # One reader wins the recache, every other sees the stale value and that a token is out.
    assert first(b"mg k v c\r\n") == b"VA 3 c2 X W\r\nold\r\n"
    assert second(b"mg k v c\r\n") == b"VA 3 c2 Z X\r\nold\r\n"
    assert second(b"mg k v\r\n") == b"VA 3 Z X\r\nold\r\n"
    # The winner refills with a plain set: fresh again, no flags.
    assert first(b"ms k 3 T300\r\nnew\r\n") == b"HD\r\n"
    assert second(b"mg k v\r\n") == b"VA 3\r\nnew\r\n"


# ---------------------------------------------------------------- robustness

FLAG_TOKENS = st.sampled_from([
    b"b", b"c", b"f", b"h", b"k", b"l", b"q", b"s", b"t", b"u", b"v", b"I", b"x", b"P", b"L",
    b"O", b"Oab", b"O" + b"o" * 40, b"N0", b"N30", b"N-1", b"T0", b"T5", b"T-1", b"R10", b"R",
    b"F0", b"F7", b"Fx", b"C1", b"C2", b"Cx", b"E9", b"MA", b"ME", b"MP", b"MR", b"MS", b"MI",
    b"MD", b"M+", b"M-", b"MX", b"M", b"J5", b"D2", b"Dx", b"zz", b"\xff",
])
KEYS = st.sampled_from([b"a", b"b", b"Zm9v", b"Zm9", b"k" * 251])


@st.composite
def meta_requests(draw) -> bytes:
    verb = draw(st.sampled_from([b"mg", b"ms", b"md", b"ma", b"me", b"mn"]))
    flags = draw(st.lists(FLAG_TOKENS, max_size=6))
    if verb == b"ms":
        value = draw(st.sampled_from([b"", b"1", b"xyz"]))
        return b" ".join([verb, draw(KEYS), b"%d" % len(value)] + flags) + b"\r\n" + value + b"\r\n"
    return b" ".join([verb, draw(KEYS)] + flags) + b"\r\n"


@settings(max_examples=150, deadline=None)
@given(st.lists(meta_requests(), min_size=1, max_size=8))
def test_any_meta_conversation_is_answered(requests):
    """Whatever the flags, no request escapes as an exception, and the closing mn is answered."""
    mc = Server().connect()
    reply = mc(b"".join(requests) + b"mn\r\n")
    assert reply.endswith(b"MN\r\n")
