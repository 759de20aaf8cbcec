"""memcached's command line, parsed into :class:`pymcd.settings.Settings`.

Both entry points use this parser: the ``pymcd`` script (memcached's flags, so scripts written for
memcached start pymcd unchanged) and ``twistd pymcd`` (the same flags, plus repeatable ``--port``
endpoint strings in Twisted's syntax). Errors raise :class:`UsageError` with memcached's wording.
"""

from __future__ import annotations

import getopt
import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from pymcd import __version__
from pymcd.environment import apply_environment
from pymcd.settings import PAGE_SIZE, Settings
from pymcd.startup import StartupError

SHORT_OPTIONS = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:"
LONG_OPTIONS = {
    "unix-mask=": "a", "enable-shutdown": "A", "enable-ssl": "Z", "tls": "Z", "port=": "p",
    "unix-socket=": "s", "udp-port=": "U", "memory-limit=": "m", "disable-evictions": "M",
    "conn-limit=": "c", "lock-memory": "k", "help": "h", "license": "i", "version": "V",
    "enable-coredumps": "r", "verbose": "v", "daemon": "d", "listen=": "l", "user=": "u",
    "pidfile=": "P", "slab-growth-factor=": "f", "slab-min-size=": "n", "threads=": "t",
    "enable-largepages": "L", "max-reqs-per-event=": "R", "disable-cas": "C",
    "listen-backlog=": "b", "protocol=": "B", "max-item-size=": "I", "enable-sasl": "S",
    "disable-flush-all": "F", "disable-dumping": "X", "disable-watch": "W", "auth-file=": "Y",
    "memory-file=": "e", "extended=": "o", "napi_ids=": "N", "sasl-pwdb=": "sasl-pwdb",
    "stock-reactor": "stock-reactor", "proxy-config=": "proxy-config",
    "http=": "http", "metrics=": "http",
}


class UsageError(StartupError):
    """A bad command line: ``str(error)`` is memcached's message, ``exit_code`` its status."""


class EarlyExit(Exception):
    """-h, -i and -V: print ``text`` and exit 0 without starting a server."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _is_integer(value: str) -> bool:
    """A -p that is a number (``-1``: any free port) rather than a Twisted endpoint string."""
    text = value.strip()
    return text.lstrip("+-").isdigit() and text[:1] != "+"


def _int(value: str) -> int:
    """atoi(): memcached reads leading digits and ignores the rest."""
    digits = ""
    for i, ch in enumerate(value.strip()):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _size_with_unit(value: str) -> int:
    """-I takes 1m, 512k or plain bytes."""
    unit = value[-1:].lower()
    if unit == "k":
        return _int(value[:-1]) * 1024
    if unit == "m":
        return _int(value[:-1]) * 1024 * 1024
    return _int(value)


def parse_arguments(argv: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Parse memcached's flags and the environment variables it reads (``os.environ`` unless
    given); raise UsageError or EarlyExit as memcached would exit."""
    settings = Settings()
    try:
        options, extra = getopt.gnu_getopt(list(argv), SHORT_OPTIONS, list(LONG_OPTIONS))
    except getopt.GetoptError as error:
        raise UsageError("Illegal argument \"%s\"" % (error.opt or error.msg))
    if extra:
        raise UsageError("Illegal argument \"%s\"" % extra[0])
    numeric_port: Optional[int] = None
    for flag, value in options:
        key = flag.lstrip("-")
        key = LONG_OPTIONS.get(key + "=", LONG_OPTIONS.get(key, key))
        if key == "p":
            if not _is_integer(value):
                settings.ports.append(value)
            elif flag == "--port" and numeric_port is not None:
                # --port repeats (twistd style); memcached's -p just overrides.
                settings.ports.append("tcp:%d" % int(value))
            else:
                numeric_port = int(value)
        else:
            _apply_flag(settings, key, value)
    if numeric_port is not None:
        settings.tcp_port = numeric_port
    elif settings.udp_port and any(flag in ("-U", "--udp-port") for flag, _ in options):
        settings.tcp_port = settings.udp_port  # memcached: -U alone moves the TCP port too
    settings.tcp_port_given = numeric_port is not None
    _check_item_size(settings)
    _check_sasl(settings, any(flag in ("-B", "--protocol") for flag, _ in options))
    if settings.auth_file:
        _check_ascii_auth(settings, any(flag in ("-B", "--protocol") for flag, _ in options))
    if settings.proxy_config:
        _check_proxy_config(settings.proxy_config)
    apply_environment(settings, os.environ if environ is None else environ)
    return settings


