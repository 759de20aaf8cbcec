"""Meta commands over a real socket: long quiet pipelines closed by mn, and several clients.

The sans-IO tests cover each flag; these check what only a live server shows: replies of a
pipeline that spans many TCP reads come back complete and in order, quiet requests stay silent
until the closing mn, and concurrent connections share the stale/win state.
"""

from __future__ import annotations

from support import exchange


def test_quiet_pipeline_answers_only_what_failed(conn):
    count = 500
    requests = [b"ms pipe:%d %d q T0\r\n%s\r\n" % (i, len(b"v%d" % i), b"v%d" % i)
                for i in range(count)]
    # Every other key is fetched quietly; misses are silent too, hits answer in request order.
    requests += [b"mg pipe:%d q v k\r\nmg absent:%d q v\r\n" % (i, i) for i in range(0, count, 2)]
    requests += [b"md pipe:%d q\r\n" % i for i in range(count)]
    requests += [b"md pipe:0 q Oend k\r\n", b"mn\r\n"]
    reply = exchange(conn, b"".join(requests), expect_end=b"MN\r\n", timeout=10)
    hits = b"".join(b"VA %d kpipe:%d\r\nv%d\r\n" % (len(b"v%d" % i), i, i)
                    for i in range(0, count, 2))
    assert reply == hits + b"NF Oend kpipe:0\r\nMN\r\n"


def test_pipeline_split_inside_a_data_block(conn):
    conn.sendall(b"ms split 10 q\r\n01234")
    assert exchange(conn, b"56789\r\nmg split v\r\nmn\r\n", expect_end=b"MN\r\n") == \
        b"VA 10\r\n0123456789\r\nMN\r\n"


def test_stale_while_revalidate_across_connections(pymcd_server):
    clients = [pymcd_server.connect() for _ in range(4)]
    try:
        writer = clients[0]
        assert exchange(writer, b"ms swr 3 T300\r\nold\r\nmd swr I T30 q\r\nmn\r\n",
                        expect_end=b"MN\r\n") == b"HD\r\nMN\r\n"
        replies = [exchange(sock, b"mg swr v\r\n", expect_end=b"\r\nold\r\n")
                   for sock in clients[1:]]
        # Exactly one reader wins the right to recompute; all of them get the stale value.
        assert replies.count(b"VA 3 X W\r\nold\r\n") == 1
        assert replies.count(b"VA 3 Z X\r\nold\r\n") == len(replies) - 1
        winner = clients[1 + replies.index(b"VA 3 X W\r\nold\r\n")]
        assert exchange(winner, b"ms swr 3 T300\r\nnew\r\n", expect_end=b"\r\n") == b"HD\r\n"
        assert exchange(writer, b"mg swr v\r\n", expect_end=b"new\r\n") == b"VA 3\r\nnew\r\n"
    finally:
        for sock in clients:
            sock.close()


def test_items_cross_protocols(conn):
    reply = exchange(
        conn,
        b"set xp 3 0 5\r\nclass\r\nmg xp v f c\r\nms xp 4 F8 c\r\nmeta\r\ngets xp\r\n"
        b"incr xn 1\r\nma xn N0 J9\r\nincr xn 1\r\nmg xn v\r\ndelete xp\r\nmg xp\r\nmn\r\n",
        expect_end=b"MN\r\n",
    )
    lines = reply.split(b"\r\n")
    cas = lines[0 + 1].split(b" c")[1]
    new_cas = lines[3].split(b" c")[1]
    assert reply == (
        b"STORED\r\nVA 5 f3 c" + cas + b"\r\nclass\r\nHD c" + new_cas + b"\r\n"
        b"VALUE xp 8 4 " + new_cas + b"\r\nmeta\r\nEND\r\n"
        b"NOT_FOUND\r\nHD\r\n10\r\nVA 2\r\n10\r\nDELETED\r\nEN\r\nMN\r\n"
    )
