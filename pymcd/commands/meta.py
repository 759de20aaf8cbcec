"""The meta commands: mg, ms, md, ma, mn and me, replying byte for byte as memcached 1.6.18.

Each command parses its flags with :mod:`pymcd.protocol.meta_flags`, runs against the same store
as the classic and binary commands (a meta item *is* a classic item), and builds its reply by
walking the flag tokens in request order, as memcached does.

Two kinds of replies leave memcached differently, and pymcd keeps the difference because the
-vv trace shows it: errors, ``mn`` and ``me``'s miss go through ``out_string`` (traced, and never
hidden), while status lines (``HD``, ``VA``, ``EN``, ``NF``...) are queued directly (not traced)
and may be suppressed by the request's ``q`` flag. Which status ``q`` hides depends on the
command: ``EN`` for mg, ``HD`` for ms and md, success on an existing counter for ma.
"""

from __future__ import annotations

from typing import List, Optional

from pymcd.commands.base import BAD_FORMAT, KEY_MAX_LENGTH, TextCommand, trace_lookup
from pymcd.commands.storage import NO_MEMORY, TOO_LARGE
from pymcd.protocol.meta_flags import (
    MetaFlags,
    MetaRequestError,
    check_opaque,
    decode_base64_key,
    encode_key,
    key_text,
    parse_meta_flags,
    too_many_tokens,
)
from pymcd.c_numbers import parse_data_length
from pymcd.store import outcomes
from pymcd.store.items import SEGMENTS, TOKEN_SENT
from pymcd.event_log import ITEM_EVENTS, log_lookup, log_store

CRLF = b"\r\n"
UINT32 = 2**32
MG_TOO_LONG = b"CLIENT_ERROR options flags are too long"
TOO_LONG = b"CLIENT_ERROR options flags too long"
INVALID_OR_DUPLICATE = b"CLIENT_ERROR invalid or duplicate flag"
INVALID_MS_MODE = b"CLIENT_ERROR invalid mode for ms M token"
INVALID_MA_MODE = b"CLIENT_ERROR invalid mode for ma M token"
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value"
DELTA_NO_MEMORY = b"SERVER_ERROR out of memory"
VIVIFY_NO_MEMORY = b"SERVER_ERROR Out of memory allocating new item"

# ms's M<mode> switch; no M means set.
STORE_MODES = {
    0: outcomes.SET,
    ord("S"): outcomes.SET,
    ord("E"): outcomes.ADD,
    ord("A"): outcomes.APPEND,
    ord("P"): outcomes.PREPEND,
    ord("R"): outcomes.REPLACE,
}
# ma's M<mode> switch: True increments.
DELTA_MODES = {0: True, ord("I"): True, ord("+"): True, ord("D"): False, ord("-"): False}
STORE_STATUS = {
    outcomes.STORED: b"HD",
    outcomes.EXISTS: b"EX",
    outcomes.NOT_FOUND: b"NF",
    outcomes.NOT_STORED: b"NS",
}


def _ttl_field(exptime: int, now: int) -> bytes:
    """The ``t`` flag: seconds left (as memcached's unsigned print), or -1 for no expiry."""
    if exptime == 0:
        return b" t-1"
    return b" t%d" % ((exptime - now) % UINT32)


def _echo(flags: MetaFlags, key: bytes, key_binary: bool) -> List[bytes]:
    """The O and k flags every meta status echoes, in request order."""
    parts = []
    for token in flags.tokens:
        if token[0] == 0x4F:  # O
            parts.append(b" " + check_opaque(token))
        elif token[0] == 0x6B:  # k
            parts.append(b" k" + encode_key(key, key_binary))
    return parts


class MetaCommand(TextCommand):
    """Shared checks of the meta commands that carry no data block (mg, md, ma)."""

    arity = (2, None)
    too_long = TOO_LONG
    # md and ma report any flag error with one string; mg reports the parser's own.
    flag_error: Optional[bytes] = INVALID_OR_DUPLICATE

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            session.error(BAD_FORMAT)
            return
        if too_many_tokens(tokens):
            session.error(self.too_long + CRLF)
            return
        try:
            try:
                flags = parse_meta_flags(key, tokens[2:])
            except MetaRequestError as refused:
                if self.flag_error is None:
                    raise
                raise MetaRequestError(self.flag_error) from refused
            if session.server.event_log.flags & ITEM_EVENTS:
                log_lookup(session, flags.key)
            self.run(session, flags)
        except MetaRequestError as refused:
            session.error(refused.reply + CRLF)

    def run(self, session, flags: MetaFlags) -> None:
        raise NotImplementedError


