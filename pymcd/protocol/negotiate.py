"""Per-connection protocol choice: memcached decides on the first byte it reads."""

from __future__ import annotations

from pymcd.protocol.text import TextMachine
from pymcd.session import Session

BINARY_REQUEST_MAGIC = 0x80


def machine_for(session: Session, first_data: bytes):
    """The protocol machine for a connection whose first read is ``first_data``.

    With ``-B auto`` a leading 0x80 means the binary protocol; ``-B ascii``/``-B binary`` pin it.
    """
    server = session.server
    wanted = server.settings.binding_protocol
    if wanted == "binary" or (wanted == "auto" and first_data[:1] == b"\x80"):
        from pymcd.protocol.binary import BinaryMachine

        session.protocol_name = "binary"
        return BinaryMachine(session, server.commands.binary_dispatch)
    session.protocol_name = "ascii"
    return TextMachine(session, server.commands.text_dispatch)
