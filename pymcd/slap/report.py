"""memaslap's report layout, byte for byte where memaslap has one, and the JSON report.

Scripts that parse memaslap's output (``Run time: ... TPS: ...``, ``cmd_get: N``, the
``-S`` tables) parse pymcd-slap's too; what memaslap lacks (percentiles, error kinds) comes
after its lines in the same ``name: value`` style.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

from pymcd.slap.settings import SlapSettings
from pymcd.slap.stats import COUNTERS, PERCENTILES, Delta, LatencySummary, total_of

_MIB = 1024.0 * 1024.0
_CLEAR_SCREEN = "\033[1;1H\033[2J\n"
_TABLE_HEADER = ("%-9s%-9s%-13s%-13s%-11s%-11s%-9s%-11s%-11s%-11s%-10s"
                 % ("Type", "Time(s)", "Ops", "TPS(ops/s)", "Net(M/s)", "Get_miss", "Min(us)",
                    "Max(us)", "Avg(us)", "Std_dev", "Geo_dist"))
_TABLES = (("Get", "get"), ("Set", "set"), ("Total", None))
_UDP_COUNTERS = ("packet_disorder", "packet_drop", "udp_timeout")
_VERIFY_COUNTERS = ("verify_misses", "verify_failed", "expired_get", "unexpired_unget")


def _seconds(value: float) -> str:
    return "%ds" % value if value == int(value) else "%gs" % value


def header(settings: SlapSettings) -> str:
    lines = ["servers: " + ",".join("%s:%d" % server for server in settings.servers),
             "threads count: %d" % settings.workers,
             "concurrency: %d" % settings.concurrency]
    if settings.execute_number is not None:
        lines.append("execute number: %d" % settings.execute_number)
    else:
        lines.append("run time: " + _seconds(settings.run_time))
    window = settings.window
    lines.append("windows size: " + ("%dk" % (window // 1024) if window % 1024 == 0
                                     else str(window)))
    workload = settings.workload
    lines.append("set proportion: set_prop=%.2f" % workload.set_proportion)
    lines.append("get proportion: get_prop=%.2f" % workload.get_proportion)
    return "\n".join(lines) + "\n"


def _part(delta: Delta, operation: Optional[str]) -> dict:
    return delta[operation] if operation else total_of(delta)


def _row(name: str, seconds: float, part: dict) -> str:
    summary = LatencySummary(part["latencies"])
    elapsed = max(seconds, 1e-9)
    net = (part["written"] + part["read"]) / _MIB / elapsed
    return ("%-9s%-9d%-13d%-13d%-11.1f%-11d%-9d%-11d%-11d%-11.2f%.2f"
            % (name, int(seconds + 0.5), part["ops"], int(part["ops"] / elapsed), net,
               part["misses"], summary.minimum, summary.maximum, int(summary.average),
               summary.std_dev, summary.geometric))


def period_tables(period: Delta, period_seconds: float, overall: Delta,
                  elapsed: float) -> str:
    """memaslap's ``-S`` output: Period and Global rows for Get, Set and Total."""
    out = [_CLEAR_SCREEN]
    for title, operation in _TABLES:
        out.append("%s Statistics\n%s\n%s\n%s\n\n" % (
            title, _TABLE_HEADER, _row("Period", period_seconds, _part(period, operation)),
            _row("Global", elapsed, _part(overall, operation))))
    return "".join(out)


def latency_blocks(overall: Delta) -> str:
    """memaslap's closing per-type blocks (printed when ``-S`` was given)."""
    out = []
    for title, operation in _TABLES:
        summary = LatencySummary(_part(overall, operation)["latencies"])
        if not summary.events:
            continue
        out.append("%s Statistics (%d events)\n" % (title, summary.events))
        out.append("   Min: %9d\n   Max: %9d\n   Avg: %9d\n   Geo: %9.2f\n   Std: %9.2f\n"
                   % (summary.minimum, summary.maximum, int(summary.average), summary.geometric,
                      summary.std_dev))
        out.append("   Log2 Dist:\n")
        for row in summary.log2_rows():
            out.append("%8d:%s\n" % (row[0], "".join("%9d" % count for count in row[1:])))
        out.append("\n")
    return "".join(out)


def _shown_counters(settings: SlapSettings) -> List[str]:
    shown = []
    for name in COUNTERS:
        if name in _VERIFY_COUNTERS and not (settings.verify or settings.expire_verify):
            continue
        if name in _UDP_COUNTERS and not settings.uses_udp:
            continue
        shown.append(name)
    return shown


def figures(settings: SlapSettings, overall: Delta, run_time: float) -> dict:
    counters = overall["counters"]
    ops = counters["cmd_get"] + counters["cmd_set"]
    elapsed = max(run_time, 1e-9)
    net_rate = (counters["written_bytes"] + counters["read_bytes"]) / _MIB / elapsed
    latency = {}
    for title, operation in _TABLES:
        part = _part(overall, operation)
        summary = LatencySummary(part["latencies"]).to_dict()
        summary.update(ops=part["ops"], misses=part["misses"])
        latency[title.lower()] = summary
    return {"run_time": run_time, "ops": ops, "tps": ops / elapsed, "net_rate_mb": net_rate,
            "counters": dict(counters), "errors": dict(overall["errors"]), "latency": latency}


def final_report(settings: SlapSettings, overall: Delta, run_time: float) -> str:
    numbers = figures(settings, overall, run_time)
    out = []
    if settings.stat_period:
        out.append(latency_blocks(overall))
    counters = numbers["counters"]
    for name in _shown_counters(settings):
        out.append("%s: %d\n" % (name, counters[name]))
    for kind, count in sorted(numbers["errors"].items()):
        out.append("error %s: %d\n" % (kind, count))
    out.append("\nRun time: %.1fs Ops: %d TPS: %.0f Net_rate: %.1fM/s\n"
               % (run_time, numbers["ops"], numbers["tps"], numbers["net_rate_mb"]))
    for title in ("get", "set", "total"):
        summary = numbers["latency"][title]
        if summary["events"]:
            out.append("%s latency (us): %s\n" % (title.capitalize(), " ".join(
                "p%g %d" % (p, summary["p%s_us" % ("%g" % p).replace(".", "_")])
                for p in PERCENTILES)))
    return "".join(out)


def settings_record(settings: SlapSettings) -> Dict[str, object]:
    workload = settings.workload
    return {
        "servers": ["%s:%d" % server for server in settings.servers],
        "config_file": settings.config_path,
        "workers": settings.workers, "concurrency": settings.concurrency,
        "sockets_per_concurrency": settings.sockets_per_concurrency,
        "execute_number": settings.execute_number,
        "run_time": None if settings.execute_number is not None else settings.run_time,
        "window": settings.window, "verify": settings.verify,
        "expire_verify": settings.expire_verify, "overwrite": settings.overwrite,
        "multiget": settings.multiget, "binary": settings.binary, "udp": settings.udp,
        "facebook": settings.facebook, "target_tps": settings.target_tps,
        "replicated_writes": settings.replicated_writes, "reconnect": settings.reconnect,
        "key_ranges": [list(r) for r in workload.key_ranges],
        "value_ranges": [list(r) for r in workload.value_ranges],
        "set_proportion": workload.set_proportion, "get_proportion": workload.get_proportion,
    }


def write_json(path: str, settings: SlapSettings, overall: Delta, run_time: float,
               failure: Optional[str]) -> None:
    record = figures(settings, overall, run_time)
    record["settings"] = settings_record(settings)
    record["failure"] = failure
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
        handle.write("\n")
