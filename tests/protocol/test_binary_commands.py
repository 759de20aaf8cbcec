"""Every binary opcode without sockets: success, failure and quiet paths, malformed packets, SASL.

Requests are packed with pymcd's own client-side helpers and fed to a BinaryMachine over a real
store on a test clock; replies are parsed back into packets. The exact bytes memcached sends were
checked side by side (tests/compat/test_binary_vs_memcached.py); here each rule has its own test.
"""

from __future__ import annotations

import hmac
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymcd.protocol.binary import (
    BinaryRequest,
    Opcode,
    Status,
    pack_request,
    parse_responses,
)
from machines import MachineConnection, MachineServer

class Server(MachineServer):
    """``connect`` opens a binary connection (``text`` still answers over the text protocol)."""

    def connect(self, binary: bool = True) -> "Connection":
        return Connection(self.context, binary)


class Connection(MachineConnection):
    def send(self, *requests: BinaryRequest):
        packets, rest = parse_responses(self.raw(b"".join(map(pack_request, requests))))
        assert rest == b""
        return packets

    def one(self, request: BinaryRequest):
        packets = self.send(request)
        assert len(packets) == 1, packets
        return packets[0]

    @property
    def closing(self) -> bool:
        return self.session.close_after_write or self.session.close_now


def req(opcode: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", **kwargs):
    return BinaryRequest(opcode, extras, key, value, **kwargs)


def store_extras(flags: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">II", flags, exptime)


def delta_extras(delta: int, initial: int = 0, exptime: int = 0) -> bytes:
    return struct.pack(">QQI", delta, initial, exptime)


def set_req(key: bytes, value: bytes, flags: int = 0, exptime: int = 0, opcode=Opcode.SET, **kw):
    return req(opcode, key, store_extras(flags, exptime), value, **kw)


@pytest.fixture
def server():
    return Server()


@pytest.fixture
def conn(server):
    return server.connect()


# ---------------------------------------------------------------- retrieval


def test_get_hit_carries_flags_value_cas_and_opaque(conn):
    stored = conn.one(set_req(b"k", b"hello", flags=0xDEADBEEF))
    assert stored.status == Status.SUCCESS and stored.cas > 0 and stored.value == b""
    hit = conn.one(req(Opcode.GET, b"k", opaque=77))
    assert (hit.opcode, hit.status, hit.opaque, hit.cas) == (Opcode.GET, 0, 77, stored.cas)
    assert hit.extras == struct.pack(">I", 0xDEADBEEF) and hit.key == b"" and hit.value == b"hello"


def test_get_miss_says_not_found_and_getk_miss_echoes_the_key(conn):
    miss = conn.one(req(Opcode.GET, b"nope"))
    assert (miss.status, miss.key, miss.value) == (Status.KEY_ENOENT, b"", b"Not found")
    kmiss = conn.one(req(Opcode.GETK, b"nope"))
    assert (kmiss.status, kmiss.key, kmiss.value) == (Status.KEY_ENOENT, b"nope", b"")


def test_getk_hit_echoes_the_key(conn):
    conn.send(set_req(b"k", b"v"))
    hit = conn.one(req(Opcode.GETK, b"k"))
    assert (hit.key, hit.value) == (b"k", b"v")


def test_quiet_gets_answer_hits_only_and_noop_closes_the_pipeline(conn):
    conn.send(set_req(b"a", b"1"), set_req(b"c", b"3"))
    packets = conn.send(req(Opcode.GETKQ, b"a", opaque=1), req(Opcode.GETKQ, b"b", opaque=2),
                        req(Opcode.GETQ, b"c", opaque=3), req(Opcode.GETQ, b"d", opaque=4),
                        req(Opcode.NOOP, opaque=5))
    assert [(p.opcode, p.opaque, p.key, p.value) for p in packets] == [
        (Opcode.GETKQ, 1, b"a", b"1"), (Opcode.GETQ, 3, b"", b"3"), (Opcode.NOOP, 5, b"", b"")]


def test_touch_answers_flags_and_cas_without_the_value_and_sets_the_ttl(server, conn):
    conn.send(set_req(b"k", b"v", flags=3))
    touched = conn.one(req(Opcode.TOUCH, b"k", struct.pack(">I", 10)))
    assert (touched.status, touched.extras, touched.value) == (0, struct.pack(">I", 3), b"")
    assert conn.one(req(Opcode.TOUCH, b"zz", struct.pack(">I", 10))).value == b"Not found"
    server.advance(11)
    assert conn.one(req(Opcode.GET, b"k")).status == Status.KEY_ENOENT


def test_gat_variants(server, conn):
    conn.send(set_req(b"k", b"v", exptime=5))
    ttl = struct.pack(">I", 100)
    assert conn.one(req(Opcode.GAT, b"k", ttl)).value == b"v"
    gatk = conn.one(req(Opcode.GATK, b"k", ttl))
    assert (gatk.key, gatk.value) == (b"k", b"v")
    assert conn.one(req(Opcode.GATK, b"zz", ttl)).key == b"zz"
    quiet = conn.send(req(Opcode.GATQ, b"k", ttl), req(Opcode.GATQ, b"zz", ttl),
                      req(Opcode.GATKQ, b"zz", ttl), req(Opcode.GATKQ, b"k", ttl),
                      req(Opcode.NOOP))
    assert [p.opcode for p in quiet] == [Opcode.GATQ, Opcode.GATKQ, Opcode.NOOP]
    server.advance(50)  # past the original 5 s: the touches moved the expiry to 100 s
    assert conn.one(req(Opcode.GET, b"k")).value == b"v"
    stats = dict(server.context.general_stats())
    assert stats["touch_hits"] == 4 and stats["touch_misses"] == 3


# ---------------------------------------------------------------- storage


def test_set_add_replace_and_their_failures(conn):
    assert conn.one(set_req(b"k", b"1", opcode=Opcode.ADD)).status == 0
    exists = conn.one(set_req(b"k", b"2", opcode=Opcode.ADD))
    assert (exists.status, exists.value) == (Status.KEY_EEXISTS, b"Data exists for key.")
    assert conn.one(set_req(b"k", b"3", opcode=Opcode.REPLACE)).status == 0
    missing = conn.one(set_req(b"zz", b"3", opcode=Opcode.REPLACE))
    assert (missing.status, missing.value) == (Status.KEY_ENOENT, b"Not found")
    assert conn.one(req(Opcode.GET, b"k")).value == b"3"


def test_quiet_storage_is_silent_on_success_but_not_on_failure(conn):
    packets = conn.send(set_req(b"k", b"1", opcode=Opcode.SETQ, opaque=1),
                        set_req(b"k", b"2", opcode=Opcode.ADDQ, opaque=2),
                        set_req(b"zz", b"2", opcode=Opcode.REPLACEQ, opaque=3),
                        req(Opcode.APPENDQ, b"k", value=b"+", opaque=4),
                        req(Opcode.PREPENDQ, b"zz", value=b"-", opaque=5),
                        req(Opcode.NOOP, opaque=6))
    assert [(p.opcode, p.status, p.opaque) for p in packets] == [
        (Opcode.ADDQ, Status.KEY_EEXISTS, 2), (Opcode.REPLACEQ, Status.KEY_ENOENT, 3),
        (Opcode.PREPENDQ, Status.NOT_STORED, 5), (Opcode.NOOP, 0, 6)]
    assert conn.one(req(Opcode.GET, b"k")).value == b"1+"


def test_append_prepend_keep_flags_and_refuse_missing_keys(conn):
    conn.send(set_req(b"k", b"mid", flags=9))
    assert conn.one(req(Opcode.APPEND, b"k", value=b">")).status == 0
    assert conn.one(req(Opcode.PREPEND, b"k", value=b"<")).status == 0
    hit = conn.one(req(Opcode.GET, b"k"))
    assert (hit.extras, hit.value) == (struct.pack(">I", 9), b"<mid>")
    refused = conn.one(req(Opcode.APPEND, b"zz", value=b"x"))
    assert (refused.status, refused.value) == (Status.NOT_STORED, b"Not stored.")


def test_request_cas_makes_storage_compare_and_swap(conn):
    cas = conn.one(set_req(b"k", b"1")).cas
    stale = conn.one(set_req(b"k", b"2", cas=cas + 100))
    assert (stale.status, stale.value) == (Status.KEY_EEXISTS, b"Data exists for key.")
    swapped = conn.one(set_req(b"k", b"3", cas=cas))
    assert swapped.status == 0 and swapped.cas != cas
    assert conn.one(set_req(b"nokey", b"3", cas=5)).status == Status.KEY_ENOENT
    assert conn.one(req(Opcode.APPEND, b"k", value=b"!", cas=cas)).status == Status.KEY_EEXISTS
    assert conn.one(req(Opcode.GET, b"k")).value == b"3"


def test_too_large_value_is_refused_unread_and_set_drops_the_old_item(server, conn):
    conn.send(set_req(b"big", b"old"))
    value = b"x" * (server.settings.store.item_size_max + 1)
    packets = conn.send(set_req(b"big", value), req(Opcode.APPENDQ, b"k", value=value),
                        req(Opcode.NOOP))
    assert [(p.status, p.value) for p in packets] == [
        (Status.E2BIG, b"Too large."), (Status.E2BIG, b"Too large."), (0, b"")]
    assert conn.one(req(Opcode.GET, b"big")).status == Status.KEY_ENOENT


def test_binary_items_read_back_identically_over_text_and_meta(server, conn):
    value = bytes(range(256)) + b"\r\nEND\r\n"
    cas = conn.one(set_req(b"bin", value, flags=42)).cas
    assert server.text(b"gets bin\r\n") == b"VALUE bin 42 %d %d\r\n%s\r\nEND\r\n" % (
        len(value), cas, value)
    assert server.text(b"mg bin f c v\r\n") == b"VA %d f42 c%d\r\n%s\r\n" % (len(value), cas, value)
    conn.send(set_req(b"ttl", b"v", exptime=100))
    server.advance(40)
    assert server.text(b"mg ttl t v\r\n") == b"VA 1 t60\r\nv\r\n"
    server.text(b"set t 7 0 2\r\nhi\r\n")
    hit = conn.one(req(Opcode.GET, b"t"))
    assert (hit.extras, hit.value) == (struct.pack(">I", 7), b"hi")


# ---------------------------------------------------------------- counters


def test_incr_decr_create_with_initial_value_unless_told_not_to(server, conn):
    created = conn.one(req(Opcode.INCREMENT, b"n", delta_extras(5, 10)))
    assert (created.status, created.value) == (0, struct.pack(">Q", 10)) and created.cas
    bumped = conn.one(req(Opcode.INCREMENT, b"n", delta_extras(5, 10)))
    assert bumped.value == struct.pack(">Q", 15) and bumped.cas > created.cas
    assert conn.one(req(Opcode.DECREMENT, b"n", delta_extras(100))).value == struct.pack(">Q", 0)
    refused = conn.one(req(Opcode.DECREMENT, b"m", delta_extras(1, 5, 0xFFFFFFFF)))
    assert (refused.status, refused.value) == (Status.KEY_ENOENT, b"Not found")
    assert server.text(b"get n\r\n") == b"VALUE n 0 2\r\n0 \r\nEND\r\n"
    stats = dict(server.context.general_stats())
    assert (stats["incr_hits"], stats["decr_hits"], stats["decr_misses"]) == (1, 1, 1)


def test_incr_wraps_at_64_bits_and_refuses_non_numbers(conn):
    conn.send(set_req(b"n", b"18446744073709551615"), set_req(b"s", b"abc"))
    assert conn.one(req(Opcode.INCREMENT, b"n", delta_extras(2))).value == struct.pack(">Q", 1)
    bad = conn.one(req(Opcode.INCREMENT, b"s", delta_extras(1)))
    assert (bad.status, bad.value) == (
        Status.DELTA_BADVAL, b"Non-numeric server-side value for incr or decr")


def test_counter_cas_and_quiet_counters(conn):
    cas = conn.one(set_req(b"n", b"5")).cas
    assert conn.one(req(Opcode.INCREMENT, b"n", delta_extras(1), cas=cas + 9)).status == \
        Status.KEY_EEXISTS
    packets = conn.send(req(Opcode.INCREMENTQ, b"n", delta_extras(1)),
                        req(Opcode.DECREMENTQ, b"zz", delta_extras(1, 0, 0xFFFFFFFF)),
                        req(Opcode.NOOP))
    assert [(p.opcode, p.status) for p in packets] == [
        (Opcode.DECREMENTQ, Status.KEY_ENOENT), (Opcode.NOOP, 0)]
    assert conn.one(req(Opcode.GET, b"n")).value == b"6"


def test_created_counter_takes_the_request_expiration(server, conn):
    conn.send(req(Opcode.INCREMENT, b"n", delta_extras(1, 7, 10)))
    server.advance(11)
    assert conn.one(req(Opcode.GET, b"n")).status == Status.KEY_ENOENT


# ---------------------------------------------------------------- removal and maintenance


def test_delete_with_and_without_cas(conn):
    cas = conn.one(set_req(b"k", b"v")).cas
    assert conn.one(req(Opcode.DELETE, b"k", cas=cas + 1)).status == Status.KEY_EEXISTS
    deleted = conn.one(req(Opcode.DELETE, b"k", cas=cas))
    assert (deleted.status, deleted.cas, deleted.value) == (0, 0, b"")
    assert conn.one(req(Opcode.DELETE, b"k")).value == b"Not found"
    conn.send(set_req(b"q", b"v"))
    packets = conn.send(req(Opcode.DELETEQ, b"q"), req(Opcode.DELETEQ, b"q"), req(Opcode.NOOP))
    assert [(p.opcode, p.status) for p in packets] == [
        (Opcode.DELETEQ, Status.KEY_ENOENT), (Opcode.NOOP, 0)]


def test_flush_now_and_with_delay(server, conn):
    conn.send(set_req(b"k", b"v"))
    assert conn.send(req(Opcode.FLUSHQ)) == []
    assert conn.one(req(Opcode.GET, b"k")).status == Status.KEY_ENOENT
    conn.send(set_req(b"k", b"v"))
    assert conn.one(req(Opcode.FLUSH, extras=struct.pack(">I", 5))).status == 0
    assert conn.one(req(Opcode.GET, b"k")).status == 0
    server.advance(6)
    assert conn.one(req(Opcode.GET, b"k")).status == Status.KEY_ENOENT
    assert dict(server.context.general_stats())["cmd_flush"] == 2


def test_flush_disabled_is_an_auth_failure():
    conn = Server(flush_enabled=False).connect()
    refused = conn.one(req(Opcode.FLUSH))
    assert (refused.status, refused.value) == (Status.AUTH_ERROR, b"Auth failure.")


def test_version_noop_and_verbosity_which_memcached_does_not_serve(conn):
    assert conn.one(req(Opcode.VERSION)).value == b"1.6.18"
    assert conn.one(req(Opcode.NOOP)).value == b""
    unknown = conn.one(req(Opcode.VERBOSITY, extras=struct.pack(">I", 1)))
    assert (unknown.status, unknown.value) == (Status.UNKNOWN_COMMAND, b"Unknown command")


def test_quit_answers_then_closes_and_quitq_closes_silently(server):
    loud = server.connect()
    assert [p.opcode for p in loud.send(req(Opcode.QUIT), req(Opcode.NOOP))] == [Opcode.QUIT]
    assert loud.closing
    quiet = server.connect()
    assert quiet.send(req(Opcode.QUITQ), req(Opcode.NOOP)) == [] and quiet.closing


# ---------------------------------------------------------------- statistics


def stat_pairs(packets):
    assert packets[-1].key == b"" and packets[-1].value == b""
    return {p.key.decode(): p.value.decode() for p in packets[:-1]}


def test_stat_sections_match_the_text_protocol(server, conn):
    conn.send(set_req(b"k", b"v"))
    general = stat_pairs(conn.send(req(Opcode.STAT, opaque=9)))
    assert general["version"] == "1.6.18" and general["cmd_set"] == "1"
    assert general["curr_items"] == "1"
    for section in (b"settings", b"items", b"slabs", b"sizes"):
        text = server.text(b"stats " + section + b"\r\n").decode()
        expected = dict(line.split(" ", 2)[1:] for line in text.splitlines() if line != "END")
        assert stat_pairs(conn.send(req(Opcode.STAT, section))) == expected


def test_stat_reset_detail_and_unknown_sections(server, conn):
    conn.send(req(Opcode.GET, b"miss"))
    assert stat_pairs(conn.send(req(Opcode.STAT, b"reset"))) == {}
    assert dict(server.context.general_stats())["get_misses"] == 0
    assert stat_pairs(conn.send(req(Opcode.STAT, b"detail on"))) == {}
    assert server.settings.detail_enabled
    assert stat_pairs(conn.send(req(Opcode.STAT, b"detail dump"))) == {"detailed": "END\r\n"}
    for bad in (b"detail xx", b"conns", b"cachedump 1 1", b"bogus"):
        assert conn.one(req(Opcode.STAT, bad)).value == b"Not found"


# ---------------------------------------------------------------- malformed packets


@pytest.mark.parametrize("request_", [
    req(Opcode.GET, b"a", extras=b"1234"),
    req(Opcode.GET),
    req(Opcode.GET, b"a", value=b"zz"),
    req(Opcode.SET, b"a", value=b"v"),
    req(Opcode.SET, extras=store_extras(), value=b"v"),
    req(Opcode.NOOP, value=b"xx"),
    req(Opcode.DELETE, b"a", extras=b"1234"),
    req(Opcode.FLUSH, b"a"),
    req(Opcode.FLUSH, extras=b"123"),
    req(Opcode.INCREMENT, b"a"),
    req(Opcode.INCREMENT, b"a", delta_extras(1), value=b"x"),
    req(Opcode.APPEND, b"a", extras=b"1234", value=b"x"),
    req(Opcode.TOUCH, b"a"),
    req(Opcode.STAT, extras=b"1234"),
    req(Opcode.VERSION, b"a"),
    req(Opcode.QUIT, value=b"x"),
    req(Opcode.GET, b"k" * 251),
], ids=repr)
def test_a_request_of_the_wrong_shape_gets_invalid_arguments_and_a_close(server, request_):
    conn = server.connect()
    packets = conn.send(request_, req(Opcode.NOOP))
    assert [(p.opcode, p.status, p.value) for p in packets] == [
        (request_.opcode, Status.EINVAL, b"Invalid arguments")]
    assert conn.closing


def test_lengths_that_do_not_add_up_are_an_unknown_command_and_a_close(conn):
    broken = req(Opcode.GET, b"abc", bodylen=2)
    data = conn.raw(pack_request(broken)[:24] + b"ab" + pack_request(req(Opcode.NOOP)))
    packets, _ = parse_responses(data)
    assert [(p.status, p.value) for p in packets] == [(Status.UNKNOWN_COMMAND, b"Unknown command")]
    assert conn.closing


def test_unknown_opcode_swallows_the_announced_body_after_its_key(conn):
    # memcached discards bodylen bytes after the key: here the value and 1 byte of the NOOP.
    packets = conn.send(req(0x30, b"k", value=b"junk"), req(Opcode.NOOP))
    assert [(p.opcode, p.status) for p in packets] == [(0x30, Status.UNKNOWN_COMMAND)]
    assert not conn.closing


def test_bad_magic_closes_dropping_replies_not_yet_flushed(conn):
    bad = b"\x81" + pack_request(req(Opcode.NOOP))[1:]
    packets, _ = parse_responses(conn.raw(pack_request(req(Opcode.VERSION)) + bad))
    assert packets == [] and conn.closing
    conn2 = Connection(conn.session.server, binary=True)
    packets, _ = parse_responses(conn2.raw(pack_request(req(Opcode.NOOP)) + bad))
    assert [p.opcode for p in packets] == [Opcode.NOOP] and conn2.closing


random_packet = st.builds(
    lambda opcode, key, extras, value, keylen, extlen, bodylen: struct.pack(
        ">BBHBBHIIQ", 0x80, opcode, len(key) if keylen is None else keylen,
        len(extras) if extlen is None else extlen, 0, 0,
        len(key) + len(extras) + len(value) if bodylen is None else bodylen, 0, 0)
    + extras + key + value,
    st.integers(0, 0x30), st.binary(max_size=12), st.binary(max_size=24), st.binary(max_size=12),
    st.none() | st.integers(0, 300), st.none() | st.integers(0, 30),
    st.none() | st.integers(0, 400),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(random_packet | st.binary(max_size=40), min_size=1, max_size=6),
       st.booleans())
def test_any_bytes_are_answered_or_closed_never_raised(chunks, sasl):
    conn = Server(sasl=sasl, binding_protocol="binary").connect()
    data = b"\x80" + b"".join(chunks)[1:]
    packets, rest = parse_responses(conn.raw(data))
    assert rest == b""
    assert all(packet.status in vars(Status).values() for packet in packets)


CONVERSATION = [
    set_req(b"a", b"x" * 3000, flags=1),
    req(Opcode.GETKQ, b"a", opaque=1),
    req(Opcode.GETKQ, b"b", opaque=2),
    req(Opcode.APPENDQ, b"a", value=b"!"),
    req(Opcode.INCREMENT, b"n", delta_extras(3, 1)),
    req(0x30, value=b"junk"),
    req(Opcode.STAT, b"sizes"),
    req(Opcode.GET, b"a"),
    req(Opcode.NOOP),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3400), max_size=6))
