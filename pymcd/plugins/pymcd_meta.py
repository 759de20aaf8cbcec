"""pymcd's meta commands (mg, ms, md, ma, mn, me), exposed to twisted.plugin discovery."""

from pymcd.commands.meta import MA, MD, ME, MG, MN, MS

__all__ = ["MG", "MS", "MD", "MA", "MN", "ME"]
