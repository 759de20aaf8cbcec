"""The reply framing pymcd-slap and the proxy's backends share (pymcd/replies.py)."""

import pytest

from pymcd.replies import INCOMPLETE, PROTOCOL_ERROR, read_values, reply_end

WHOLE = [
    b"STORED\r\n",
    b"END\r\n",
    b"VALUE k 0 3\r\nabc\r\nEND\r\n",
    b"VALUE k 0 3 9\r\na\r\n\r\nVALUE j 5 0\r\n\r\nEND\r\n",  # CRLF inside a value
    b"VA 2 f0 c3\r\nhi\r\n",
    b"VA 0\r\n\r\n",
    b"HD c4\r\n",
    b"EN\r\n",
    b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n",
    b"SERVER_ERROR backend failure\r\n",
    b"12\r\n",
]


@pytest.mark.parametrize("reply", WHOLE)
def test_a_whole_reply_ends_where_it_ends_and_no_prefix_of_it_is_whole(reply):
    assert reply_end(reply) == len(reply)
    assert reply_end(reply + b"NEXT\r\n") == len(reply)
    assert reply_end(b"HD\r\n" + reply, 4) == 4 + len(reply)
    for cut in range(len(reply)):
        assert reply_end(reply[:cut]) == INCOMPLETE, reply[:cut]


def test_read_values_gives_each_value_and_the_error_line():
    data = b"VALUE k 0 3\r\nabc\r\nVALUE j 1 2 7\r\nxy\r\nEND\r\n"
    values, error = read_values(data, 0, len(data))
    assert error is None
    assert [(key, data[start:end]) for key, _, start, end in values] == [(b"k", b"abc"),
                                                                          (b"j", b"xy")]
    assert data[values[1][1]:values[1][3] + 2] == b"VALUE j 1 2 7\r\nxy\r\n"
    data = b"VALUE k 0 3\r\nabc\r\nSERVER_ERROR out of memory\r\n"
    assert read_values(data, 0, len(data))[1] == b"SERVER_ERROR out of memory"
    data = b"VALUE k 0 3\r\nabcdEND\r\n"
    assert read_values(data, 0, len(data))[1].startswith(PROTOCOL_ERROR)
    data = b"VALUE k 0 x\r\n"
    assert reply_end(data) == len(data)
    assert read_values(data, 0, len(data))[1] == PROTOCOL_ERROR + b" bad VALUE line"
