"""A third party's command, dropped into a pymcd/plugins directory, is found and served."""

from __future__ import annotations

import os
import textwrap

from support import exchange, start_pymcd

PLUGIN = textwrap.dedent(
    '''
    from pymcd.commands.base import TextCommand


    class Hello(TextCommand):
        names = (b"hello",)

        def execute(self, session, tokens, value):
            session.reply(b"HELLO " + b" ".join(tokens[1:]) + b"\\r\\n")


    class Upper(TextCommand):
        """A data-carrying command: ``upper <bytes>`` then a block."""

        names = (b"upper",)
        takes_value = True
        arity = (2, 2)

        def begin(self, session, tokens):
            return int(tokens[1])

        def execute(self, session, tokens, value):
            session.reply(value.upper() + b"\\r\\n")


    hello = Hello()
    upper = Upper()
    '''
)


def test_third_party_plugin_from_a_temporary_directory(tmp_path):
    plugins = tmp_path / "pymcd" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "hello_command.py").write_text(PLUGIN)
    env = {"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with start_pymcd(env=env) as server, server.connect() as sock:
        assert exchange(sock, b"hello world\r\n", b"\r\n") == b"HELLO world\r\n"
        assert exchange(sock, b"upper 5\r\nabcde\r\n", b"\r\n") == b"ABCDE\r\n"
        # The built-ins are still there.
        assert exchange(sock, b"version\r\n", b"\r\n") == b"VERSION 1.6.18\r\n"


def test_without_the_plugin_the_verb_is_unknown(conn):
    assert exchange(conn, b"hello world\r\n", b"\r\n") == b"ERROR\r\n"
