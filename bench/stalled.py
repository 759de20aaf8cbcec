"""A stalled reader against pymcd: peak RSS and another client's ``version`` latency meanwhile.

One client pipelines requests for a 500 KB value (``get``, ``mg ... v`` or binary GETK) and
never reads; a probe sends ``version`` every 20 ms for the stall's length. Issue 12's bar:
RSS under 100 MiB, ``version`` under 10 ms, over TCP and TLS alike. The measuring code is the
backpressure test's (tests/integration/test_backpressure.py); this runs it longer, for every
transport and request, several times, with the server pinned to one core and the clients to
the other.

    python bench/stalled.py [--seconds 8] [--runs 3] [--transports tcp,tls]
                            [--kinds get,mg,binary-getk,none]

``none`` is the control: the probe alone, with nobody stalled, for what the machine itself
adds to its latencies. Each row says when the slowest probe went out and how many passed 10 ms.

Prints a row per run and writes bench/results/stalled-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT, write_results

sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("PYMCD_STALL_SECONDS", "8")


def make_certificates() -> Path:
    """The test suite's CA and server certificate, made the same way (openssl)."""
    from integration.test_transports import certificates

    class Factory:
        @staticmethod
        def mktemp(name):
            return Path(tempfile.mkdtemp(prefix="pymcd-%s-" % name))

    return certificates.__wrapped__(Factory)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transports", default="tcp,tls")
    parser.add_argument("--kinds", default="get,mg,binary-getk")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true",
                        help="leave placement to the scheduler (on a busy shared machine a "
                             "pinned server waits for its core)")
    args = parser.parse_args(argv)
    os.environ["PYMCD_STALL_SECONDS"] = str(args.seconds)
    from integration import test_backpressure as backpressure
    from support import start_pymcd
    from integration.test_transports import tls_args

    if not args.no_pin:
        os.sched_setaffinity(0, {args.client_cpu})
    pki = make_certificates() if "tls" in args.transports else None
    rows = []
    failed = 0
    for transport in args.transports.split(","):
        for kind in args.kinds.split(","):
            for run in range(args.runs):
                extra = tls_args(pki) if transport == "tls" else []
                with start_pymcd(extra) as server:
                    if not args.no_pin:
                        subprocess.run(["taskset", "-pc", args.server_cpu,
                                        str(server.process.pid)], check=True,
                                       capture_output=True)
                    connect = (backpressure.tls_connector(server, pki) if transport == "tls"
                               else server.connect)
                    figures = backpressure.stalled_reader_figures(
                        server, backpressure.REQUESTS.get(kind), connect)
                ok = (figures["peak_rss"] < backpressure.RSS_LIMIT
                      and figures["max"] < backpressure.VERSION_LATENCY_LIMIT)
                failed += not ok
                print("%-4s %-12s run %d: %s, %d probes, %d over %.0f ms%s" % (
                    transport, kind, run + 1, backpressure.describe(figures), figures["probes"],
                    figures["over_limit"], backpressure.VERSION_LATENCY_LIMIT * 1e3,
                    "" if ok else "  OVER"), flush=True)
                rows.append(dict(figures, transport=transport, kind=kind, run=run + 1))
    load = os.getloadavg()
    print("load average during the run: %.2f %.2f %.2f" % load)
    write_results("stalled", {"seconds": args.seconds, "rows": rows, "load": load})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
