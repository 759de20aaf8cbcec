"""The classic text protocol over a real socket, byte for byte."""

from __future__ import annotations

import socket
import time

from support import exchange


def ask(conn: socket.socket, request: bytes, end: bytes = None) -> bytes:
    return exchange(conn, request, end)


def test_set_get_gets(conn):
    assert ask(conn, b"set k1 5 0 3\r\nabc\r\n", b"\r\n") == b"STORED\r\n"
    assert ask(conn, b"get k1\r\n", b"END\r\n") == b"VALUE k1 5 3\r\nabc\r\nEND\r\n"
    reply = ask(conn, b"gets k1\r\n", b"END\r\n")
    assert reply.startswith(b"VALUE k1 5 3 ") and reply.endswith(b"\r\nabc\r\nEND\r\n")


def test_multiget_skips_misses(conn):
    ask(conn, b"set ma 0 0 1\r\na\r\nset mb 0 0 1\r\nb\r\n", b"STORED\r\nSTORED\r\n")
    assert ask(conn, b"get ma nope mb\r\n", b"END\r\n") == (
        b"VALUE ma 0 1\r\na\r\nVALUE mb 0 1\r\nb\r\nEND\r\n"
    )


STORAGE_STEPS = [
    (b"add ak 0 0 1\r\nx\r\n", b"STORED\r\n"),
    (b"add ak 0 0 1\r\ny\r\n", b"NOT_STORED\r\n"),
    (b"replace nokey 0 0 1\r\ny\r\n", b"NOT_STORED\r\n"),
    (b"replace ak 0 0 1\r\nz\r\n", b"STORED\r\n"),
    (b"append ak 0 0 2\r\n12\r\n", b"STORED\r\n"),
    (b"prepend ak 0 0 2\r\n--\r\n", b"STORED\r\n"),
    (b"append nokey 0 0 2\r\n12\r\n", b"NOT_STORED\r\n"),
    (b"get ak\r\n", b"VALUE ak 0 5\r\n--z12\r\nEND\r\n"),
]


def test_storage_modes_in_order(pymcd_server):
    # One test, not one per step: pytest-xdist would run parametrized steps in different
    # workers, each with its own server. A connection per step: state lives in the server.
    for request_line, reply in STORAGE_STEPS:
        with pymcd_server.connect() as sock:
            assert ask(sock, request_line, b"\r\n") == reply, request_line


def test_cas_flow(conn):
    ask(conn, b"set ck 0 0 1\r\na\r\n", b"\r\n")
    cas = int(ask(conn, b"gets ck\r\n", b"END\r\n").split(b"\r\n")[0].split()[4])
    assert ask(conn, b"cas ck 0 0 1 %d\r\nb\r\n" % (cas + 1000), b"\r\n") == b"EXISTS\r\n"
    assert ask(conn, b"cas ck 0 0 1 %d\r\nb\r\n" % cas, b"\r\n") == b"STORED\r\n"
    assert ask(conn, b"cas nock 0 0 1 1\r\nb\r\n", b"\r\n") == b"NOT_FOUND\r\n"


def test_incr_decr(conn):
    ask(conn, b"set n 0 0 2\r\n10\r\n", b"\r\n")
    assert ask(conn, b"incr n 5\r\n", b"\r\n") == b"15\r\n"
    assert ask(conn, b"decr n 100\r\n", b"\r\n") == b"0\r\n"
    ask(conn, b"set n 0 0 20\r\n18446744073709551615\r\n", b"\r\n")
    assert ask(conn, b"incr n 2\r\n", b"\r\n") == b"1\r\n"
    ask(conn, b"set n 0 0 2\r\n10\r\n", b"\r\n")
    assert ask(conn, b"decr n 1\r\n", b"\r\n") == b"9\r\n"
    # memcached rewrites in place, padding with a space: the length does not shrink.
    assert ask(conn, b"get n\r\n", b"END\r\n") == b"VALUE n 0 2\r\n9 \r\nEND\r\n"
    ask(conn, b"set n 0 0 2\r\n99\r\n", b"\r\n")
    assert ask(conn, b"incr n 1\r\n", b"\r\n") == b"100\r\n"
    assert ask(conn, b"get n\r\n", b"END\r\n") == b"VALUE n 0 3\r\n100\r\nEND\r\n"
    assert ask(conn, b"incr nonum 1\r\n", b"\r\n") == b"NOT_FOUND\r\n"
    ask(conn, b"set s 0 0 3\r\nabc\r\n", b"\r\n")
    assert ask(conn, b"incr s 1\r\n", b"\r\n") == (
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    )
    assert ask(conn, b"incr n -1\r\n", b"\r\n") == b"CLIENT_ERROR invalid numeric delta argument\r\n"


