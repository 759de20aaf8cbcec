"""The knobs of one pymcd-slap run, and memaslap's ways of writing sizes and durations.

One immutable record travels from the command line to every worker process (it is pickled into
them), so a worker never re-reads options or the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from pymcd.slap.config import Workload

# memaslap's defaults (libmemcached 1.1.4's ms_setting.c, not its --help text).
DEFAULT_CONCURRENCY = 16
DEFAULT_WINDOW = 10 * 1024
DEFAULT_RUN_TIME = 600.0
# memaslap's FIXED_EXPIRE_TIME and EXPIRE_TIME_ERROR: a TTL item is checked against this slack.
DEFAULT_EXPIRE_TIME = 60
DEFAULT_EXPIRE_SLACK = 5.0
# memaslap waits SOCK_WAIT_TIMEOUT (30 s) for a lost UDP reply; on a LAN a second is already lost.
DEFAULT_UDP_TIMEOUT = 1.0

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_UNITS = {"k": 1024, "m": 1024 * 1024, "g": 1024 * 1024 * 1024}


class SettingsError(ValueError):
    """A value memaslap would refuse; the message is shown to the user as is."""


def parse_duration(text: str) -> float:
    """memaslap's ``-t``/``-S``: a number with an optional s/m/h/d suffix (plain = seconds)."""
    text = text.strip().lower()
    unit = 1
    if text and text[-1] in _DURATION_UNITS:
        unit = _DURATION_UNITS[text[-1]]
        text = text[:-1]
    try:
        value = float(text) * unit
    except ValueError:
        raise SettingsError("invalid time %r (e.g. 10s, 2m, 1h)" % text) from None
    if value <= 0:
        raise SettingsError("time must be positive")
    return value


def parse_count(text: str) -> int:
    """memaslap's ``-w``/``-P``/``-x``: an integer with an optional k/m/g suffix (powers of 1024
    for sizes as memaslap does: ``-w 10k`` is 10240)."""
    text = text.strip().lower()
    unit = 1
    if text and text[-1] in _SIZE_UNITS:
        unit = _SIZE_UNITS[text[-1]]
        text = text[:-1]
    try:
        value = int(float(text) * unit)
    except ValueError:
        raise SettingsError("invalid number %r" % text) from None
    if value < 0:
        raise SettingsError("number must not be negative")
    return value


def parse_proportion(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError("%s must be a proportion between 0 and 1" % name) from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError("%s must be a proportion between 0 and 1" % name)
    return value


@dataclass(frozen=True)
class SlapSettings:
    servers: Tuple[Tuple[str, int], ...]
    workload: Workload
    workers: int = 1
    concurrency: int = DEFAULT_CONCURRENCY
    sockets_per_concurrency: int = 1
    execute_number: Optional[int] = None
    run_time: float = DEFAULT_RUN_TIME
    window: int = DEFAULT_WINDOW
    verify: float = 0.0
    expire_verify: float = 0.0
    overwrite: float = 0.0
    multiget: int = 1
    stat_period: Optional[float] = None
    binary: bool = False
    udp: bool = False
    facebook: bool = False
    target_tps: int = 0
    replicated_writes: int = 0
    reconnect: bool = False
    verbose: bool = False
    expire_time: int = DEFAULT_EXPIRE_TIME
    expire_slack: float = DEFAULT_EXPIRE_SLACK
    udp_timeout: float = DEFAULT_UDP_TIMEOUT
    json_path: Optional[str] = None
    progress: bool = True
    config_path: Optional[str] = None

    @property
    def uses_udp(self) -> bool:
        return self.udp or self.facebook
