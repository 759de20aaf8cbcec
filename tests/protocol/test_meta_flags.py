"""The meta flag parser on its own: memcached 1.6.18's _meta_flag_preparse, error for error."""

from __future__ import annotations

import pytest

from pymcd.protocol import meta_flags
from pymcd.protocol.meta_flags import (
    MetaRequestError,
    check_opaque,
    decode_base64_key,
    encode_key,
    key_text,
    parse_meta_flags,
    too_many_tokens,
)


def refused(key, *tokens) -> bytes:
    with pytest.raises(MetaRequestError) as caught:
        parse_meta_flags(key, list(tokens))
    return caught.value.reply


def test_every_flag_parses_into_what_the_commands_need():
    flags = parse_meta_flags(b"k", [
        b"N30", b"T-1", b"R15", b"F7", b"C99", b"E42", b"MA", b"J5", b"D3", b"I", b"x", b"v",
        b"u", b"q", b"h", b"l", b"O123",
    ])
    assert (flags.vivify_ttl, flags.ttl, flags.recache_ttl) == (30, -1, 15)
    assert (flags.client_flags, flags.compare_cas, flags.new_cas) == (7, 99, 42)
    assert (flags.mode, flags.initial, flags.delta) == (ord("A"), 5, 3)
    assert flags.set_stale and flags.remove_value and flags.value and flags.no_update
    assert flags.quiet and flags.locked


def test_defaults():
    flags = parse_meta_flags(b"k", [])
    assert flags.delta == 1 and flags.initial == 0 and flags.compare_cas is None
    assert flags.ttl is None and flags.mode == 0 and not flags.locked


@pytest.mark.parametrize("flag", [b"h", b"l", b"N1", b"R1", b"T1"])
def test_flags_that_need_the_item_before_its_bump(flag):
    assert parse_meta_flags(b"k", [flag]).locked


def test_return_only_and_routing_flags_are_accepted_by_every_command():
    flags = parse_meta_flags(b"k", [b"s", b"t", b"c", b"f", b"k", b"Oxyz", b"Pproxy", b"Lroute"])
    assert flags.tokens[-1] == b"Lroute"


def test_unknown_and_repeated_flags():
    assert refused(b"k", b"a") == b"CLIENT_ERROR invalid flag"
    assert refused(b"k", b"S2") == b"CLIENT_ERROR invalid flag"
    assert refused(b"k", b"v", b"v") == b"CLIENT_ERROR duplicate flag"
    # Only the first byte counts: O1 and O2 are the same flag.
    assert refused(b"k", b"O1", b"O2") == b"CLIENT_ERROR duplicate flag"
    assert refused(b"k", b"\x80") == b"CLIENT_ERROR duplicate flag"


def test_number_errors():
    for flag in (b"N", b"Tx", b"R1.5", b"C-1", b"E"):
        assert refused(b"k", flag) == b"CLIENT_ERROR bad token in command line format"
    assert refused(b"k", b"Jx") == b"CLIENT_ERROR invalid numeric initial value"
    assert refused(b"k", b"D-1") == b"CLIENT_ERROR invalid numeric delta value"
    assert refused(b"k", b"M") == b"CLIENT_ERROR incorrect length for M token"
    assert refused(b"k", b"MAA") == b"CLIENT_ERROR incorrect length for M token"
    # F has no message of its own: the generic one, or the last error before it.
    assert refused(b"k", b"Fx") == b"CLIENT_ERROR bad command line format"
    assert refused(b"k", b"Tx", b"Fx") == b"CLIENT_ERROR bad token in command line format"


def test_the_last_number_error_wins_but_a_bad_flag_stops_the_pass():
    assert refused(b"k", b"Tx", b"Jx") == b"CLIENT_ERROR invalid numeric initial value"
    assert refused(b"k", b"Jx", b"Tx") == b"CLIENT_ERROR bad token in command line format"
    assert refused(b"k", b"Tx", b"z") == b"CLIENT_ERROR invalid flag"


def test_base64_key_flag():
    flags = parse_meta_flags(b"Zm9v", [b"b"])
    assert flags.key == b"foo" and flags.key_binary
    assert refused(b"Zm9", b"b") == b"CLIENT_ERROR error decoding key"


@pytest.mark.parametrize("encoded, decoded", [
    (b"Zm9v", b"foo"),
    (b"Zg==", b"f"),
    (b"Zm9vZg==", b"foof"),
    (b"Zm!9v", b"foo"),       # bytes outside the alphabet are skipped
    (b"Zg=x", b"f\x00"),      # decoding stops after the first padded block
    (b"Zm9", None),           # not a multiple of four symbols
    (b"Zm9v=", None),
    (b"Zm9vZg", None),
    (b"Zm9=vZg==", None),
    (b"Z===", None),          # three padding symbols
    (b"!!!!", None),
])
def test_base64_decoding_matches_memcached(encoded, decoded):
    assert decode_base64_key(encoded) == decoded


def test_keys_as_replies_print_them():
    assert key_text(b"\x00\xff", True) == b"AP8="
    assert encode_key(b"\x00\xff", True) == b"AP8= b"
    assert encode_key(b"plain", False) == key_text(b"plain", False) == b"plain"


def test_opaque_length_limit():
    assert check_opaque(b"O" + b"x" * 31) == b"O" + b"x" * 31
    with pytest.raises(MetaRequestError) as caught:
        check_opaque(b"O" + b"x" * 32)
    assert caught.value.reply == b"CLIENT_ERROR opaque token too long"


def test_token_limit_counts_memcacheds_terminal_token():
    # verb + key + 17 flags is 19 tokens, 20 with the terminal: accepted; one more is refused.
    assert not too_many_tokens([b"mg", b"k"] + [b"v"] * 17)
    assert too_many_tokens([b"mg", b"k"] + [b"v"] * 18)
    assert too_many_tokens([b"mg", b"k"] + [b"v"] * 40)
    assert meta_flags.MAX_OPAQUE_LENGTH == 32
