"""memaslap's config file and command line, parsed the way memaslap reads them."""

from __future__ import annotations

import re

import pytest

from pymcd.slap.config import ConfigError, Workload, parse_config
from pymcd.slap.options import parse_options
from pymcd.slap.settings import SettingsError, parse_count, parse_duration

# The layout of memaslap's sample config (its comments reworded): key, value, cmd sections.
SAMPLE_CONFIG = """\
# key lengths: start_len end_len proportion (16 <= start <= end <= 250)
#
#   16 100 0.8
#   101 200 0.1
#   201 249 0.1
key
16 100 0.8
101 200 0.1
201 249 0.1
# value lengths: start_len end_len proportion (1 <= start <= end <= 1M)
value
1 1000 0.8
1001 10000 0.1
10001 100000 0.1
# cmd_type cmd_proportion (set 0, get 1)
cmd
0    0.1
1    0.9
"""


def test_sample_config():
    workload = parse_config(SAMPLE_CONFIG)
    assert workload.key_ranges == ((16, 100, 0.8), (101, 200, 0.1), (201, 249, 0.1))
    assert workload.value_ranges == ((1, 1000, 0.8), (1001, 10000, 0.1), (10001, 100000, 0.1))
    assert workload.set_proportion == pytest.approx(0.1)
    assert workload.get_proportion == pytest.approx(0.9)
    assert workload.max_key_size == 249 and workload.max_value_size == 100000


def test_sections_left_out_keep_the_defaults():
    # A section left out keeps memaslap's default (64-byte keys, 1 KiB values, 10% sets).
    only_values = parse_config("value\n100 100 1\n")
    assert only_values.key_ranges == Workload().key_ranges
    assert only_values.value_ranges == ((100, 100, 1.0),)
    assert only_values.set_proportion == pytest.approx(0.1)


def test_fixed_value_size_overrides_the_config():
    assert parse_config(SAMPLE_CONFIG, 300).value_ranges == ((300, 300, 1.0),)


@pytest.mark.parametrize("text, message", [
    ("key\n8 16 1\n", "key lengths"),
    ("key\n64 300 1\n", "key lengths"),
    ("value\n0 10 1\n", "value lengths"),
    ("key\n16 20 0.5\n", "must total 1"),
    ("cmd\n2 1\n", "only set (0) and get (1)"),
    ("16 20 1\n", "expected a 'key', 'value' or 'cmd' section"),
    ("key\n16 20\n", "a key range is"),
])
def test_config_errors(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)


def test_memaslap_suffixes():
    assert parse_duration("10s") == 10 and parse_duration("2m") == 120
    assert parse_duration("1h") == 3600 and parse_duration("5") == 5
    assert parse_count("10k") == 10240 and parse_count("1m") == 1024 * 1024
    assert parse_count("40000") == 40000


def test_options_as_memaslap_names_them(tmp_path):
    config = tmp_path / "slap.cnf"
    config.write_text(SAMPLE_CONFIG)
    settings = parse_options(["-s", "127.0.0.1:11311,10.0.0.2", "-T", "2", "-c", "8", "-n", "2",
                              "-t", "2m", "-F", str(config), "-w", "40k", "-X", "200",
                              "-v", "0.2", "-e", "0.05", "-o", "0.1", "-d", "4", "-S", "5s",
                              "-B", "-P", "10k", "-p", "2", "-R", "-b"])
    assert settings.servers == (("127.0.0.1", 11311), ("10.0.0.2", 11211))
    assert (settings.workers, settings.concurrency, settings.sockets_per_concurrency) == (2, 8, 2)
    assert settings.run_time == 120 and settings.window == 40 * 1024
    assert settings.workload.value_ranges == ((200, 200, 1.0),)
    assert settings.workload.key_ranges[0] == (16, 100, 0.8)
    assert (settings.verify, settings.expire_verify, settings.overwrite) == (0.2, 0.05, 0.1)
    assert settings.multiget == 4 and settings.stat_period == 5
    assert settings.binary and settings.reconnect and settings.verbose
    assert settings.target_tps == 10240 and settings.replicated_writes == 2


@pytest.mark.parametrize("argv, message", [
    ([], "No server is specified"),
    (["-s", "h:1", "-T", "3", "-c", "4"], "Concurrency must be the multiples of threads count."),
    (["-s", "h:1", "-x", "10", "-t", "1s"], "-x and -t both given"),
    (["-s", "h:1", "-U", "-X", "2000"], "UDP requests must fit one datagram"),
    (["-s", "h:1", "-U", "-d", "50"], "does not fit one UDP datagram"),
    (["-s", "h:1", "-p", "2"], "-p 2 needs at least 2 servers"),
    (["-s", "h:1", "-v", "1.5"], "-v must be a proportion"),
    (["-s", "h:1", "-F", "/nonexistent/slap.cnf"], "Can not open file: '/nonexistent/slap.cnf'."),
    (["-s", "h:1", "-U", "-a"], "drop -U"),
])
def test_options_it_cannot_honour_are_refused(argv, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        parse_options(argv)
