"""Drop-in directory for command plugins.

Any ``pymcd/plugins/`` directory on ``sys.path`` is searched, so a third party adds a command by
shipping a module there that exposes objects providing :class:`pymcd.interfaces.ICommand`.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # type: ignore[name-defined]
__all__: list = []
