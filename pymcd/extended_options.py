"""memcached's ``-o key[=value],...`` extended options, with its validation messages."""

from __future__ import annotations

from typing import Callable, Dict, Optional

from pymcd.options import UsageError
from pymcd.settings import Settings

Setter = Callable[[Settings, Optional[str]], None]


def _required(name: str, value: Optional[str], missing: str) -> str:
    if value is None or value == "":
        raise UsageError(missing)
    return value


def _number(name: str, missing: str, check: Optional[Callable[[float], bool]] = None,
            invalid: str = "", cast: Callable = int, target: str = "store") -> Setter:
    """A numeric option stored on ``settings.<target>.<name>`` (or on settings itself)."""

    def setter(settings: Settings, value: Optional[str]) -> None:
        text = _required(name, value, missing)
        try:
            number = cast(text)
        except ValueError:
            raise UsageError(invalid or missing)
        if check is not None and not check(number):
            raise UsageError(invalid)
        owner = settings.store if target == "store" else settings
        setattr(owner, name, number)

    return setter


def _switch(name: str, on: bool, target: str = "store") -> Setter:
    def setter(settings: Settings, value: Optional[str]) -> None:
        setattr(settings.store if target == "store" else settings, name, on)

    return setter


def _text(name: str, missing: str) -> Setter:
    def setter(settings: Settings, value: Optional[str]) -> None:
        setattr(settings, name, _required(name, value, missing))

    return setter


def _accepted(settings: Settings, value: Optional[str]) -> None:
    """Options that exist in memcached but have no meaning here (extstore, hash tuning...)."""


def _hashpower(settings: Settings, value: Optional[str]) -> None:
    text = _required("hashpower", value, "Missing numeric argument for hashpower")
    power = int(text) if text.isdigit() else 0
    if power < 12:
        raise UsageError("Initial hashtable multiplier of %d is too low" % power)
    if power > 32:
        raise UsageError("Initial hashtable multiplier of %d is too high\n"
                         "Choose a value based on \"STAT hash_power_level\" from a running instance"
                         % power)
    settings.store.hashpower_init = power


def _hash_algorithm(settings: Settings, value: Optional[str]) -> None:
    text = _required("hash_algorithm", value, "Missing hash_algorithm argument")
    if text not in ("jenkins", "murmur3", "xxh3"):
        raise UsageError("Unknown hash_algorithm option (jenkins, murmur3)")
    settings.hash_algorithm = text


def _kilobytes(name: str, missing: str, invalid: str, target: str = "settings") -> Setter:
    def setter(settings: Settings, value: Optional[str]) -> None:
        text = _required(name, value, missing)
        if not text.isdigit():
            raise UsageError(invalid)
        owner = settings.store if target == "store" else settings
        setattr(owner, name, int(text) * 1024)

    return setter


def _temporary_ttl(settings: Settings, value: Optional[str]) -> None:
    """Naming a temporary_ttl turns the TEMP LRU on, as in memcached."""
    _number("temporary_ttl", "Missing temporary_ttl argument")(settings, value)
    settings.store.temp_lru = True


def _lru_maintainer(on: bool) -> Setter:
    """The maintainer thread and the segmented LRU go together on the command line."""

    def setter(settings: Settings, value: Optional[str]) -> None:
        settings.store.lru_maintainer = settings.store.lru_segmented = on

    return setter


def _ssl_verify_mode(settings: Settings, value: Optional[str]) -> None:
    text = _required("ssl_verify_mode", value, "Missing ssl_verify_mode argument")
    if not text.isdigit():
        raise UsageError("could not parse argument to ssl_verify_mode")
    mode = int(text)
    if mode > 3:
        raise UsageError("Invalid ssl_verify_mode. Use help to see valid options.")
    settings.ssl_verify_mode = mode


