"""A tiny, deliberately faulty memcached (text protocol, get and set only) for pymcd-slap's tests.

Verification and expiry checks must catch a server that misbehaves, and no real server does so
on request. Faults, chosen on the command line:

- ``--corrupt N``: the N-th key ever stored (counting from 1) is served with its last byte
  changed, every time it is read;
- ``--ignore-ttl``: items never expire, whatever their exptime says;
- ``--forget``: nothing is kept at all (every get misses), as if items expired at once.

    python tiny_server.py PORT [--corrupt N] [--ignore-ttl] [--forget]
"""

from __future__ import annotations

import argparse
import time
from typing import Dict, Optional, Tuple

from twisted.internet import protocol, reactor


class TinyCache(protocol.Protocol):
    def connectionMade(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            tokens = self.buffer[:line_end].split(b" ")
            if tokens[0] == b"set":
                size = int(tokens[4])
                if len(self.buffer) < line_end + 2 + size + 2:
                    break
                value = self.buffer[line_end + 2:line_end + 2 + size]
                self.buffer = self.buffer[line_end + 4 + size:]
                self.factory.store(tokens[1], value, int(tokens[3]))
                replies.append(b"STORED\r\n")
                continue
            self.buffer = self.buffer[line_end + 2:]
            if tokens[0] == b"get":
                for key in tokens[1:]:
                    value = self.factory.fetch(key)
                    if value is not None:
                        replies.append(b"VALUE %s 0 %d\r\n%s\r\n" % (key, len(value), value))
                replies.append(b"END\r\n")
            else:
                replies.append(b"ERROR\r\n")
        if replies:
            self.transport.write(b"".join(replies))


class TinyCacheFactory(protocol.Factory):
    protocol = TinyCache

    def __init__(self, corrupt: int, ignore_ttl: bool, forget: bool) -> None:
        self.items: Dict[bytes, Tuple[bytes, float]] = {}
        self.corrupt = corrupt
        self.ignore_ttl = ignore_ttl
        self.forget = forget
        self.keys_seen = 0
        self.corrupt_key: Optional[bytes] = None

    def store(self, key: bytes, value: bytes, exptime: int) -> None:
        if key not in self.items:
            self.keys_seen += 1
            if self.keys_seen == self.corrupt:
                self.corrupt_key = key
        if self.forget:
            return
        expires = time.monotonic() + exptime if exptime and not self.ignore_ttl else 0.0
        self.items[key] = (value, expires)

    def fetch(self, key: bytes) -> Optional[bytes]:
        found = self.items.get(key)
        if found is None:
            return None
        value, expires = found
        if expires and time.monotonic() >= expires:
            del self.items[key]
            return None
        if key == self.corrupt_key:
            value = value[:-1] + (b"!" if value[-1:] != b"!" else b"?")
        return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--corrupt", type=int, default=0)
    parser.add_argument("--ignore-ttl", action="store_true")
    parser.add_argument("--forget", action="store_true")
    args = parser.parse_args()
    reactor.listenTCP(args.port, TinyCacheFactory(args.corrupt, args.ignore_ttl, args.forget),
                      interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
