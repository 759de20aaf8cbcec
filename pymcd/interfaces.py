"""The interfaces a command plugin provides.

pymcd finds every command, its own and a third party's, with ``twisted.plugin.getPlugins`` over the
``pymcd.plugins`` package. A plugin module there exposes module-level objects that provide
:class:`ITextCommand` (a verb on a text line: classic and meta commands) or
:class:`IBinaryCommand` (an opcode of the binary protocol).

Commands never see a socket: they get a :class:`pymcd.session.Session` (the connection's
protocol-independent state: store, server context, output list) and the parsed request, call the
store, and append reply bytes to ``session.out``.
"""

from __future__ import annotations

from twisted.plugin import IPlugin
from zope.interface import Attribute


class ICommand(IPlugin):
    """A command family: one object serving one or more request names.

    It extends IPlugin because twisted.plugin only collects objects providing IPlugin.
    """

    names = Attribute(
        "The names it serves: bytes verbs (b'get') for text commands, int opcodes for binary."
    )


class ITextCommand(ICommand):
    """A command of the text protocol (classic or meta), one request per line."""

    takes_value = Attribute(
        "True when the request line announces a data block (set, cas, ms...). Then begin() is "
        "called on the line first, and execute() once the block has arrived."
    )
    allowed_before_auth = Attribute(
        "True when the command may run before the connection has authenticated (-Y/-S)."
    )
    writes_at_once = Attribute(
        "True for get-like commands memcached flushes at once (only the -vvv trace shows it)."
    )

    def begin(session, tokens):
        """Validate a data-carrying request line before its data block is read.

        Returns the block's length (without CRLF) to read, after which execute() runs; or None
        when the command has already replied with an error, in which case it may have called
        ``session.swallow(n)`` to discard the announced block as memcached does.
        """

    def execute(session, tokens, value):
        """Run the command.

        ``tokens`` is the request line split on spaces (``tokens[0]`` is the verb); ``value`` is
        the data block without its CRLF, or None for commands without one. Replies are appended
        to ``session.out``.
        """


class IBinaryCommand(ICommand):
    """A command of the binary protocol, dispatched on the request header's opcode."""

    allowed_before_auth = Attribute(
        "True when the opcode may run before SASL authentication (VERSION, SASL_*)."
    )
    shapes = Attribute(
        "Optional: the (extras length, has a key, has a value) of every request the opcode "
        "accepts, as a set. The machine answers any other shape as memcached does (Invalid "
        "arguments, then close) without calling the command; without it, the command checks."
    )

    def execute(session, request):
        """Run the command for a parsed :class:`pymcd.protocol.binary.BinaryRequest`,
        appending the response packets to ``session.out``."""


class IBinaryValueCommand(IBinaryCommand):
    """A binary command that checks its request before the machine reads the value.

    Commands that only provide :class:`IBinaryCommand` get their whole request at once; this
    interface lets a command check the header, extras and key first (and refuse a value without
    reading it), as memcached's SET, APPEND and SASL handlers do.
    """

    def begin(session, request):
        """Check ``request`` (extras and key present and of an accepted shape, value not read).

        Returns the number of value bytes to read before ``execute`` runs (0 to run it at once),
        or None when it has already replied, in which case it may have called
        ``session.swallow(n)`` to discard the value, or ``session.quit()`` on a protocol error.
        """
