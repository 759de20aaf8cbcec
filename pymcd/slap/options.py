"""memaslap's command line (letters, long names and meanings as Debian's ``memcaslap --help``
prints them), plus pymcd-slap's own long options, into a ``SlapSettings``.

Options that cannot be honoured are refused with a message naming them, never ignored.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence, Tuple

from pymcd.protocol.udp import MAX_PAYLOAD as UDP_MAX_PAYLOAD
from pymcd.slap.codec import BINARY_HEADER_SIZE
from pymcd.slap.config import ConfigError, Workload, parse_config
from pymcd.slap.settings import (
    DEFAULT_CONCURRENCY, DEFAULT_EXPIRE_SLACK, DEFAULT_EXPIRE_TIME, DEFAULT_UDP_TIMEOUT,
    SettingsError, SlapSettings, parse_count, parse_duration, parse_proportion)

DEFAULT_PORT = 11211
VERSION = "pymcd-slap 0.1.0 (memaslap v1.0 options)"
# "set <key> 0 <exptime> <len>\r\n" around the key and value, at its longest.
_ASCII_SET_OVERHEAD = len(b"set  0 4294967295 1048576\r\n\r\n")
_BINARY_SET_OVERHEAD = BINARY_HEADER_SIZE + 8


def parse_servers(text: str) -> Tuple[Tuple[str, int], ...]:
    servers = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        if not host:
            host, port = entry, str(DEFAULT_PORT)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError("bad server %r (host:port)" % entry)
        servers.append((host, int(port)))
    if not servers:
        raise SettingsError("No server is specified (-s host:port[,host:port...])")
    return tuple(servers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pymcd-slap", description="Generates workload against memcached servers "
        "(memaslap's options; TPS control, UDP multi-datagram replies and binary UDP work).")
    add = parser.add_argument
    add("-s", "--servers", help="servers to connect, e.g. 127.0.0.1:11211,127.0.0.1:11212")
    add("-T", "--threads", default="1", help="worker processes (memaslap: threads); "
        "concurrency must be a multiple of it. Default 1.")
    add("-c", "--concurrency", default=str(DEFAULT_CONCURRENCY),
        help="concurrencies to simulate. Default %d." % DEFAULT_CONCURRENCY)
    add("-n", "--conn_sock", default="1", help="sockets per concurrency. Default 1.")
    add("-x", "--execute_number", help="operations (get and set) to execute")
    add("-t", "--time", help="how long to run, suffix s/m/h/d, e.g. 2m. Default 600s.")
    add("-F", "--cfg_cmd", help="memaslap config file: key, value and cmd distributions")
    add("-w", "--win_size", default="10k", help="task window of each concurrency, suffix k/m. "
        "Default 10k.")
    add("-X", "--fixed_size", help="fixed value length")
    add("-v", "--verify", default="0", help="proportion of gets whose value is verified")
    add("-d", "--division", default="1", help="keys per multi-get. Default 1 (single get).")
    add("-S", "--stat_freq", help="period of the statistics tables, suffix s/m")
    add("-e", "--exp_verify", default="0", help="proportion of objects with an expire time")
    add("-o", "--overwrite", default="0", help="proportion of objects overwritten")
    add("-R", "--reconnect", action="store_true", help="reconnect lost connections")
    add("-U", "--udp", action="store_true", help="UDP (the server's UDP port must equal its TCP "
        "port)")
    add("-a", "--facebook", action="store_true", help="sets over TCP, multi-gets over UDP")
    add("-B", "--binary", action="store_true", help="binary protocol")
    add("-P", "--tps", default="0", help="target throughput (ops/s, suffix k)")
    add("-p", "--rep_write", default="0", help="write each set to this many servers")
    add("-b", "--verbose", action="store_true", help="details of each verification failure")
    add("-V", "--version", action="version", version=VERSION)
    add("--json", metavar="FILE", help="write every figure to FILE as JSON")
    add("--expire-time", default=str(DEFAULT_EXPIRE_TIME),
        help="TTL in seconds of the -e objects (memaslap: 60)")
    add("--expire-slack", default=str(DEFAULT_EXPIRE_SLACK),
        help="seconds of tolerance in expiry checks (memaslap: 5)")
    add("--udp-timeout", default=str(DEFAULT_UDP_TIMEOUT),
        help="seconds to wait for a UDP reply before counting it lost")
    add("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    return parser


def _positive(text: str, name: str) -> int:
    value = parse_count(text)
    if value < 1:
        raise SettingsError("%s must be at least 1" % name)
    return value


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError("%s must be a number" % name) from None
    if value < 0:
        raise SettingsError("%s must not be negative" % name)
    return value


def _load_workload(path: Optional[str], fixed_size: Optional[int]) -> Workload:
    if path is None:
        workload = Workload()
        return workload.with_fixed_value_size(fixed_size) if fixed_size else workload
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        raise SettingsError("Can not open file: '%s'." % path) from None
    return parse_config(text, fixed_size)


def _check_udp_fits(settings: SlapSettings) -> None:
    """memaslap refuses requests of more than one datagram; say so before starting."""
    workload = settings.workload
    key = workload.max_key_size
    if settings.udp:
        overhead = _BINARY_SET_OVERHEAD if settings.binary else _ASCII_SET_OVERHEAD
        if key + workload.max_value_size + overhead > UDP_MAX_PAYLOAD:
            raise SettingsError(
                "UDP requests must fit one datagram (%d bytes): keys up to %d and values up to "
                "%d bytes do not; use a smaller -X or config" % (UDP_MAX_PAYLOAD, key,
                                                                  workload.max_value_size))
    per_key = key + (BINARY_HEADER_SIZE if settings.binary else 1)
    if settings.multiget * per_key + 6 > UDP_MAX_PAYLOAD:
        raise SettingsError("a multi-get of %d keys of up to %d bytes does not fit one UDP "
                            "datagram; use a smaller -d" % (settings.multiget, key))


def parse_options(argv: Optional[Sequence[str]] = None) -> SlapSettings:
    args = build_parser().parse_args(argv)
    try:
        return _settings_from(args)
    except ConfigError as error:
        raise SettingsError(str(error)) from None


def _settings_from(args: argparse.Namespace) -> SlapSettings:
    if not args.servers:
        raise SettingsError("No server is specified (-s host:port[,host:port...])")
    servers = parse_servers(args.servers)
    workers = _positive(args.threads, "-T")
    concurrency = _positive(args.concurrency, "-c")
    if concurrency % workers:
        raise SettingsError("Concurrency must be the multiples of threads count.")
    if args.execute_number is not None and args.time is not None:
        raise SettingsError("-x and -t both given: a run is bounded by one of them")
    fixed_size = _positive(args.fixed_size, "-X") if args.fixed_size is not None else None
    replicated = parse_count(args.rep_write)
    if replicated > len(servers):
        raise SettingsError("-p %d needs at least %d servers in -s" % (replicated, replicated))
    if replicated > 1 and args.udp:
        raise SettingsError("-p replicated writes need TCP; they cannot be combined with -U")
    if args.udp and args.facebook:
        raise SettingsError("-a already sends multi-gets over UDP and sets over TCP; drop -U")
    settings = SlapSettings(
        servers=servers,
        workload=_load_workload(args.cfg_cmd, fixed_size),
        workers=workers,
        concurrency=concurrency,
        sockets_per_concurrency=_positive(args.conn_sock, "-n"),
        execute_number=(_positive(args.execute_number, "-x")
                        if args.execute_number is not None else None),
        run_time=parse_duration(args.time) if args.time is not None else 600.0,
        window=_positive(args.win_size, "-w"),
        verify=parse_proportion(args.verify, "-v"),
        expire_verify=parse_proportion(args.exp_verify, "-e"),
        overwrite=parse_proportion(args.overwrite, "-o"),
        multiget=_positive(args.division, "-d"),
        stat_period=parse_duration(args.stat_freq) if args.stat_freq else None,
        binary=args.binary,
        udp=args.udp,
        facebook=args.facebook,
        target_tps=parse_count(args.tps),
        replicated_writes=replicated,
        reconnect=args.reconnect,
        verbose=args.verbose,
        expire_time=_positive(args.expire_time, "--expire-time"),
        expire_slack=_float(args.expire_slack, "--expire-slack"),
        udp_timeout=_float(args.udp_timeout, "--udp-timeout") or DEFAULT_UDP_TIMEOUT,
        json_path=args.json,
        progress=not args.no_progress,
        config_path=args.cfg_cmd,
    )
    if settings.uses_udp:
        _check_udp_fits(settings)
    return settings