def _check_proxy_config(path: str) -> None:
    """A proxy config that does not load stops the start, with the reason."""
    from pymcd.proxy.routelib import ConfigError
    from pymcd.proxy.service import check_config

    try:
        check_config(path)
    except ConfigError as error:
        raise UsageError("Failed to load proxy config: %s" % error)


def _check_ascii_auth(settings: Settings, protocol_given: bool) -> None:
    """-Y pins the text protocol, refuses UDP and must name a readable file, as in memcached."""
    from pymcd.auth.authfile import AuthFileError, read_entries

    if not protocol_given:
        settings.binding_protocol = "ascii"
    elif settings.binding_protocol != "ascii":
        raise UsageError("ERROR: You cannot allow the BINARY protocol while using ascii "
                         "authentication tokens.", exit_code=64)
    if settings.udp_port:
        raise UsageError("Cannot use UDP with ascii authentication enabled (-U 0 to disable)",
                         exit_code=64)
    try:
        read_entries(settings.auth_file)
    except AuthFileError as error:
        raise UsageError(str(error))


def _check_sasl(settings: Settings, protocol_given: bool) -> None:
    """memcached's -S rules: SASL is binary-only, so -S implies -B binary and excludes UDP."""
    if not settings.sasl:
        return
    if not protocol_given:
        settings.binding_protocol = "binary"
    elif settings.binding_protocol != "binary":
        raise UsageError("ERROR: You cannot allow the ASCII protocol while using SASL.",
                         exit_code=64)
    if settings.udp_port:
        raise UsageError("ERROR: Cannot enable UDP while using binary SASL authentication.",
                         exit_code=64)
    _check_sasl_password_file(settings)


def _check_sasl_password_file(settings: Settings) -> None:
    """memcached's "Error initializing sasl." when there is nothing to check passwords against,
    with what to give: the file is read per attempt, but it must be readable at start-up."""
    from pymcd.auth.sasl import PASSWORD_FILE_VARIABLE, password_file_path

    path = password_file_path(settings.sasl_password_file)
    if path is None:
        raise UsageError("Error initializing sasl: -S needs a user:password file, named by "
                         "--sasl-pwdb FILE or the %s variable" % PASSWORD_FILE_VARIABLE)
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise UsageError("Error initializing sasl: cannot read the password file %s: %s"
                         % (path, error.strerror))


def _apply_flag(settings: Settings, key: str, value: str) -> None:
    store = settings.store
    if key == "h":
        raise EarlyExit(help_text())
    if key == "i":
        raise EarlyExit("pymcd is distributed under the MIT license; see its README.\n")
    if key == "V":
        raise EarlyExit("pymcd %s\n" % __version__)
    simple_flags: Dict[str, Callable[[], None]] = {
        "A": lambda: setattr(settings, "shutdown_command", True),
        "Z": lambda: setattr(settings, "ssl_enabled", True),
        "M": lambda: setattr(store, "evict_to_free", False),
        "C": lambda: setattr(store, "use_cas", False),
        "S": lambda: setattr(settings, "sasl", True),
        "F": lambda: setattr(settings, "flush_enabled", False),
        "X": lambda: setattr(store, "dump_enabled", False),
        "W": lambda: setattr(settings, "watch_enabled", False),
        "v": lambda: setattr(settings, "verbose", settings.verbose + 1),
        # Accepted for compatibility; a Python process has no use for them.
        "k": lambda: None, "r": lambda: setattr(settings, "core_dumps", True), "d": lambda: setattr(settings, "daemonize", True),
        "L": lambda: None,
    }
    if key in simple_flags:
        simple_flags[key]()
        return
    if key == "a":
        try:
            settings.unix_mask = int(value, 8)
        except ValueError:
            raise UsageError("Invalid unix socket mask: %s" % value)
    elif key == "s":
        settings.unix_socket = value
    elif key == "U":
        settings.udp_port = _int(value)
    elif key == "m":
        store.memory_limit = _int(value) * 1024 * 1024
    elif key == "c":
        settings.maxconns = _int(value)
        if settings.maxconns <= 0:
            raise UsageError("Maximum connections must be greater than 0")
    elif key == "l":
        settings.interface = value if not settings.interface else settings.interface + "," + value
    elif key == "u":
        settings.user = value
    elif key == "P":
        settings.pidfile = value
    elif key == "e":
        settings.memory_file = value
    elif key == "f":
        store.growth_factor = _float(value)
        if store.growth_factor <= 1.0:
            raise UsageError("Factor must be greater than 1")
    elif key == "n":
        store.chunk_size = _int(value)
        if store.chunk_size == 0:
            raise UsageError("Chunk size must be greater than 0")
    elif key == "t":
        settings.num_threads = _int(value)
        if settings.num_threads <= 0:
            raise UsageError("Number of threads must be greater than 0")
    elif key == "D":
        if not value:
            raise UsageError("No delimiter specified")
        settings.prefix_delimiter = value[0]
        settings.detail_enabled = True
    elif key == "R":
        settings.reqs_per_event = _int(value)
        if settings.reqs_per_event == 0:
            raise UsageError("Number of requests per event must be greater than 0")
    elif key == "b":
        settings.backlog = _int(value)
    elif key == "B":
        if value not in ("auto", "binary", "ascii"):
            raise UsageError(
                "Invalid value for binding protocol: %s\n"
                " -- should be one of auto, binary, or ascii" % value,
                exit_code=64,
            )
        settings.binding_protocol = value
    elif key == "I":
        store.item_size_max = _size_with_unit(value)
    elif key == "Y":
        settings.auth_file = value
    elif key == "N":
        settings.napi_ids = _int(value)
    elif key == "sasl-pwdb":
        settings.sasl_password_file = value
    elif key == "http":
        settings.http_endpoint = http_endpoint(value)
    elif key == "stock-reactor":
        settings.stock_reactor = True
    elif key == "proxy-config":
        settings.proxy_config = value
    elif key == "o":
        from pymcd.extended_options import apply_extended_options

        apply_extended_options(settings, value)