def test_replies_do_not_depend_on_read_boundaries(cuts):
    data = b"".join(map(pack_request, CONVERSATION))
    whole = Server().connect().raw(data)
    conn = Server().connect()
    pieces, last = [], 0
    for cut in sorted(cuts):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    assert b"".join(conn.raw(piece) for piece in pieces) == whole
    assert len(parse_responses(whole)[0]) == 8


def test_request_budget_yields_and_resumes(server):
    server.settings.reqs_per_event = 3
    conn = server.connect()
    data = b"".join(pack_request(req(Opcode.NOOP, opaque=i)) for i in range(10))
    assert conn.machine.receive(data) is True
    while conn.machine.receive(b""):
        pass
    packets, _ = parse_responses(b"".join(conn.session.out))
    assert [p.opaque for p in packets] == list(range(10))


# ---------------------------------------------------------------- SASL


@pytest.fixture
def sasl_server(tmp_path):
    passwords = tmp_path / "pwdb"
    passwords.write_bytes(b"alice:secret\nbob:hunter2:extra\n")
    return Server(sasl=True, sasl_password_file=str(passwords), binding_protocol="binary")


def plain(user: bytes, password: bytes, authzid: bytes = b""):
    return req(Opcode.SASL_AUTH, b"PLAIN", value=authzid + b"\0" + user + b"\0" + password)


