"""A tiny, deliberately faulty memcached (text protocol, get and set only) for pymcd-slap's tests.

Verification and expiry checks must catch a server that misbehaves, and no real server does so
on request. Faults, chosen on the command line:

- ``--corrupt N``: the N-th key ever stored (counting from 1) is served with its last byte
  changed, every time it is read;
- ``--ignore-ttl``: items never expire, whatever their exptime says;
- ``--forget``: nothing is kept at all (every get misses), as if items expired at once;
- ``--udp-reverse``: over UDP (same port), the datagrams of a reply come last first;
- ``--udp-drop N``: over UDP, every N-th reply datagram is dropped.

UDP replies are framed whole, as memcached 1.4 does: one message cut into 1392-byte payloads,
numbered 0..n-1 of n.

    python tiny_server.py PORT [--corrupt N] [--ignore-ttl] [--forget] [--udp-reverse]
                               [--udp-drop N]
"""

from __future__ import annotations

import argparse
import struct
import time
from typing import Dict, Optional, Tuple

from twisted.internet import protocol, reactor

UDP_HEADER = struct.Struct(">HHHH")
UDP_PAYLOAD = 1400 - UDP_HEADER.size


class TinyCache(protocol.Protocol):
    def connectionMade(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        reply, self.buffer = self.factory.execute(self.buffer + data)
        if reply:
            self.transport.write(reply)


class TinyDatagrams(protocol.DatagramProtocol):
    def __init__(self, cache: "TinyCacheFactory", reverse: bool, drop_every: int) -> None:
        self.cache = cache
        self.reverse = reverse
        self.drop_every = drop_every
        self.sent = 0

    def datagramReceived(self, datagram: bytes, address) -> None:
        request_id = UDP_HEADER.unpack_from(datagram)[0]
        reply, _ = self.cache.execute(datagram[UDP_HEADER.size:])
        total = max(1, -(-len(reply) // UDP_PAYLOAD))
        frames = [UDP_HEADER.pack(request_id, number, total, 0)
                  + reply[number * UDP_PAYLOAD:(number + 1) * UDP_PAYLOAD]
                  for number in range(total)]
        for frame in reversed(frames) if self.reverse else frames:
            self.sent += 1
            if not (self.drop_every and self.sent % self.drop_every == 0):
                self.transport.write(frame, address)


class TinyCacheFactory(protocol.Factory):
    protocol = TinyCache

    def __init__(self, corrupt: int, ignore_ttl: bool, forget: bool) -> None:
        self.items: Dict[bytes, Tuple[bytes, float]] = {}
        self.corrupt = corrupt
        self.ignore_ttl = ignore_ttl
        self.forget = forget
        self.keys_seen = 0
        self.corrupt_key: Optional[bytes] = None

    def execute(self, buffer: bytes) -> Tuple[bytes, bytes]:
        """Run every whole command in ``buffer``: (the replies, what is left over)."""
        replies = []
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            tokens = buffer[:line_end].split(b" ")
            if tokens[0] == b"set":
                size = int(tokens[4])
                if len(buffer) < line_end + 2 + size + 2:
                    break
                self.store(tokens[1], buffer[line_end + 2:line_end + 2 + size], int(tokens[3]))
                buffer = buffer[line_end + 4 + size:]
                replies.append(b"STORED\r\n")
                continue
            buffer = buffer[line_end + 2:]
            if tokens[0] == b"get":
                for key in tokens[1:]:
                    value = self.fetch(key)
                    if value is not None:
                        replies.append(b"VALUE %s 0 %d\r\n%s\r\n" % (key, len(value), value))
                replies.append(b"END\r\n")
            else:
                replies.append(b"ERROR\r\n")
        return b"".join(replies), buffer

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
    parser.add_argument("--udp-reverse", action="store_true")
    parser.add_argument("--udp-drop", type=int, default=0)
    args = parser.parse_args()
    cache = TinyCacheFactory(args.corrupt, args.ignore_ttl, args.forget)
    reactor.listenTCP(args.port, cache, interface="127.0.0.1")
    reactor.listenUDP(args.port, TinyDatagrams(cache, args.udp_reverse, args.udp_drop),
                      interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
