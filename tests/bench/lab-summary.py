#!/usr/bin/python3
"""Summarises tests/bench/latency-lab.sh's lab.tsv: milliseconds and round
trips per message for each client, server and mode.

    lab-summary.py LAB.TSV RTT_MS

lab.tsv lines: round, client, server, mode, messages, wall seconds.  A
"-new" mode's figure is wall / messages; a "-reuse" mode has a short and a
long run per round, and its figure is the slope between them (the
connection's set-up, shown apart, is not spread over the messages).
Medians over the rounds.  The goals are issue 17's, for smtpout: with
BDAT ("smtpout": both servers offer CHUNKING) and with DATA
("smtpout-data", --no-chunking)."""
import statistics
import sys
from collections import defaultdict

GOALS = {  # mode: (with DATA, with BDAT)
    "plain-new": (5.3, 4.3),
    "tls-new": (8.6, 7.6),
    "plain-reuse": (2.2, 1.2),
    "tls-reuse": (2.2, 1.2),
}
ORDER = ["plain-new", "plain-reuse", "tls-new", "tls-reuse"]


def main():
    path, rtt = sys.argv[1], float(sys.argv[2])
    runs = defaultdict(list)  # (client, server, mode, round) -> [(n, wall)]
    for line in open(path):
        rnd, client, server, mode, n, wall = line.rstrip("\n").split("\t")
        runs[(client, server, mode, rnd)].append((int(n), float(wall)))
    per = defaultdict(list)    # (client, server, mode) -> [ms per message]
    setup = defaultdict(list)  # reuse: ms before the first message
    for (client, server, mode, _), rs in runs.items():
        key = (client, server, mode)
        if mode.endswith("-new"):
            n, wall = rs[0]
            per[key].append(wall / n * 1000)
            continue
        (n1, w1), (n2, w2) = sorted(rs)[:2]
        slope = (w2 - w1) / (n2 - n1) * 1000
        per[key].append(slope)
        setup[key].append(w1 * 1000 - n1 * slope)
    print("| client | server | mode | ms/message | **RTT/message** | "
          "set-up (reuse) | goal (DATA) | goal (BDAT) |")
    print("|---|---|---|---|---|---|---|---|")
    keys = sorted(per, key=lambda k: (k[1] != "postfix",
                                      not k[0].startswith("smtpout"),
                                      k[0], ORDER.index(k[2])))
    for key in keys:
        client, server, mode = key
        ms = statistics.median(per[key])
        su = ("%.0f ms = %.1f RTT" % (statistics.median(setup[key]),
                                      statistics.median(setup[key]) / rtt)
              if key in setup else "")
        if client == "smtpout-data":
            goal = (GOALS[mode][0], "")
        elif client == "smtpout":
            goal = ("", GOALS[mode][1])
        else:
            goal = ("", "")
        print("| %s | %s | %s | %.1f | **%.2f** | %s | %s | %s |" % (
            client, server, mode, ms, ms / rtt, su, goal[0], goal[1]))


if __name__ == "__main__":
    main()