def http_endpoint(value: str) -> str:
    """``--http``'s endpoint: a bare port or ``tcp:PORT`` listens on 127.0.0.1 only, because the
    site shows keys and settings; ``tcp:PORT:interface=0.0.0.0`` opens it up deliberately."""
    if value.isdigit():
        value = "tcp:" + value
    kind = value.split(":", 1)[0]
    if kind in ("tcp", "tcp6", "ssl") and "interface=" not in value:
        value += ":interface=" + ("\\:\\:1" if kind == "tcp6" else "127.0.0.1")
    return value


def _check_item_size(settings: Settings) -> None:
    """memcached's start-up checks tying -I, -m and slab_chunk_max together."""
    store = settings.store
    if store.item_size_max < 1024:
        raise UsageError("Item max size cannot be less than 1024 bytes.")
    if store.item_size_max > store.memory_limit // 2:
        raise UsageError("Cannot set item size limit higher than 1/2 of memory max.")
    if store.item_size_max > 1024 * 1024 * 1024:
        raise UsageError("Cannot set item size limit higher than a gigabyte.")
    if store.item_size_max > 1024 * 1024 and not settings.slab_chunk_max_given:
        store.slab_chunk_max = store.slab_page_size // 2  # undoes no_modern's whole pages
    if store.slab_chunk_max > store.item_size_max:
        raise UsageError(
            "slab_chunk_max (bytes: %d) cannot be larger than -I (item_size_max %d)"
            % (store.slab_chunk_max, store.item_size_max)
        )
    if store.item_size_max % store.slab_chunk_max != 0:
        raise UsageError(
            "-I (item_size_max: %d) must be evenly divisible by slab_chunk_max (bytes: %d)"
            % (store.item_size_max, store.slab_chunk_max)
        )
    if PAGE_SIZE % store.slab_chunk_max != 0:
        raise UsageError(
            "slab_chunk_max (bytes: %d) must divide evenly into %d (slab_page_size)"
            % (store.slab_chunk_max, PAGE_SIZE)
        )


IGNORED = "accepted for compatibility; no effect in pymcd"