def test_sasl_mechanisms_are_listed(sasl_server):
    listed = sasl_server.connect().one(req(Opcode.SASL_LIST_MECHS))
    assert set(listed.value.split(b" ")) >= {b"PLAIN", b"CRAM-MD5"}


def test_before_authentication_only_version_and_sasl_are_served(sasl_server):
    conn = sasl_server.connect()
    assert conn.one(req(Opcode.VERSION)).value == b"1.6.18"
    for opcode in (Opcode.NOOP, Opcode.GET, Opcode.STAT, 0x30):
        conn = sasl_server.connect()
        key = b"k" if opcode == Opcode.GET else b""
        packets = conn.send(req(opcode, key), req(Opcode.VERSION))
        assert [(p.status, p.value) for p in packets] == [(Status.AUTH_ERROR, b"Auth failure.")]
        assert conn.closing


def test_plain_authenticates_and_counts(sasl_server):
    conn = sasl_server.connect()
    ok = conn.one(plain(b"alice", b"secret"))
    assert (ok.status, ok.value) == (0, b"Authenticated")
    assert conn.one(set_req(b"k", b"v")).status == 0
    assert conn.session.user == "alice"
    assert sasl_server.connect().one(plain(b"bob", b"hunter2")).status == 0
    stats = dict(sasl_server.context.general_stats())
    assert (stats["auth_cmds"], stats["auth_errors"]) == (2, 0)


