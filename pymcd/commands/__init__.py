"""pymcd's own commands. They are found like any third party's, as plugins (see pymcd.plugins)."""