# memcached -h's layout and order: its flags, then -o's extended options, extstore's among them,
# then -N; pymcd's own flags last. Every row says its default; an accepted but ignored option
# says so.
HELP_ROWS = [
    ("-p, --port=<num|endpoint>", "TCP port to listen on (default: 11211); pymcd also takes a "
     "Twisted endpoint string (tcp:11311, unix:/tmp/mc.sock, ssl:...) and the flag repeats"),
    ("-U, --udp-port=<num>", "UDP port to listen on (default: 0, off)"),
    ("-s, --unix-socket=<file>", "UNIX socket to listen on (disables network support; "
     "default: none)"),
    ("-a, --unix-mask=<mask>", "access mask for UNIX socket, in octal (default: 700)"),
    ("-A, --enable-shutdown", "enable ascii \"shutdown\" command (default: disabled)"),
    ("-l, --listen=<addr>", "interface to listen on (default: INADDR_ANY); comma separated; "
     "if TLS/SSL is enabled, 'notls' prefix can be used to disable for specific listeners "
     "(-l notls:<ip>:<port>)"),
    ("-d, --daemon", "run as a daemon (default: foreground)"),
    ("-r, --enable-coredumps", "a daemon keeps its working directory, for core files "
     "(default: it moves to /)"),
    ("-u, --user=<user>", IGNORED + " (pymcd never switches user; run it as the user it "
     "should be)"),
    ("-m, --memory-limit=<num>", "item memory in megabytes (default: 64)"),
    ("-M, --disable-evictions", "return error on memory exhausted instead of evicting "
     "(default: evict)"),
    ("-c, --conn-limit=<num>", "max simultaneous connections (default: 1024)"),
    ("-k, --lock-memory", IGNORED),
    ("-v, --verbose", "verbose (print errors/warnings while in event loop; default: quiet)"),
    ("-vv", "very verbose (also print client commands/responses)"),
    ("-vvv", "extremely verbose (internal state transitions)"),
    ("-h, --help", "print this help and exit"),
    ("-i, --license", "print the license and exit"),
    ("-V, --version", "print version and exit"),
    ("-P, --pidfile=<file>", "save PID in <file> once listening; a daemon removes it on exit "
     "(default: none)"),
    ("-f, --slab-growth-factor=<num>", "chunk size growth factor (default: 1.25)"),
    ("-n, --slab-min-size=<bytes>", "min space used for key+value+flags (default: 48)"),
    ("-L, --enable-largepages", IGNORED),
    ("-D <char>", "delimiter between key prefixes and IDs for per-prefix stats; turns them on "
     "(default: \":\", stats detail off)"),
    ("-t, --threads=<num>", "number of threads (default: 4): shown in stats only, pymcd serves "
     "every connection from one Twisted reactor thread"),
    ("-R, --max-reqs-per-event", "maximum number of requests per event, limits the requests "
     "processed per connection to prevent starvation (default: 20)"),
    ("-C, --disable-cas", "disable use of CAS (default: enabled)"),
    ("-b, --listen-backlog=<num>", "set the backlog queue limit (default: 1024)"),
    ("-B, --protocol=<name>", "protocol - one of ascii, binary, or auto (default: "
     "auto-negotiate)"),
    ("-I, --max-item-size=<num>", "adjusts max item size (default: 1m, min: 1k, max: 1024m)"),
    ("-S, --enable-sasl", "turn on Sasl authentication, binary protocol only (default: off; "
     "needs --sasl-pwdb or $MEMCACHED_SASL_PWDB)"),
    ("-F, --disable-flush-all", "disable flush_all command (default: enabled)"),
    ("-X, --disable-dumping", "disable stats cachedump and lru_crawler metadump (default: "
     "enabled)"),
    ("-W  --disable-watch", "disable watch commands (live logging; default: enabled)"),
    ("-Y, --auth-file=<file>", "enable ASCII protocol authentication. format: "
     "user:pass\\nuser2:pass2\\n (default: off)"),
    ("-e, --memory-file=<file>", "mmap the cache into <file> (on a tmpfs): a graceful stop "
     "saves <file>.meta and the next start serves the items again (default: none)"),
    ("-Z, --enable-ssl, --tls", "enable TLS/SSL; needs -o ssl_chain_cert=...,ssl_key=... "
     "(default: off)"),
    ("-o, --extended", "comma separated list of extended options; most options have a 'no_' "
     "prefix to disable"),
    ("   - maxconns_fast:", "immediately close new connections after limit (default: enabled)"),
    ("   - hashpower:", "initial hash_power_level; it still grows at runtime (default: 0, "
     "ie. 16)"),
    ("   - tail_repair_time:", "shown in stats only (default: 0, disabled)"),
    ("   - hash_algorithm:", "jenkins, murmur3, xxh3: orders stats detail dump as memcached "
     "(xxh3 as murmur3) (default: murmur3)"),
    ("   - no_lru_crawler:", "disable the LRU crawler (default: enabled)"),
    ("   - lru_crawler_sleep:", "microseconds to sleep between items (default: 100)"),
    ("   - lru_crawler_tocrawl:", "max items to crawl per slab per run (default: 0, unlimited)"),
    ("   - read_buf_mem_limit:", "shown in stats only (default: 0, unlimited)"),
    ("   - no_lru_maintainer:", "disable the segmented LRU and its maintainer (default: "
     "enabled)"),
    ("   - hot_lru_pct:", "pct of slab memory to reserve for hot lru (default: 20)"),
    ("   - warm_lru_pct:", "pct of slab memory to reserve for warm lru (default: 40)"),
    ("   - hot_max_factor:", "items idle > cold lru age * drop from hot lru (default: 0.20)"),
    ("   - warm_max_factor:", "items idle > cold lru age * this drop from warm (default: 2.00)"),
    ("   - temporary_ttl:", "TTL's below get separate LRU, can't be evicted (default: 61, "
     "TEMP LRU off until named)"),
    ("   - idle_timeout:", "timeout for idle connections (default: 0, no timeout)"),
    ("   - slab_chunk_max:", "maximum slab chunk size in bytes (default: 524288)"),
    ("   - watcher_logbuf_size:", "size in kilobytes of per-watcher write buffer (default: 256)"),
    ("   - worker_logbuf_size:", "shown in stats only (default: 64)"),
    ("   - track_sizes:", "enable dynamic reports for 'stats sizes' command (default: off)"),
    ("   - slab_reassign:", "allow slab pages to move between classes (default: enabled)"),
    ("   - slab_automove:", "0 off, 1 (default) or 2: move pages by the automover"),
    ("   - slab_automove_ratio:", "age ratio that makes the automover move a page "
     "(default: 0.80)"),
    ("   - slab_automove_window:", "automover window, in runs (default: 30)"),
    ("   - memory_file:", "the same as -e (default: none)"),
    ("   - no_modern:", "memcached's pre-1.5 defaults: one flat LRU, no maintainer, crawler or "
     "page moves, jenkins, page-sized chunks (default: off)"),
    ("   - no_chunked_items:", "items up to a page in one chunk (default: off)"),
    ("   - no_hashexpand, modern, sock_cookie_id, slab_sizes, inline_ascii_resp, "
     "drop_privileges, relaxed_privileges:", IGNORED),
    # Named by their common prefix only: tools (memcached's own test suite among them) read an
    # "ext_path" in -h as "built with extstore".
    ("   - ext_* (extstore's options), slab_automove_freeratio:",
     IGNORED + ": pymcd has no external storage (extstore)"),
    ("   - ssl_chain_cert:", "certificate chain file in PEM format (default: none)"),
    ("   - ssl_key:", "private key, if not part of the ssl_chain_cert (default: none)"),
    ("   - ssl_keyformat:", "shown in stats only; keys are read as PEM (default: PEM)"),
    ("   - ssl_verify_mode:", "peer certificate verification mode: 0(None, default), "
     "1(Request), 2(Require) or 3(Once)"),
    ("   - ssl_ciphers:", "specify cipher list to be used (default: OpenSSL's)"),
    ("   - ssl_ca_cert:", "PEM format file of acceptable client CA's (default: none)"),
    ("   - ssl_wbuf_size:", "shown in stats only (default: 16)"),
    ("   - ssl_session_cache:", "enable server-side SSL session cache, to support session "
     "resumption (default: off)"),
    ("   - ssl_kernel_tls:", IGNORED),
    ("   - ssl_min_version:", "minimum protocol version to accept: 0(tlsv1.0), 1(tlsv1.1), "
     "2(tlsv1.2, default) or 3(tlsv1.3)"),
    ("   - proxy_config:", "the same as --proxy-config (default: none)"),
    ("-N, --napi_ids", IGNORED),
    ("pymcd's own options:", ""),
    ("--sasl-pwdb=<file>", "SASL password file, user:password lines (default: "
     "$MEMCACHED_SASL_PWDB)"),
    ("--stock-reactor", "the pymcd script: run on Twisted's stock epoll reactor instead of "
     "pymcd's lean one (default: lean)"),
    ("--proxy-config=<file>", "run as a proxy routing to pools of memcached servers, as the "
     "Python route config in <file> says (also -o proxy_config=<file>; default: none)"),
    ("--http, --metrics=<endpoint>", "serve /metrics (Prometheus), the dashboard and its JSON "
     "API on a port or Twisted endpoint (9150, tcp:9150, ...); bound to 127.0.0.1 unless the "
     "endpoint names an interface (default: off)"),
]


