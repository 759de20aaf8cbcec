"""``<memory file>.meta``: memcached's line format (``T<tag>``, then ``K<key> <value>`` lines),
ending with a checksum line pymcd adds so that a truncated or edited file is told apart.

memcached refuses to start when the file's first line is not a tag (an empty file included),
and starts cold when anything later does not check out; pymcd does the same.
"""

from __future__ import annotations

import os
import zlib
from typing import Dict, List, Optional, Tuple

from pymcd.startup import StartupError

TAG = "pymcd"
FORMAT_VERSION = "1"
CHECKSUM_KEY = "checksum"


class CorruptMeta(StartupError):
    """A metadata file memcached would abort on (its first line is not a tag)."""

    def __init__(self, message: str) -> None:
        super().__init__("[restart] " + message)


class UnusableMeta(Exception):
    """A metadata file to start cold from; ``str()`` is the reason, in memcached's words where
    memcached has some."""


def write_meta(path: str, fields: List[Tuple[str, str]]) -> None:
    """Write the file whole (a temporary file renamed over it): a crash mid-write leaves none."""
    body = "T%s\n" % TAG + "".join("K%s %s\n" % (key, value) for key, value in fields)
    body += "K%s %08x\n" % (CHECKSUM_KEY, zlib.crc32(body.encode()))
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(body)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def read_meta(path: str) -> Optional[Dict[str, str]]:
    """The fields of a metadata file, or None if there is none; the file is removed once read
    (as memcached does: a crash after this start must not find it again)."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        return None
    os.unlink(path)
    lines = raw.split(b"\n")
    if not lines[0]:
        raise CorruptMeta("Failed to read a tag from metadata file")
    if not lines[0].startswith(b"T"):
        raise CorruptMeta("corrupt metadata file")
    if lines[0][1:] != TAG.encode():
        raise CorruptMeta("internal handler for metadata tag not found: %s:"
                          % lines[0][1:].decode("latin-1"))
    if len(lines) < 3 or lines[-1]:
        raise UnusableMeta("metadata file truncated")
    last = lines[-2]
    body = raw[:len(raw) - len(last) - 1]
    if not last.startswith(b"K%s " % CHECKSUM_KEY.encode()) or \
            last.split(b" ", 1)[1] != b"%08x" % zlib.crc32(body):
        raise UnusableMeta("metadata checksum does not match (truncated or edited)")
    fields: Dict[str, str] = {}
    for line in lines[1:-2]:
        if not line.startswith(b"K") or b" " not in line:
            raise UnusableMeta("invalid metadata line: %s" % line.decode("latin-1"))
        key, value = line[1:].decode("latin-1").split(" ", 1)
        fields[key] = value
    if fields.get("version") != FORMAT_VERSION:
        raise UnusableMeta("metadata format version %s, not %s"
                           % (fields.get("version"), FORMAT_VERSION))
    return fields


def int_list(text: str) -> List[int]:
    return [int(part) for part in text.split(",")] if text else []


def int_lists(text: str) -> Dict[int, List[int]]:
    """``1:4,5;2:7`` as {1: [4, 5], 2: [7]}."""
    lists: Dict[int, List[int]] = {}
    for part in filter(None, text.split(";")):
        key, _, values = part.partition(":")
        lists[int(key)] = int_list(values)
    return lists


def format_int_lists(lists: Dict[int, List[int]]) -> str:
    return ";".join("%d:%s" % (key, ",".join(map(str, values))) for key, values in lists.items())
