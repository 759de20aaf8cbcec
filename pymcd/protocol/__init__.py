"""Sans-IO protocol machines: bytes in, commands run, reply bytes queued on the session."""
