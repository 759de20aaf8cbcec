"""What binary commands share: the request shapes they accept and the success/failure replies.

memcached checks each opcode's extras, key and body lengths before running it, and answers a
request that does not fit with ``Invalid arguments`` and a closed connection. Commands here
declare their shape as data (:attr:`BinaryCommand.extras_lengths` and friends), which
:attr:`BinaryCommand.shapes` turns into what the machine checks, so the rule lives in one place.
"""

from __future__ import annotations

from itertools import product
from typing import FrozenSet, Optional, Tuple

from zope.interface import implementer

from pymcd.interfaces import IBinaryCommand
from pymcd.store import outcomes

from pymcd.protocol.binary import (
    BinaryRequest,
    Status,
    pack_response,
    respond,
    send_error,
)


@implementer(IBinaryCommand)
class BinaryCommand:
    """Base of binary commands: one object serves an opcode and its quiet variant.

    Shape attributes, checked by the machine before the command runs:

    - ``extras_lengths``: the extras lengths the opcode accepts;
    - ``key_required``: True if a key must be present, False if it must be absent, None if
      either is fine;
    - ``value_allowed``: whether the body may hold more than extras and key;
    - ``reads_value``: whether the command consumes that value (SET, APPEND, SASL). When it
      does not, memcached parses any extra body bytes as the next request, and so does pymcd.
    """

    names: Tuple[int, ...] = ()
    allowed_before_auth = False
    extras_lengths: Tuple[int, ...] = (0,)
    key_required: Optional[bool] = None
    value_allowed = False
    reads_value = False

    @property
    def shapes(self) -> FrozenSet[Tuple[int, bool, bool]]:
        """The (extras length, has a key, has a value) of every request the opcode accepts."""
        keys = (True, False) if self.key_required is None else (self.key_required,)
        values = (False, True) if self.value_allowed else (False,)
        return frozenset(product(self.extras_lengths, keys, values))

    def execute(self, session, request: BinaryRequest) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, "/".join("0x%02x" % n for n in self.names))


def succeed(session, request: BinaryRequest, extras: bytes = b"", key: bytes = b"",
            value: bytes = b"", cas: int = 0) -> None:
    """memcached's write_bin_response: a success reply, which quiet requests leave out."""
    if not request.quiet:
        respond(session, pack_response(request.opcode, request.opaque, Status.SUCCESS, extras,
                                       key, value, cas))


def fail(session, request: BinaryRequest, status: int, text: Optional[bytes] = None) -> None:
    """memcached's write_bin_error: sent for quiet requests too."""
    send_error(session, request, status, text)


# The status of each store outcome that is an error in every binary command.
OUTCOME_STATUS = {
    outcomes.EXISTS: Status.KEY_EEXISTS,
    outcomes.NOT_FOUND: Status.KEY_ENOENT,
    outcomes.DELTA_NON_NUMERIC: Status.DELTA_BADVAL,
}


def fail_with_outcome(session, request: BinaryRequest, result: int, out_of_memory: bytes,
                      otherwise: int) -> None:
    """The error reply for a store outcome that is not a success: ``out_of_memory`` is the
    command's own wording of ENOMEM, ``otherwise`` the status of any outcome not listed."""
    if result == outcomes.NO_MEMORY:
        fail(session, request, Status.ENOMEM, out_of_memory)
    else:
        fail(session, request, OUTCOME_STATUS.get(result, otherwise))