def test_delete_and_touch(conn):
    ask(conn, b"set d 0 0 1\r\nx\r\n", b"\r\n")
    assert ask(conn, b"touch d 100\r\n", b"\r\n") == b"TOUCHED\r\n"
    assert ask(conn, b"touch nod 100\r\n", b"\r\n") == b"NOT_FOUND\r\n"
    assert ask(conn, b"touch d abc\r\n", b"\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"
    assert ask(conn, b"delete d 0\r\n", b"\r\n") == b"DELETED\r\n"
    assert ask(conn, b"delete d\r\n", b"\r\n") == b"NOT_FOUND\r\n"
    assert ask(conn, b"delete d 5\r\n", b"\r\n") == (
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    )


def test_gat_gats(conn):
    ask(conn, b"set g 3 0 2\r\nhi\r\n", b"\r\n")
    assert ask(conn, b"gat 100 g\r\n", b"END\r\n") == b"VALUE g 3 2\r\nhi\r\nEND\r\n"
    assert ask(conn, b"gats 100 g\r\n", b"END\r\n").startswith(b"VALUE g 3 2 ")
    assert ask(conn, b"gat x g\r\n", b"\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"
    assert ask(conn, b"gat -1 g\r\n", b"END\r\n") == b"VALUE g 3 2\r\nhi\r\nEND\r\n"
    assert ask(conn, b"get g\r\n", b"END\r\n") == b"END\r\n"


def test_noreply_everywhere(conn):
    conn.sendall(
        b"set q 0 0 1 noreply\r\na\r\nadd q 0 0 1 noreply\r\nb\r\nappend q 0 0 1 noreply\r\nc\r\n"
        b"incr q 1 noreply\r\ntouch q 10 noreply\r\ndelete q noreply\r\n"
        b"set q 0 0 1 noreply\r\nz\r\nflush_all noreply\r\nverbosity 0 noreply\r\n"
    )
    assert ask(conn, b"get q\r\n", b"END\r\n") == b"END\r\n"


def test_expiry_rules(conn):
    ask(conn, b"set e1 0 -1 1\r\na\r\n", b"\r\n")
    assert ask(conn, b"get e1\r\n", b"END\r\n") == b"END\r\n"
    past = int(time.time()) - 10
    ask(conn, b"set e2 0 %d 1\r\na\r\n" % past, b"\r\n")
    assert ask(conn, b"get e2\r\n", b"END\r\n") == b"END\r\n"
    future = int(time.time()) + 1000
    ask(conn, b"set e3 0 %d 1\r\na\r\n" % future, b"\r\n")
    assert ask(conn, b"get e3\r\n", b"END\r\n") == b"VALUE e3 0 1\r\na\r\nEND\r\n"
    ask(conn, b"set e4 0 1 1\r\na\r\n", b"\r\n")
    time.sleep(2.2)
    assert ask(conn, b"get e4\r\n", b"END\r\n") == b"END\r\n"


def test_flags_are_32_bit_unsigned(conn):
    assert ask(conn, b"set f 4294967295 0 1\r\na\r\n", b"\r\n") == b"STORED\r\n"
    assert ask(conn, b"get f\r\n", b"END\r\n") == b"VALUE f 4294967295 1\r\na\r\nEND\r\n"
    # memcached keeps the low 32 bits of a 64-bit number, and refuses what overflows 64 bits.
    assert ask(conn, b"set f 4294967297 0 1\r\na\r\n", b"\r\n") == b"STORED\r\n"
    assert ask(conn, b"get f\r\n", b"END\r\n") == b"VALUE f 1 1\r\na\r\nEND\r\n"
    assert ask(conn, b"set f 18446744073709551616 0 1\r\na\r\n") == (
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n"
    )


def test_errors(conn):
    long_key = b"k" * 251
    assert ask(conn, b"get " + long_key + b"\r\n", b"\r\n") == (
        b"CLIENT_ERROR bad command line format\r\n"
    )
    assert ask(conn, b"bogus\r\n", b"\r\n") == b"ERROR\r\n"
    assert ask(conn, b"\r\n", b"\r\n") == b"ERROR\r\n"
    assert ask(conn, b"set k 0 0\r\n", b"\r\n") == b"ERROR\r\n"
    assert ask(conn, b"set k 0 0 -1\r\n", b"\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    # A bad data chunk reads exactly the announced bytes, then parses what follows.
    assert ask(conn, b"set k 0 0 1\r\nabc\r\n") == b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"


def test_too_large_value_is_swallowed(conn):
    big = 2 * 1024 * 1024
    conn.sendall(b"set big 0 0 %d\r\n" % big)
    conn.sendall(b"x" * big + b"\r\n")
    assert ask(conn, b"get big\r\n", b"END\r\n") == (
        b"SERVER_ERROR object too large for cache\r\nEND\r\n"
    )


def test_large_value_in_many_reads(conn):
    value = bytes(range(256)) * 4000  # about 1 MB minus a little
    conn.sendall(b"set large 0 0 %d\r\n" % len(value))
    for start in range(0, len(value), 7919):
        conn.sendall(value[start:start + 7919])
    conn.sendall(b"\r\n")
    assert ask(conn, b"", b"\r\n") == b"STORED\r\n"
    reply = ask(conn, b"get large\r\n", b"END\r\n")
    assert reply == b"VALUE large 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"


def test_pipelined_requests_in_one_write(conn):
    batch = b"".join(b"set p%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(200))
    batch += b"get p0 p199\r\n"
    reply = ask(conn, batch, b"END\r\n")
    assert reply.count(b"STORED\r\n") == 200
    assert reply.endswith(b"VALUE p0 0 1\r\n0\r\nVALUE p199 0 1\r\n9\r\nEND\r\n")


def test_request_split_byte_by_byte(conn):
    for byte in b"set split 0 0 5\r\nhello\r\n":
        conn.sendall(bytes([byte]))
    assert ask(conn, b"", b"\r\n") == b"STORED\r\n"


def test_binary_safe_keys(conn):
    key = bytes([0x10, 0x91, 0xFF, 0x1F]) + b"abc"
    assert ask(conn, b"set " + key + b" 0 0 1\r\nv\r\n", b"\r\n") == b"STORED\r\n"
    assert ask(conn, b"get " + key + b"\r\n", b"END\r\n") == b"VALUE " + key + b" 0 1\r\nv\r\nEND\r\n"


def test_version_verbosity_flush(conn):
    assert ask(conn, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"
    assert ask(conn, b"verbosity 1\r\n", b"\r\n") == b"OK\r\n"
    assert ask(conn, b"verbosity x\r\n", b"\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert ask(conn, b"verbosity 0\r\n", b"\r\n") == b"OK\r\n"
    ask(conn, b"set fl 0 0 1\r\na\r\n", b"\r\n")
    assert ask(conn, b"flush_all\r\n", b"\r\n") == b"OK\r\n"
    assert ask(conn, b"get fl\r\n", b"END\r\n") == b"END\r\n"
    assert ask(conn, b"flush_all x\r\n", b"\r\n") == b"CLIENT_ERROR invalid exptime argument\r\n"


def test_shutdown_disabled_without_A(conn):
    assert ask(conn, b"shutdown\r\n", b"\r\n") == b"ERROR: shutdown not enabled\r\n"


def test_quit_closes(pymcd_server):
    with pymcd_server.connect() as sock:
        sock.sendall(b"quit\r\n")
        assert sock.recv(10) == b""


def test_http_request_closes(pymcd_server):
    with pymcd_server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert sock.recv(10) == b""


def test_long_line_without_newline_closes(pymcd_server):
    with pymcd_server.connect() as sock:
        sock.sendall(b"set " + b"x" * 3000)
        assert sock.recv(10) == b""


def test_stats_general_block(conn):
    reply = ask(conn, b"stats\r\n", b"END\r\n")
    names = [line.split()[1] for line in reply.split(b"\r\n") if line.startswith(b"STAT ")]
    for name in (b"pid", b"uptime", b"curr_connections", b"cmd_get", b"get_hits", b"bytes",
                 b"curr_items", b"limit_maxbytes", b"evictions"):
        assert name in names
    assert names.index(b"pid") < names.index(b"cmd_get") < names.index(b"bytes_read")
    assert ask(conn, b"stats reset\r\n", b"\r\n") == b"RESET\r\n"
    assert ask(conn, b"stats nonsense\r\n", b"\r\n") == b"ERROR\r\n"