def _ssl_min_version(settings: Settings, value: Optional[str]) -> None:
    names = {"0": "tlsv1.0", "1": "tlsv1.1", "2": "tlsv1.2", "3": "tlsv1.3"}
    text = _required("ssl_min_version", value, "Missing ssl_min_version argument")
    if text not in names and text not in names.values():
        raise UsageError("Invalid ssl_min_version. Use help to see valid options.")
    settings.ssl_min_version = names.get(text, text)


def _slab_automove(settings: Settings, value: Optional[str]) -> None:
    """A bare ``slab_automove`` means mode 1, as in memcached."""
    if value is None:
        settings.store.slab_automove = 1
        return
    _number("slab_automove", "Missing slab_automove argument", lambda n: 0 <= n <= 2,
            "slab_automove must be between 0 and 2")(settings, value)


def _slab_chunk_max(settings: Settings, value: Optional[str]) -> None:
    """Remembered as given: ``no_modern`` and a large ``-I`` then leave it alone."""
    _number("slab_chunk_max", "Missing slab_chunk_max argument",
            invalid="could not parse argument to slab_chunk_max")(settings, value)
    settings.slab_chunk_max_given = True


def _no_chunked_items(settings: Settings, value: Optional[str]) -> None:
    """Items up to a whole page in one chunk."""
    settings.store.slab_chunk_max = settings.store.slab_page_size


def _no_modern(settings: Settings, value: Optional[str]) -> None:
    """memcached's pre-1.5 defaults: whole-page chunks, one flat LRU, no background threads."""
    store = settings.store
    if not settings.slab_chunk_max_given:
        store.slab_chunk_max = store.slab_page_size
    store.slab_reassign = False
    store.slab_automove = 0
    store.lru_segmented = store.lru_maintainer = store.lru_crawler = False
    settings.maxconns_fast = False
    settings.hash_algorithm = "jenkins"


