"""memaslap's ``-F`` config file: key and value size ranges and the get/set mix.

The format (memaslap's sample config documents it in its comments)::

    key
    <min_len> <max_len> <proportion>      # one or more ranges
    value
    <min_len> <max_len> <proportion>
    cmd
    <type> <proportion>                   # type 0 = set, 1 = get

Lines starting with ``#`` and blank lines are ignored. Existing memaslap configs must run
unchanged, so the limits are memaslap's: keys 16..250 bytes (the first 8 are the unique prefix),
values 1 byte..1 MiB, each section's proportions totalling 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

KEY_MIN = 16
KEY_MAX = 250
VALUE_MIN = 1
VALUE_MAX = 1024 * 1024
SET = 0
GET = 1
_PROPORTION_TOLERANCE = 0.01

SizeRange = Tuple[int, int, float]


class ConfigError(ValueError):
    """A config file memaslap would refuse; the message names the line."""


@dataclass(frozen=True)
class Workload:
    """What the items look like and how often each command runs."""

    key_ranges: Tuple[SizeRange, ...] = ((64, 64, 1.0),)
    value_ranges: Tuple[SizeRange, ...] = ((1024, 1024, 1.0),)
    set_proportion: float = 0.1
    get_proportion: float = 0.9

    def with_fixed_value_size(self, size: int) -> "Workload":
        """memaslap's ``-X``: every value this long, whatever the config says."""
        if not VALUE_MIN <= size <= VALUE_MAX:
            raise ConfigError("value size must be between %d and %d" % (VALUE_MIN, VALUE_MAX))
        return Workload(self.key_ranges, ((size, size, 1.0),), self.set_proportion,
                        self.get_proportion)

    @property
    def max_key_size(self) -> int:
        return max(end for _, end, _ in self.key_ranges)

    @property
    def max_value_size(self) -> int:
        return max(end for _, end, _ in self.value_ranges)


def _size_range(fields: List[str], lowest: int, highest: int, what: str,
                line_number: int) -> SizeRange:
    if len(fields) != 3:
        raise ConfigError("line %d: a %s range is '<min> <max> <proportion>'" % (line_number, what))
    try:
        start, end, proportion = int(fields[0]), int(fields[1]), float(fields[2])
    except ValueError:
        raise ConfigError("line %d: bad number in %s range" % (line_number, what)) from None
    if not lowest <= start <= end <= highest:
        raise ConfigError("line %d: %s lengths must satisfy %d <= min <= max <= %d"
                          % (line_number, what, lowest, highest))
    return start, end, proportion


def _check_total(proportions: List[float], section: str) -> None:
    if not proportions:
        raise ConfigError("the %s section is missing or empty" % section)
    if abs(sum(proportions) - 1.0) > _PROPORTION_TOLERANCE:
        raise ConfigError("the proportions of the %s section must total 1, not %g"
                          % (section, sum(proportions)))


def parse_config(text: str, fixed_value_size: Optional[int] = None) -> Workload:
    """Read a memaslap config; sections left out keep memaslap's defaults."""
    sections: Dict[str, List[Tuple[int, List[str]]]] = {"key": [], "value": [], "cmd": []}
    current: Optional[str] = None
    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line in sections:
            current = line
            continue
        if current is None:
            raise ConfigError("line %d: expected a 'key', 'value' or 'cmd' section" % line_number)
        sections[current].append((line_number, line.split()))
    default = Workload()
    key_ranges = tuple(_size_range(f, KEY_MIN, KEY_MAX, "key", n) for n, f in sections["key"])
    value_ranges = tuple(_size_range(f, VALUE_MIN, VALUE_MAX, "value", n)
                         for n, f in sections["value"])
    proportions = {SET: 0.0, GET: 0.0}
    for line_number, fields in sections["cmd"]:
        try:
            command, proportion = int(float(fields[0])), float(fields[1])
        except (ValueError, IndexError):
            raise ConfigError("line %d: a cmd line is '<type> <proportion>'" % line_number) from None
        if command not in proportions:
            raise ConfigError("line %d: only set (0) and get (1) are supported" % line_number)
        proportions[command] += proportion
    for name, ranges in (("key", key_ranges), ("value", value_ranges)):
        if ranges:
            _check_total([r[2] for r in ranges], name)
    if sections["cmd"]:
        _check_total(list(proportions.values()), "cmd")
    workload = Workload(key_ranges or default.key_ranges, value_ranges or default.value_ranges,
                        proportions[SET] if sections["cmd"] else default.set_proportion,
                        proportions[GET] if sections["cmd"] else default.get_proportion)
    if fixed_value_size is not None:
        workload = workload.with_fixed_value_size(fixed_value_size)
    return workload