class MetaGet(MetaCommand):
    """``mg <key> <flags>*``: get, gets, gat, touch and the stale/win recache protocol."""

    names = (b"mg",)
    too_long = MG_TOO_LONG
    flag_error = None

    def run(self, session, flags: MetaFlags) -> None:
        store = session.store
        key = flags.key
        trace_lookup(session, key)
        item = store.peek(key)
        created = False
        if item is None and flags.vivify_ttl is not None:
            # The placeholder item the winner will fill; memcached gives it no binary-key bit.
            result, _ = store.store(outcomes.ADD, key, 0, 0, b"", new_cas=flags.new_cas)
            if result == outcomes.STORED:
                item = store.peek(key)
                created = True
        if item is None:
            self._miss(session, flags)
            return
        parts = [b"VA %d" % item.nbytes if flags.value else b"HD"]
        try:
            won, touched = self._fill_flags(store, item, flags, created, parts)
        except MetaRequestError:
            # memcached bumps an item it fetched without the lock before it reads the flags,
            # so a flag refused later (a long opaque) still leaves the item fetched.
            if not flags.locked and not flags.no_update:
                store.bump(key)
            raise
        # Z before W, so that no reply carries both.
        if item.token_sent:
            parts.append(b" Z")
        if item.stale:
            parts.append(b" X")
            won = won or not item.token_sent
        if won:
            parts.append(b" W")
            store.set_bits(key, add=TOKEN_SENT)
        parts.append(CRLF)
        if flags.value:
            parts += (item.value, CRLF)
            session.reply_bytes += len(item.value)
        session.out.append(b"".join(parts))
        if not flags.no_update:
            store.bump(key)
        self._count_hit(store, item, touched)

    @staticmethod
    def _fill_flags(store, item, flags: MetaFlags, created: bool, parts: List[bytes]):
        """The hit's flags in request order, appended to ``parts``; returns (won, touched)."""
        key = flags.key
        now = store.now
        exptime = item.exptime
        won = touched = False
        for token in flags.tokens:
            flag = token[0]
            if flag == 0x54:  # T: applied at once, as memcached writes it into the item
                touched = True
                store.set_exptime(key, flags.ttl)
                exptime = store.realtime(flags.ttl)
            elif flag == 0x4E:  # N
                if created:
                    store.set_exptime(key, flags.vivify_ttl)
                    exptime = store.realtime(flags.vivify_ttl)
                    won = True
            elif flag == 0x52:  # R: win the recache when the TTL left is below the token
                if (not item.token_sent and not created and exptime
                        and exptime < store.realtime(flags.recache_ttl)):
                    won = True
            elif flag == 0x73:  # s
                parts.append(b" s%d" % item.nbytes)
            elif flag == 0x74:  # t
                parts.append(_ttl_field(exptime, now))
            elif flag == 0x63:  # c
                parts.append(b" c%d" % item.cas)
            elif flag == 0x66:  # f
                parts.append(b" f%d" % item.flags)
            elif flag == 0x6C:  # l
                parts.append(b" l%d" % ((now - item.last_access) % UINT32))
            elif flag == 0x68:  # h
                parts.append(b" h1" if item.fetched else b" h0")
            elif flag == 0x4F:  # O
                parts.append(b" " + check_opaque(token))
            elif flag == 0x6B:  # k
                parts.append(b" k" + encode_key(item.key, item.key_binary))
        return won, touched

    @staticmethod
    def _miss(session, flags: MetaFlags) -> None:
        # Counted before the reply is built: a miss with a bad opaque is still a miss.
        # (The store derives cmd_get from hits and misses.)
        session.store.get_misses += 1
        line = b"".join([b"EN"] + _echo(flags, flags.key, flags.key_binary) + [CRLF])
        if not flags.quiet:
            session.out.append(line)

    @staticmethod
    def _count_hit(store, item, touched: bool) -> None:
        """memcached counts an mg hit as a touch when it carried T, else as a get hit."""
        if touched:
            store.cmd_touch += 1
            store.per_class["touch_hits"][item.clsid] += 1
        else:
            store.per_lru["hits"][item.clsid * SEGMENTS + item.lru] += 1