def help_text() -> str:
    """-h output in memcached's layout: the flag, then its meaning from column 27."""
    import textwrap

    lines = ["pymcd %s (memcached 1.6 compatible)" % __version__]
    for flag, meaning in HELP_ROWS:
        flag_lines = textwrap.wrap(flag, 78, subsequent_indent="     ") if len(flag) > 78 else [flag]
        wrapped = textwrap.wrap(meaning, 52) or [""]
        lines.extend(flag_lines[:-1])
        if len(flag_lines[-1]) < 26:
            lines.append(("%-26s%s" % (flag_lines[-1], wrapped[0])).rstrip())
        else:
            lines.append(flag_lines[-1])
            lines.append(" " * 26 + wrapped[0])
        lines.extend(" " * 26 + rest for rest in wrapped[1:])
    return "\n".join(line for line in lines if line.strip()) + "\n"


PLAIN_ENDPOINT_TYPES = ("tcp", "tcp6", "unix")


def serves_plain_only(settings: Settings) -> bool:
    """True when no listener needs TLS (no -Z, no ``ssl:`` or other non-plain --port)."""
    return not settings.ssl_enabled and all(
        endpoint.split(":", 1)[0] in PLAIN_ENDPOINT_TYPES for endpoint in settings.ports)


def needs_openssl(settings: Settings) -> bool:
    """Whether the settings turn on anything that uses OpenSSL's C library through the
    standard library: TLS listeners, the web site (prometheus_client imports ``ssl``), SASL
    (SCRAM's PBKDF2 is ``_hashlib``'s) or the proxy (its backends may speak TLS)."""
    return not serves_plain_only(settings) or bool(
        settings.http_endpoint or settings.sasl or settings.proxy_config)


