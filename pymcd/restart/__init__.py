"""Warm restart (``-e memory-file``): the cache's pages in a shared file that outlives the process.

``memory_file.py`` maps the file, ``meta.py`` reads and writes ``<file>.meta`` (what a restart
must find unchanged, and the state pages do not hold), ``warm.py`` puts a store together from
both at start and saves what it needs at a graceful stop. The store knows none of this: it is
handed pages, and :meth:`pymcd.store.pages.ItemPages.adopt` takes over the items in them.
"""