class MetaSet(TextCommand):
    """``ms <key> <datalen> <flags>*`` and its data block: set, add, replace, append, prepend, cas.

    The flags are parsed once to validate the line (so a refused block can be swallowed) and
    again when the block has arrived: the command interface hands execute() the tokens, not
    state from begin(), and parsing a few flags is cheaper than a side channel.
    """

    names = (b"ms",)
    takes_value = True
    arity = (2, None)

    def begin(self, session, tokens: List[bytes]) -> Optional[int]:
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH or len(tokens) == 2:
            session.error(BAD_FORMAT)
            return None
        if too_many_tokens(tokens):
            session.error(TOO_LONG + CRLF)
            return None
        length = parse_data_length(tokens[2])
        if length is None:
            session.error(BAD_FORMAT)
            return None
        try:
            flags = self._parse(tokens)
        except MetaRequestError as refused:
            session.error(refused.reply + CRLF)
            session.swallow(length + 2)
            return None
        store = session.store
        if not store.item_size_ok(len(flags.key), length, flags.client_flags):
            store.count_too_large()
            session.error(TOO_LARGE)
            session.swallow(length + 2)
            # Stale data must not outlive a failed store, whatever the mode.
            store.unlink(flags.key)
            return None
        return length

    @staticmethod
    def _parse(tokens: List[bytes]) -> MetaFlags:
        """The flags, checked in memcached's order: flags, then the mode, then the opaque."""
        flags = parse_meta_flags(tokens[1], tokens[3:])
        opaque_error = None
        try:
            # Building the echo is how memcached finds a long opaque; its mode error comes first.
            _echo(flags, flags.key, flags.key_binary)
        except MetaRequestError as refused:
            opaque_error = refused
        if flags.mode not in STORE_MODES:
            raise MetaRequestError(INVALID_MS_MODE)
        if opaque_error is not None:
            raise opaque_error
        return flags

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        flags = self._parse(tokens)
        store = session.store
        key = flags.key
        mode = STORE_MODES[flags.mode]
        cas = flags.compare_cas or 0
        if flags.compare_cas is not None and mode in (outcomes.SET, outcomes.REPLACE):
            mode = outcomes.CAS
        allow_stale = flags.set_stale and mode == outcomes.CAS
        trace_lookup(session, key)
        watching = session.server.event_log.flags & ITEM_EVENTS
        if watching:
            log_lookup(session, key)
        if cas and mode in (outcomes.APPEND, outcomes.PREPEND):
            result, new_cas = self._concatenate_if_cas_matches(store, mode, flags, value)
        else:
            result, new_cas = store.store(
                mode, key, flags.client_flags, flags.ttl or 0, value, cas,
                new_cas=flags.new_cas, allow_stale=allow_stale, key_binary=flags.key_binary,
            )
        if watching:
            log_store(session, key, result, mode, flags.client_flags, flags.ttl or 0, len(value))
        if result in (outcomes.TOO_LARGE, outcomes.NO_MEMORY):
            store.unlink(key)
            session.error(TOO_LARGE if result == outcomes.TOO_LARGE else NO_MEMORY)
            return
        if result == outcomes.STORED and flags.quiet:
            return
        parts = [STORE_STATUS[result]]
        for token in flags.tokens:
            flag = token[0]
            if flag == 0x4F:  # O
                parts.append(b" " + token)
            elif flag == 0x6B:  # k
                parts.append(b" k" + encode_key(key, flags.key_binary))
            elif flag == 0x63:  # c: the new CAS, 0 when nothing was stored
                parts.append(b" c%d" % new_cas)
        parts.append(CRLF)
        session.out.append(b"".join(parts))

    @staticmethod
    def _concatenate_if_cas_matches(store, mode: int, flags: MetaFlags, value: bytes):
        """Append or prepend with a CAS: memcached's simpler check, not a CAS store.

        A missing item is NS and a mismatch EX, and neither counts as a CAS miss or bad value.
        """
        item = store.peek(flags.key)
        if item is None:
            return outcomes.NOT_STORED, 0
        if item.cas != flags.compare_cas:
            return outcomes.EXISTS, 0
        return store.store(mode, flags.key, 0, 0, value, new_cas=flags.new_cas)


class MetaDelete(MetaCommand):
    """``md <key> <flags>*``: delete, or with I mark stale, or with x keep an empty item."""

    names = (b"md",)

    def run(self, session, flags: MetaFlags) -> None:
        store = session.store
        key = flags.key
        echo = _echo(flags, key, flags.key_binary)
        trace_lookup(session, key)
        item = store.peek(key)
        if item is None:
            store.delete_misses += 1
            status = b"NF"
        elif flags.compare_cas is not None and item.cas != flags.compare_cas:
            store.delete_misses += 1
            status = b"EX"
        else:
            status = b"HD"
            if flags.remove_value:
                store.store(outcomes.SET, key, flags.client_flags, flags.ttl or 0, b"",
                            new_cas=flags.new_cas, key_binary=item.key_binary)
            if flags.set_stale:
                if flags.ttl is not None:
                    store.set_exptime(key, flags.ttl)
                store.mark_stale(key)
            elif not flags.remove_value:
                store.delete(key)
            if flags.quiet:
                return
        session.out.append(b"".join([status] + echo + [CRLF]))