def listener_specs(settings: Settings) -> List[Tuple[str, bool]]:
    """The stream listeners the settings ask for: (Twisted endpoint string, wrap in TLS).

    memcached listens on -p (default 11211) on every -l address; -s disables the network.
    Explicit ``--port`` endpoints are added as given (an ``ssl:`` one brings its own TLS); they
    replace the default TCP port unless -p was also given as a number. With -Z every TCP
    listener gets TLS (``--port tcp:11211 --tls`` too) except -l addresses written
    ``notls:<addr>``.
    """
    specs = [(endpoint, settings.ssl_enabled and endpoint.split(":", 1)[0] in ("tcp", "tcp6"))
             for endpoint in settings.ports]
    wants_default = settings.tcp_port_given or not settings.ports
    if not settings.unix_socket and wants_default and settings.tcp_port:
        for host, port, plain in listen_addresses(settings, settings.tcp_port):
            where = "tcp:%d" % bindable_port(port)
            if host is not None:
                where += ":interface=%s" % host.replace(":", "\\:")
            specs.append(("%s:backlog=%d" % (where, settings.backlog),
                          settings.ssl_enabled and not plain))
    if settings.unix_socket:
        path = settings.unix_socket.replace(":", "\\:")
        specs.append(("unix:%s:mode=%o:lockfile=0" % (path, settings.unix_mask), False))
    return specs


def bindable_port(port: int) -> int:
    """memcached binds port -1 as 0: the kernel picks a free one (see MEMCACHED_PORT_FILENAME)."""
    return 0 if port == -1 else port


def listen_addresses(settings: Settings, default_port: int) -> List[Tuple[Optional[str], int, bool]]:
    """(host or None for every interface, port, plain) for each -l entry, as memcached reads
    them for TCP and UDP alike: ``[notls:]<host>[:<port>]``, IPv6 hosts in brackets."""
    addresses: List[Tuple[Optional[str], int, bool]] = []
    for interface in [i for i in (settings.interface or "").split(",") if i] or [None]:
        if interface is None:
            addresses.append((None, default_port, False))
            continue
        plain = interface.startswith("notls:")
        if plain:
            interface = interface[len("notls:"):]
        port = default_port
        if interface.count(":") == 1 or interface.startswith("["):
            host, _, maybe_port = interface.rpartition(":")
            if maybe_port.isdigit() and host:
                port, interface = int(maybe_port), host
        addresses.append((interface.strip("[]"), port, plain))
    return addresses
