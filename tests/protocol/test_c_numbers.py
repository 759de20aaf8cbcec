"""pymcd.c_numbers against what memcached 1.6.18 answered for the same tokens (each value below
was checked on the real server: ``set``'s flags and length, ``touch``'s exptime, ``incr``)."""

import pytest

from pymcd.c_numbers import parse_i32, parse_storage_numbers, parse_u32, parse_u64


@pytest.mark.parametrize("token, value", [
    (b"0", 0), (b"-0", 0), (b"+7", 7), (b"\t5", 5), (b"5\t", 5), (b"5\tjunk", 5),
    (b"4294967295", 4294967295), (b"4294967296", 0), (b"-18446744073709551615", 1),
    (b"9223372036854775808", 0), (b"-1", None), (b"5x", None), (b"x", None), (b"", None),
    (b"18446744073709551616", None), (b"1_000", None), (b"\xd9\xa3", None), (b"+", None),
])
def test_u32_is_strtoul_then_the_low_32_bits(token, value):
    assert parse_u32(token) == value


@pytest.mark.parametrize("token, value", [
    (b"99999999999", 1215752191), (b"4294967295", -1), (b"4294967299", 3),
    (b"2147483648", -2147483648), (b"-4294967296", 0), (b"9223372036854775807", -1),
    (b"9223372036854775808", None), (b"-9223372036854775809", None), (b"1e6", None),
])
def test_i32_is_strtol_then_an_int32(token, value):
    assert parse_i32(token) == value


@pytest.mark.parametrize("token, value", [
    (b"18446744073709551615", 2**64 - 1), (b"-9223372036854775809", 2**63 - 1),
    (b"-1", None), (b"-0", 0), (b"12 ", 12), (b"12\0", 12),
])
def test_u64_is_strtoull(token, value):
    assert parse_u64(token) == value


def test_storage_numbers_take_the_fast_path_and_the_c_way_alike():
    assert parse_storage_numbers(b"1", b"0", b"3") == (1, 0, 3)
    assert parse_storage_numbers(b"4294967296", b"4294967295", b"4294967299") == (0, -1, 3)
    assert parse_storage_numbers(b"1", b"0", b"x") is None