@pytest.mark.parametrize("request_", [
    plain(b"alice", b"wrong"),
    plain(b"alice", b"secre"),
    plain(b"alice", b"secret", authzid=b"bob"),
    plain(b"carol", b"secret"),
    plain(b"bob", b"hunter2:extra"),
    req(Opcode.SASL_AUTH, b"PLAIN", value=b"no separators"),
    req(Opcode.SASL_AUTH, b"SCRAM-SHA-1", value=b"x"),
    req(Opcode.SASL_STEP, b"PLAIN", value=b"\0alice\0secret"),
], ids=repr)
def test_failed_authentication_answers_auth_failure_and_keeps_the_connection(sasl_server,
                                                                             request_):
    conn = sasl_server.connect()
    failed = conn.one(request_)
    assert (failed.status, failed.value) == (Status.AUTH_ERROR, b"Auth failure.")
    assert not conn.closing and not conn.session.authenticated
    stats = dict(sasl_server.context.general_stats())
    assert (stats["auth_cmds"], stats["auth_errors"]) == (1, 1)
    assert conn.one(req(Opcode.GET, b"k")).status == Status.AUTH_ERROR and conn.closing


def test_cram_md5_challenge_and_response(sasl_server):
    conn = sasl_server.connect()
    challenge = conn.one(req(Opcode.SASL_AUTH, b"CRAM-MD5"))
    assert challenge.status == Status.AUTH_CONTINUE and challenge.value.startswith(b"<")
    digest = hmac.new(b"secret", challenge.value, "md5").hexdigest().encode()
    done = conn.one(req(Opcode.SASL_STEP, b"CRAM-MD5", value=b"alice " + digest))
    assert (done.status, done.value) == (0, b"Authenticated")
    assert conn.one(req(Opcode.NOOP)).status == 0
    again = sasl_server.connect()
    challenge = again.one(req(Opcode.SASL_AUTH, b"CRAM-MD5"))
    wrong = hmac.new(b"guess", challenge.value, "md5").hexdigest().encode()
    assert again.one(req(Opcode.SASL_STEP, b"CRAM-MD5", value=b"alice " + wrong)).status == \
        Status.AUTH_ERROR


