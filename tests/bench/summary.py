#!/usr/bin/python3
"""Summarises tests/bench/run.sh's results.tsv: medians and ratios.

Each line of results.tsv is SECTION SETTING CLIENT ROUND and the key=value
figures of clients.py.  Throughput is messages / wall time; CPU is per
message.  Ratios are taken per round (the two clients of a round ran back
to back) and their median is reported with the range.
"""
import collections
import statistics
import sys


def load(path):
    runs = collections.defaultdict(dict)  # (section, setting, client) -> round -> figures
    for line in open(path):
        section, setting, client, rnd, kv = line.rstrip("\n").split("\t")
        f = dict(x.split("=") for x in kv.split())
        n = int(f["messages"])
        runs[(section, setting, client)][int(rnd)] = {
            "mps": n / float(f["wall"]),
            "cpu_us": float(f["cpu"]) * 1e6 / n,
        }
    return runs


def med(runs, key, what):
    vals = [r[what] for r in runs.get(key, {}).values()]
    return statistics.median(vals) if vals else None


def ratio(runs, a, b, what):
    """Median and range of per-round a/b."""
    ra, rb = runs.get(a, {}), runs.get(b, {})
    rs = [ra[k][what] / rb[k][what] for k in ra if k in rb]
    if not rs:
        return "-"
    return "%.2f (%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs))


def main(path):
    runs = load(path)
    settings = []
    for (section, setting, _client) in runs:
        if (section, setting) not in settings:
            settings.append((section, setting))

    print("\nplaintext to smtp-sink (same arguments; ratio = smtpout / smtp-source)")
    print("%-20s %10s %12s %18s %12s %14s %18s" % (
        "setting", "smtpout/s", "smtp-source/s", "throughput ratio",
        "smtpout CPU", "smtp-source CPU", "CPU ratio"))
    for section, setting in settings:
        if section != "plain":
            continue
        a, b = (section, setting, "smtpout"), (section, setting, "smtp-source")
        print("%-20s %10.0f %12.0f %18s %9.1f us %11.1f us %18s" % (
            setting, med(runs, a, "mps"), med(runs, b, "mps"),
            ratio(runs, a, b, "mps"), med(runs, a, "cpu_us"),
            med(runs, b, "cpu_us"), ratio(runs, a, b, "cpu_us")))

    print("\nSTARTTLS to faultsrv, verified (CPU per message; ratios of medians)")
    print("%-16s %-13s %10s %12s %12s %12s" % (
        "setting", "client", "msgs/s", "CPU/msg", "vs floor", "vs smtplib"))
    for section, setting in settings:
        if section != "tls":
            continue
        # Resumption is held against the full-handshake floor and smtplib:
        # neither resumes.
        floor_key = (section, "handshake-only" if setting == "handshake-only" else
                     "reuse" if setting == "reuse" else "full", "tls-floor")
        lib_key = (section, "reuse" if setting == "reuse" else "full", "smtplib")
        for (s2, st2, client) in runs:
            if (s2, st2) != (section, setting):
                continue
            key = (s2, st2, client)
            cpu = med(runs, key, "cpu_us")
            fl = med(runs, floor_key, "cpu_us")
            sl = med(runs, lib_key, "cpu_us")
            print("%-16s %-13s %10.0f %9.1f us %12s %12s" % (
                setting, client, med(runs, key, "mps"), cpu,
                "%.2f" % (cpu / fl) if fl else "-",
                "%.3f" % (cpu / sl) if sl else "-"))

    if any(section == "postfix" for section, _ in settings):
        print("\nSTARTTLS to Postfix smtpd on loopback (wall time per message;"
              " ratio = smtpout / smtplib of the same round)")
        print("%-10s %-10s %10s %12s %12s %18s" % (
            "setting", "client", "msgs/s", "wall/msg", "CPU/msg",
            "wall vs smtplib"))
        for section, setting in settings:
            if section != "postfix":
                continue
            lib_key = (section, "reuse" if setting == "reuse" else "full",
                       "smtplib")
            for (s2, st2, client) in runs:
                if (s2, st2) != (section, setting):
                    continue
                key = (s2, st2, client)
                mps = med(runs, key, "mps")
                # Wall per message is 1 / throughput: the ratio of walls is
                # the inverse ratio of throughputs.
                r = ratio(runs, lib_key, key, "mps")
                print("%-10s %-10s %10.0f %9.2f ms %9.0f us %18s" % (
                    setting, client, mps, 1000 / mps,
                    med(runs, key, "cpu_us"), r))


if __name__ == "__main__":
    main(sys.argv[1])
