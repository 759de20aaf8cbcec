"""The verb and opcode tables, built once at start-up from twisted.plugin discovery."""

from __future__ import annotations

from typing import Dict, FrozenSet, Iterable, Optional, Tuple

from twisted.logger import Logger
from twisted.plugin import getPlugins

from pymcd.interfaces import IBinaryCommand, IBinaryValueCommand, ICommand, ITextCommand

log = Logger()

# What the text machine needs per verb, unpacked in one step:
# (command, least tokens, most tokens, carries a data block).
TextDispatch = Tuple[ITextCommand, int, int, bool]
# And the binary machine per opcode: (command, the request shapes it accepts or None when it
# checks them itself, whether its begin runs before the value is read).
BinaryDispatch = Tuple[IBinaryCommand, Optional[FrozenSet[Tuple[int, bool, bool]]], bool]
UNBOUNDED = 1 << 30


class CommandRegistry:
    """Maps text verbs and binary opcodes to the command objects serving them.

    A later plugin may replace a name an earlier one serves; that is logged, so a third party can
    deliberately override a built-in command but never does so silently.
    """

    def __init__(self, commands: Iterable[ICommand] = ()) -> None:
        self.text: Dict[bytes, ITextCommand] = {}
        self.text_dispatch: Dict[bytes, TextDispatch] = {}
        self.binary: Dict[int, IBinaryCommand] = {}
        self.binary_dispatch: Dict[int, BinaryDispatch] = {}
        for command in commands:
            self.add(command)

    def add(self, command: ICommand) -> None:
        if ITextCommand.providedBy(command):
            table = self.text
        elif IBinaryCommand.providedBy(command):
            table = self.binary
        else:
            raise TypeError("%r provides neither ITextCommand nor IBinaryCommand" % (command,))
        for name in command.names:
            if name in table and table[name] is not command:
                log.info("command {name!r} now served by {command!r}", name=name, command=command)
            table[name] = command
            if table is self.text:
                low, high = command.arity
                self.text_dispatch[name] = (
                    command, low, UNBOUNDED if high is None else high, command.takes_value
                )
            else:
                self.binary_dispatch[name] = (
                    command, getattr(command, "shapes", None),
                    IBinaryValueCommand.providedBy(command),
                )

    @classmethod
    def discover(cls, package: Optional[object] = None) -> "CommandRegistry":
        """Every ICommand found in the ``pymcd.plugins`` drop-in package (or ``package``)."""
        if package is None:
            import pymcd.plugins as package
        builtin, others = [], []
        for command in getPlugins(ICommand, package):
            (builtin if type(command).__module__.startswith("pymcd.") else others).append(command)
        # Built-ins first, so a third-party plugin serving the same name wins.
        return cls(builtin + others)