def test_any_sasl_request_drops_the_authentication_first(sasl_server):
    conn = sasl_server.connect()
    conn.send(plain(b"alice", b"secret"))
    conn.send(req(Opcode.SASL_LIST_MECHS))
    assert conn.one(req(Opcode.NOOP)).status == Status.AUTH_ERROR


def test_password_file_is_read_on_every_attempt(sasl_server):
    path = sasl_server.settings.sasl_password_file
    with open(path, "ab") as passwords:
        passwords.write(b"carol:new\n")
    assert sasl_server.connect().one(plain(b"carol", b"new")).status == 0


def test_password_file_from_memcached_environment_variable(tmp_path, monkeypatch):
    passwords = tmp_path / "pwdb"
    passwords.write_bytes(b"dave:pw\r\n")
    monkeypatch.setenv("MEMCACHED_SASL_PWDB", str(passwords))
    conn = Server(sasl=True, binding_protocol="binary").connect()
    assert conn.one(plain(b"dave", b"pw")).status == 0


def test_long_mechanism_name_is_invalid_and_its_data_swallowed(sasl_server):
    conn = sasl_server.connect()
    packets = conn.send(req(Opcode.SASL_AUTH, b"M" * 33, value=b"data"), req(Opcode.VERSION))
    assert [(p.status, p.value) for p in packets] == [
        (Status.EINVAL, b"Invalid arguments"), (0, b"1.6.18")]


def test_sasl_opcodes_are_unknown_without_sasl(conn):
    packets = conn.send(req(Opcode.SASL_LIST_MECHS), plain(b"alice", b"secret"),
                        req(Opcode.NOOP))
    assert [(p.opcode, p.status) for p in packets] == [
        (Opcode.SASL_LIST_MECHS, Status.UNKNOWN_COMMAND),
        (Opcode.SASL_AUTH, Status.UNKNOWN_COMMAND), (Opcode.NOOP, 0)]