OPTIONS: Dict[str, Setter] = {
    "maxconns_fast": _switch("maxconns_fast", True, "settings"),
    "no_maxconns_fast": _switch("maxconns_fast", False, "settings"),
    "hashpower": _hashpower,
    "no_hashexpand": _accepted,
    "slab_reassign": _switch("slab_reassign", True),
    "no_slab_reassign": _switch("slab_reassign", False),
    "slab_automove": _slab_automove,
    "no_slab_automove": lambda s, v: setattr(s.store, "slab_automove", 0),
    "slab_automove_ratio": _number("slab_automove_ratio", "Missing slab_automove_ratio argument",
                                   lambda n: 0 < n <= 1, "slab_automove_ratio must be > 0 and < 1",
                                   float),
    "slab_automove_window": _number("slab_automove_window",
                                    "Missing slab_automove_window argument",
                                    lambda n: n > 2, "slab_automove_window must be > 2"),
    "slab_automove_freeratio": _number("slab_automove_freeratio",
                                       "Missing slab_automove_freeratio argument",
                                       invalid="could not parse argument to slab_automove_freeratio",
                                       cast=float),
    "tail_repair_time": _number("tail_repair_time", "Missing numeric argument for tail_repair_time",
                                lambda n: n == 0 or n >= 10,
                                "Cannot set tail_repair_time to less than 10 seconds",
                                target="settings"),
    "hash_algorithm": _hash_algorithm,
    "proxy_config": _text("proxy_config", "Missing proxy_config file argument"),
    "lru_crawler": _switch("lru_crawler", True),
    "no_lru_crawler": _switch("lru_crawler", False),
    "lru_crawler_sleep": _number("lru_crawler_sleep", "Missing lru_crawler_sleep value",
                                 lambda n: 0 <= n <= 1000000,
                                 "LRU crawler sleep must be between 0 and 1 second"),
    "lru_crawler_tocrawl": _number("lru_crawler_tocrawl", "Missing lru_crawler_tocrawl value",
                                   lambda n: 0 <= n < 2**32,
                                   "lru_crawler_tocrawl takes a numeric 32bit value"),
    "lru_maintainer": _lru_maintainer(True),
    "no_lru_maintainer": _lru_maintainer(False),
    "hot_lru_pct": _number("hot_lru_pct", "Missing hot_lru_pct argument", lambda n: 1 < n < 80,
                           "hot_lru_pct must be > 1 and < 80"),
    "warm_lru_pct": _number("warm_lru_pct", "Missing warm_lru_pct argument", lambda n: 1 < n < 80,
                            "warm_lru_pct must be > 1 and < 80"),
    "hot_max_factor": _number("hot_max_factor", "Missing hot_max_factor argument",
                              lambda n: n > 0, "hot_max_factor must be > 0", float),
    "warm_max_factor": _number("warm_max_factor", "Missing warm_max_factor argument",
                               lambda n: n > 0, "warm_max_factor must be > 0", float),
    "temporary_ttl": _temporary_ttl,
    "idle_timeout": _number("idle_timeout", "Missing numeric argument for idle_timeout",
                            target="settings"),
    "watcher_logbuf_size": _kilobytes("watcher_logbuf_size", "Missing watcher_logbuf_size argument",
                                      "could not parse argument to watcher_logbuf_size"),
    "worker_logbuf_size": _kilobytes("worker_logbuf_size", "Missing worker_logbuf_size argument",
                                     "could not parse argument to worker_logbuf_size"),
    # Bytes, whatever memcached's -h says ("kilobytes"): 1.6.18 stores the number as given.
    "slab_chunk_max": _slab_chunk_max,
    "slab_sizes": _accepted,
    "track_sizes": _switch("track_sizes", True),
    "inline_ascii_resp": _accepted,
    "no_inline_ascii_resp": _accepted,
    "no_chunked_items": _no_chunked_items,
    "read_buf_mem_limit": _number("read_buf_mem_limit", "Missing read_buf_mem_limit argument",
                                  target="settings"),
    "modern": _accepted,
    "no_modern": _no_modern,
    "sock_cookie_id": _accepted,
    "drop_privileges": _accepted,
    "no_drop_privileges": _accepted,
    "relaxed_privileges": _accepted,
    "memory_file": _text("memory_file", "Missing memory_file argument"),  # -e, as a suboption
    "ssl_chain_cert": _text("ssl_chain_cert", "Missing ssl_chain_cert argument"),
    "ssl_key": _text("ssl_key", "Missing ssl_key argument"),
    "ssl_verify_mode": _ssl_verify_mode,
    "ssl_keyformat": _number("ssl_keyformat", "Missing ssl_keyformat argument",
                             invalid="could not parse argument to ssl_keyformat", target="settings"),
    "ssl_ciphers": _text("ssl_ciphers", "Missing ssl_ciphers argument"),
    "ssl_ca_cert": _text("ssl_ca_cert", "Missing ssl_ca_cert argument"),
    "ssl_wbuf_size": _kilobytes("ssl_wbuf_size", "Missing ssl_wbuf_size argument",
                                "could not parse argument to ssl_wbuf_size"),
    "ssl_session_cache": _switch("ssl_session_cache", True, "settings"),
    "ssl_kernel_tls": _accepted,
    "ssl_min_version": _ssl_min_version,
}
EXTSTORE_OPTIONS = (
    "ext_path ext_page_size ext_wbuf_size ext_threads ext_io_depth ext_item_size ext_item_age "
    "ext_low_ttl ext_recache_rate ext_compact_under ext_drop_under ext_max_frag ext_max_sleep "
    "ext_drop_unread"
).split()
OPTIONS.update({name: _accepted for name in EXTSTORE_OPTIONS})


def apply_extended_options(settings: Settings, text: str) -> None:
    """Apply a comma separated ``-o`` list; an unknown key is memcached's ``Illegal suboption``."""
    for item in text.split(","):
        if not item:
            continue
        name, sep, value = item.partition("=")
        setter = OPTIONS.get(name)
        if setter is None:
            raise UsageError('Illegal suboption "%s"' % item)
        setter(settings, value if sep else None)