class MetaArithmetic(MetaCommand):
    """``ma <key> <flags>*``: incr and decr, with auto-create (N, J), CAS and TTL."""

    names = (b"ma",)

    def run(self, session, flags: MetaFlags) -> None:
        incr = DELTA_MODES.get(flags.mode)
        if incr is None:
            raise MetaRequestError(INVALID_MA_MODE)
        store = session.store
        key = flags.key
        vivify = flags.vivify_ttl is not None
        held = store.peek(key)
        existed = not vivify or held is not None
        # memcached answers t from the item it holds, even one a same-second flush_all has
        # already flushed; a counter it creates starts with exptime 0. Looking again after the
        # delta would reclaim that flushed item, which memcached leaves counted until touched.
        exptime = 0 if held is None else held.exptime
        trace_lookup(session, key)
        if not existed:
            # Creating the counter looks the key up once more, as memcached's add does.
            trace_lookup(session, key)
        result, number, cas = store.delta(
            key, incr, flags.delta, initial=flags.initial if vivify else None,
            cas=flags.compare_cas or 0,
        )
        if result == outcomes.DELTA_NON_NUMERIC:
            raise MetaRequestError(NON_NUMERIC)
        if result == outcomes.NO_MEMORY:
            raise MetaRequestError(DELTA_NO_MEMORY if existed else VIVIFY_NO_MEMORY)
        if result != outcomes.DELTA_OK:
            status = b"EX" if result == outcomes.EXISTS else b"NF"
            echo = _echo(flags, key, flags.key_binary)
            session.out.append(b"".join([status] + echo + [CRLF]))
            return
        self._reply(session, flags, number, cas, exptime, created=not existed)

    @staticmethod
    def _reply(session, flags: MetaFlags, number: int, cas: int, exptime: int,
               created: bool) -> None:
        store = session.store
        key = flags.key
        digits = b"%d" % number
        parts = [b"VA %d" % len(digits) if flags.value else b"HD"]
        for token in flags.tokens:
            flag = token[0]
            if flag == 0x63:  # c
                parts.append(b" c%d" % cas)
            elif flag == 0x74:  # t
                parts.append(_ttl_field(exptime, store.now))
            elif flag == 0x54 or (flag == 0x4E and created):  # T, or N on a new counter
                ttl = flags.ttl if flag == 0x54 else flags.vivify_ttl
                store.set_exptime(key, ttl)
                exptime = store.realtime(ttl)
            elif flag == 0x4F:  # O
                parts.append(b" " + check_opaque(token))
            elif flag == 0x6B:  # k
                parts.append(b" k" + encode_key(key, flags.key_binary))
        # q hides a delta applied to an existing counter; memcached still answers a creation.
        if flags.quiet and not created:
            return
        parts.append(CRLF)
        if flags.value:
            parts += (digits, CRLF)
        session.out.append(b"".join(parts))


class MetaNoOp(TextCommand):
    """``mn``: answers ``MN``; clients end a pipeline of quiet requests with it."""

    names = (b"mn",)
    writes_at_once = True

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        session.reply(b"MN\r\n")


class MetaDebug(TextCommand):
    """``me <key> [b]``: an item's internals in one human-readable line."""

    names = (b"me",)

    def execute(self, session, tokens: List[bytes], value: Optional[bytes]) -> None:
        key = tokens[1] if len(tokens) > 1 else b""
        if len(tokens) < 2 or len(key) > KEY_MAX_LENGTH:
            session.error(BAD_FORMAT)
            return
        if len(tokens) > 2 and tokens[2] == b"b":
            key = decode_base64_key(key)
            if key is None:
                session.error(BAD_FORMAT)
                return
        # memcached counts only the lookups, not the refused lines.
        session.server.stats.cmd_meta += 1
        store = session.store
        trace_lookup(session, key)
        item = store.peek(key)
        if item is None:
            session.reply(b"EN\r\n")
            return
        now = store.now
        session.out.append(b"ME %s exp=%d la=%d cas=%d fetch=%s cls=%d size=%d\r\n" % (
            key_text(item.key, item.key_binary),
            -1 if item.exptime == 0 else now - item.exptime,
            now - item.last_access,
            item.cas,
            b"yes" if item.fetched else b"no",
            item.clsid,
            item.total_size,
        ))


MG = MetaGet()
MS = MetaSet()
MD = MetaDelete()
MA = MetaArithmetic()
MN = MetaNoOp()
ME = MetaDebug()
