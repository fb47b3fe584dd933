#!/usr/bin/python3
"""The soak under faults (issue 17): N messages through soak-host, an
outbound queue with retries driving smtpout sessions from one epoll loop,
against faultsrv --soak, which injects random faults and records every
message it stores; then checks the client's record against the server's.

  /usr/bin/python3 tests/bench/soak.py --build BUILD [--messages N]
      [--concurrency C] [--per-conn M] [--window W] [--attempts A]
      [--seed S] [--rate PERMILLE] [--timeout MS]
      [--starttls MODE] [--no-resume] [--server-arg=OPTION]...
      [--out DIR] [--json FILE] [--rss-bound KIB]

What is checked (each a count of violations, all must be 0):
  one-result        every recipient of every attempt got exactly one result
  retries           attempts of a message are 1..k; attempt k+1 carries
                    exactly the recipients deferred at attempt k; a
                    recipient still deferred after the last attempt is
                    reported expired; every message was tried
  delivered-stored  every recipient reported delivered was stored exactly
                    once by that attempt
  stored-flagged    every recipient stored but not reported delivered was
                    flagged possibly delivered
  duplicates        a recipient stored twice only after an attempt flagged
                    possibly delivered
  content           what the server stored belongs to the attempt its
                    envelope names (header X-Soak-Id, recipients)
  codes             a result's reply code and enhanced code, when it has
                    them, are of its status's class (2 delivered, 4
                    deferred, 5 bounced), as session.h promises; every
                    TLS session verified the server's (valid) certificate
  faults            each fault's outcome where it is certain: nothing
                    struck before the final dot is reported delivered;
                    everything stored and then cut off (reset, stall or TLS
                    alert after the dot) is deferred and flagged possibly
                    delivered; a 421/451/554 to the dot and a 450/550 to
                    RCPT come back with their code (unless a timeout came
                    first)
  descriptors       at every sample the host holds its starting descriptors
                    plus one per open connection, and at the end exactly
                    its starting ones
  host              soak-host finished every message and saw no result it
                    was not owed, nor a missing one
  rss (--rss-bound) the RSS slope over the last 80% of the run, in KiB per
                    10,000 attempts, is below the bound (the long benchmark
                    only: the test suite never asserts on it)

Prints the figures (messages, faults by kind, results by status, possibly
delivered, duplicates, RSS, descriptors, time) and exits 1 when a check
failed.  Nothing here depends on timing: a fault the client's timeout
overtook is still checked against what it must never give.
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.normpath(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", ".."))

SENDER = re.compile(r"s(\d+)\.(\d+)@soak\.example$")
RCPT = re.compile(r"m(\d+)\.r(\d+)@test\.example$")

# Faults that strike before the final dot: the attempt is never delivered.
BEFORE_DOT = {"421", "stall", "reset", "tls-alert", "reset-in-data",
              "tls-alert-in-data"}
AFTER_DOT = {"reset-after-dot", "stall-after-dot", "tls-alert-after-dot"}


def parse_sender(s):
    m = SENDER.match(s or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_rcpt(s):
    m = RCPT.match(s or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class Violations:
    def __init__(self):
        self.count = collections.Counter()
        self.examples = collections.defaultdict(list)

    def __call__(self, check, what):
        self.count[check] += 1
        if len(self.examples[check]) < 5:
            self.examples[check].append(what)


def read_jsonl(path, bad, who):
    """The records of a JSON-lines file; a line that does not parse (a
    writer killed mid-line) is a violation of `who`."""
    recs = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    bad(who, "unreadable line in %s: %r" % (path, line[:200]))
    except OSError as e:
        bad(who, str(e))
    return recs


def slope(points):
    """Least-squares slope of (x, y) points, or 0 with fewer than 2."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def check(results_path, events_path, messages, attempts_max):
    """Reads soak-host's record and faultsrv's events; returns (figures,
    Violations)."""
    bad = Violations()
    host = read_jsonl(results_path, bad, "host")
    server = read_jsonl(events_path, bad, "server")

    submits = {}                                  # (m, a) -> [j]
    results = collections.defaultdict(list)       # (m, a, j) -> [result]
    expired = {}                                  # m -> pending mask
    samples, conns, end = [], [], None
    for e in host:
        ev = e["ev"]
        if ev == "submit":
            if (e["m"], e["a"]) in submits:
                bad("retries", "attempt submitted twice: %r" % e)
            submits[(e["m"], e["a"])] = e["rcpt"]
        elif ev == "result":
            results[(e["m"], e["a"], e["rcpt"])].append(e)
        elif ev == "expired":
            expired[e["m"]] = e["pending"]
        elif ev == "sample":
            samples.append(e)
        elif ev == "conn":
            conns.append(e)
        elif ev == "anomaly":
            bad("host", "soak-host: %r" % e)
        elif ev == "end":
            end = e
    if end is None:
        bad("host", "soak-host wrote no totals")
        end = {}

    stored = collections.defaultdict(list)        # (m, a) -> [event]
    faults, opens, exit_ev = [], 0, None
    for e in server:
        if e["event"] == "stored":
            ma = parse_sender(e["from"])
            if ma is None:
                bad("content", "stored with an unknown sender: %r" % e)
                continue
            stored[ma].append(e)
        elif e["event"] == "fault":
            faults.append(e)
        elif e["event"] == "open":
            opens += 1
        elif e["event"] == "exit":
            exit_ev = e

    # one-result: exactly one result per submitted recipient per attempt.
    for (m, a), rcpts in submits.items():
        for j in rcpts:
            n = len(results.get((m, a, j), []))
            if n != 1:
                bad("one-result", "m%d attempt %d recipient %d: %d results"
                    % (m, a, j, n))
    for (m, a, j) in results:
        if j not in submits.get((m, a), []):
            bad("one-result", "m%d attempt %d recipient %d: a result for "
                "nothing submitted" % (m, a, j))

    # codes: the class of each result's codes is its status's.
    klass = {"delivered": "2", "deferred": "4", "bounced": "5"}
    for (m, a, j), rs in results.items():
        for r in rs:
            k = klass.get(r["status"])
            if k is None or (r["code"] and str(r["code"])[0] != k) or \
                    (r["enh"] and r["enh"][0] != k):
                bad("codes", "m%d attempt %d recipient %d: %r" % (m, a, j, r))
    for c in conns:
        if c["tls"] and not c["verified"]:
            bad("codes", "connection %d: TLS without verification" % c["c"])

    def result(m, a, j):
        r = results.get((m, a, j))
        return r[0] if r else None

    # retries: attempts in order, each carrying what the last deferred.
    by_msg = collections.defaultdict(list)
    for (m, a) in submits:
        by_msg[m].append(a)
    if set(by_msg) != set(range(messages)):
        bad("retries", "%d of %d messages were ever tried"
            % (len(by_msg), messages))
    final = collections.Counter()
    for m, alist in by_msg.items():
        alist.sort()
        if alist != list(range(1, len(alist) + 1)):
            bad("retries", "m%d attempts %r" % (m, alist))
            continue
        for a in alist:
            deferred = [j for j in submits[(m, a)]
                        if (result(m, a, j) or {}).get("status") == "deferred"]
            nxt = submits.get((m, a + 1))
            if nxt is not None and sorted(nxt) != sorted(deferred):
                bad("retries", "m%d attempt %d carries %r, %r were deferred"
                    % (m, a + 1, nxt, deferred))
            if nxt is None and deferred:
                mask = sum(1 << j for j in deferred)
                if a < attempts_max or expired.get(m) != mask:
                    bad("retries", "m%d: %r deferred at attempt %d, never "
                        "retried nor expired" % (m, deferred, a))
        for a in alist:
            for j in submits[(m, a)]:
                st = (result(m, a, j) or {}).get("status")
                if st in ("delivered", "bounced"):
                    final[st] += 1
        if m in expired:
            final["expired"] += bin(expired[m]).count("1")

    # delivered-stored, stored-flagged, content.
    copies = collections.defaultdict(list)        # (m, j) -> [a]
    for (m, a), evs in stored.items():
        if len(evs) > 1:
            bad("delivered-stored", "m%d attempt %d stored %d times"
                % (m, a, len(evs)))
        for e in evs:
            if e["id"] != str(m):
                bad("content", "m%d attempt %d stored with X-Soak-Id %r"
                    % (m, a, e["id"]))
            for addr in e["rcpt_to"]:
                mj = parse_rcpt(addr)
                if mj is None or mj[0] != m or \
                        mj[1] not in submits.get((m, a), []):
                    bad("content", "m%d attempt %d stored for %r, never "
                        "submitted" % (m, a, addr))
                    continue
                j = mj[1]
                copies[(m, j)].append(a)
                r = result(m, a, j)
                if r and r["status"] != "delivered" and not r["pd"]:
                    bad("stored-flagged", "m%d attempt %d recipient %d "
                        "stored, reported %s %s without possibly delivered"
                        % (m, a, j, r["status"], r["code"]))
    for (m, a, j), rs in results.items():
        if rs[0]["status"] != "delivered":
            continue
        n = sum(1 for e in stored.get((m, a), [])
                if "m%d.r%d@test.example" % (m, j) in e["rcpt_to"])
        if n != 1:
            bad("delivered-stored", "m%d attempt %d recipient %d delivered,"
                " stored %d times" % (m, a, j, n))

    # duplicates: a second copy only after a first flagged possibly
    # delivered (every copy but a delivered last one must be flagged).
    duplicates = 0
    for (m, j), alist in copies.items():
        if len(alist) < 2:
            continue
        duplicates += len(alist) - 1
        for a in sorted(alist)[:-1]:
            r = result(m, a, j)
            if not (r and r["status"] == "deferred" and r["pd"]):
                bad("duplicates", "m%d recipient %d stored by attempts %r; "
                    "attempt %d was %r" % (m, j, sorted(alist), a, r))

    # faults: the outcomes that are certain.
    faults_by_kind = collections.Counter()
    faults_by_phase = collections.Counter()
    conn_faults = collections.Counter(f["conn"] for f in faults)
    for f in faults:
        faults_by_kind[f["kind"]] += 1
        faults_by_phase["%s@%s" % (f["kind"], f["phase"])] += 1
        ma = parse_sender(f["from"])
        if ma is None:
            continue      # greeting, EHLO, STARTTLS, QUIT: no transaction
        m, a = ma
        rcpts = submits.get((m, a))
        if rcpts is None:
            bad("faults", "fault %r struck an attempt never submitted" % f)
            continue
        rs = {j: result(m, a, j) for j in rcpts}
        kind = f["kind"]
        if kind in BEFORE_DOT and f["phase"] != "eod":
            for j, r in rs.items():
                if r and r["status"] == "delivered":
                    bad("faults", "%s at %s, yet m%d attempt %d recipient %d "
                        "delivered" % (kind, f["phase"], m, a, j))
                if r and r["pd"] and f["phase"] != "content":
                    bad("faults", "%s at %s (no data sent), yet m%d attempt "
                        "%d recipient %d possibly delivered"
                        % (kind, f["phase"], m, a, j))
        elif kind in AFTER_DOT:
            for e in stored.get((m, a), []):
                for addr in e["rcpt_to"]:
                    r = result(m, a, parse_rcpt(addr)[1])
                    if not (r and r["status"] == "deferred" and r["pd"]):
                        bad("faults", "%s: m%d attempt %d stored for %s, "
                            "reported %r" % (kind, m, a, addr, r))
            if not stored.get((m, a)):
                bad("faults", "%s: m%d attempt %d not stored" % (kind, m, a))
        elif kind in ("421", "451", "554") and f["phase"] == "eod":
            # The server read the dot: the reply's code, or (a timeout
            # overtook the reply) possibly delivered.  A second fault on
            # the connection (a recipient refused) blurs which is which.
            for j, r in rs.items():
                if r and r["status"] == "delivered":
                    bad("faults", "%s to the dot, yet m%d attempt %d "
                        "recipient %d delivered" % (kind, m, a, j))
                elif r and conn_faults[f["conn"]] == 1 and not r["pd"] \
                        and r["code"] != int(kind):
                    bad("faults", "%s to the dot: m%d attempt %d recipient "
                        "%d got %r" % (kind, m, a, j, r))
        elif kind in ("450", "550"):
            mj = parse_rcpt(f["rcpt"])
            r = rs.get(mj[1]) if mj else None
            if r is None:
                bad("faults", "%s for %r, not a recipient of m%d attempt %d"
                    % (kind, f["rcpt"], m, a))
            elif r["status"] == "delivered":
                bad("faults", "%s for %s, yet delivered" % (kind, f["rcpt"]))
            elif conn_faults[f["conn"]] == 1 and r["code"] not in \
                    (0, int(kind)):
                bad("faults", "%s for %s: got %r" % (kind, f["rcpt"], r))

    # descriptors.
    fds_start = end.get("fds_start")
    for s in samples:
        if fds_start is not None and s["fds"] != fds_start + s["conns"]:
            bad("descriptors", "sample %r: expected %d + %d" %
                (s, fds_start, s["conns"]))
    if end and end.get("fds_end") != fds_start:
        bad("descriptors", "%s descriptors at the start, %s at the end"
            % (fds_start, end.get("fds_end")))

    # host totals.
    if end and (end.get("anomalies") or end.get("messages_done") != messages):
        bad("host", "totals %r" % end)
    if exit_ev is not None and exit_ev["messages"] != \
            sum(len(v) for v in stored.values()):
        bad("content", "the server counted %d messages, logged %d"
            % (exit_ev["messages"], sum(len(v) for v in stored.values())))

    # figures.
    status = collections.Counter()
    pd = pd_stored = 0
    for (m, a, j), rs in results.items():
        r = rs[0]
        status[r["status"]] += 1
        if r["pd"]:
            pd += 1
            if any("m%d.r%d@test.example" % (m, j) in e["rcpt_to"]
                   for e in stored.get((m, a), [])):
                pd_stored += 1
    rss = [(s["finished"], s["rss_kib"]) for s in samples]
    total = max((x for x, _ in rss), default=0)
    tail = [(x, y) for x, y in rss if x >= 0.2 * total]
    figures = {
        "messages": messages,
        "recipients": sum(len(submits[(m, 1)]) for m in by_msg
                          if (m, 1) in submits),
        "attempts": len(submits),
        "connections": end.get("connections"),
        "connect_failed": end.get("connect_failed"),
        "server_connections": opens,
        "tls_connections": end.get("tls"),
        "tls_verified": end.get("verified"),
        "tls_resumed": end.get("resumed"),
        "faults": sum(faults_by_kind.values()),
        "faults_by_kind": dict(sorted(faults_by_kind.items())),
        "faults_by_phase": dict(sorted(faults_by_phase.items())),
        "results": dict(status),
        "final": dict(final),
        "possibly_delivered": pd,
        "possibly_delivered_stored": pd_stored,
        "stored": sum(len(v) for v in stored.values()),
        "duplicates": duplicates,
        "rss_start_kib": rss[0][1] if rss else None,
        "rss_end_kib": rss[-1][1] if rss else None,
        "rss_peak_kib": max((y for _, y in rss), default=None),
        "max_rss_kib": end.get("max_rss_kib"),
        "rss_slope_kib_per_10k": round(slope(tail) * 10000, 1),
        "rss_curve": [(x, y) for x, y in rss[::max(1, len(rss) // 10)]]
        + ([rss[-1]] if rss else []),
        "fds_start": fds_start,
        "fds_end": end.get("fds_end"),
        "seconds": end.get("seconds"),
        "host_cpu_s": round((end.get("user_s") or 0)
                            + (end.get("sys_s") or 0), 2),
    }
    return figures, bad


def run(build, workdir, messages=3000, concurrency=50, seed=1, rate=10,
        timeout=400, per_conn=20, attempts=5, sample_every=None,
        window=2, starttls="optional", resume=True, server_args=(),
        host_timeout=None, log=print):
    """Starts faultsrv --soak, runs soak-host against it, stops the server
    and checks.  Returns (figures, Violations, host exit status).  A host
    still running after `host_timeout` seconds (default: 120, or a
    hundredth of a second per message, whichever is more) is a session
    that never ended: killed, and a violation."""
    faultsrv = os.path.join(build, "tests", "faultsrv")
    host = os.path.join(build, "tests", "soak-host")
    certs = os.path.join(workdir, "certs")
    subprocess.run(["bash", os.path.join(SOURCE, "tests", "certs",
                                         "mkcerts.sh"), certs],
                   check=True, capture_output=True)
    events = os.path.join(workdir, "events.jsonl")
    results = os.path.join(workdir, "results.jsonl")
    # A stall in message data lasts well past the client's timeouts.
    srv = subprocess.Popen(
        [faultsrv, "--cert", os.path.join(certs, "valid-chain.pem"),
         "--key", os.path.join(certs, "valid.key"), "--tickets",
         "--soak", str(seed), "--soak-rate", str(rate),
         "--soak-stall", str(4 * timeout), "--events", events,
         "--id-header", "X-Soak-Id"] + list(server_args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = srv.stdout.readline().decode()
        port = re.match(r"PORT (\d+)", line)
        if port is None:
            raise RuntimeError("faultsrv did not start: %r %s" % (
                line, srv.stderr.read().decode(errors="replace")))
        argv = [
            host, "--server", "127.0.0.1:" + port.group(1),
            "--messages", str(messages), "--results", results,
            "--mx-name", "mx.test.example",
            "--ca-file", os.path.join(certs, "ca.pem"),
            "--starttls", starttls, "--window", str(window),
            "--concurrency", str(concurrency), "--per-conn", str(per_conn),
            "--attempts", str(attempts), "--timeout", str(timeout),
            "--seed", str(seed), "--sample-every",
            str(sample_every or max(100, messages // 100))]
        if resume:
            argv.append("--resume")
        log("# " + " ".join(argv))
        t0 = time.monotonic()
        limit = host_timeout or max(120, messages / 100)
        try:
            p = subprocess.run(argv, capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired as e:
            p = subprocess.CompletedProcess(argv, -9, e.stdout or b"",
                                            e.stderr or b"")
            hung = "soak-host still running after %d s: killed" % limit
        log("# soak-host: %s (exit %d, %.1f s)" % (
            p.stdout.decode(errors="replace").strip(), p.returncode,
            time.monotonic() - t0))
        for line in p.stderr.decode(errors="replace").splitlines()[:20]:
            log("# stderr: " + line)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            _, err = srv.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            _, err = srv.communicate()
    figures, bad = check(results, events, messages, attempts)
    if p.returncode == -9:
        bad("host", hung)
    if err:
        bad("server", "faultsrv wrote to stderr: %s"
            % err.decode(errors="replace")[:2000])
    if srv.returncode != 0:
        bad("server", "faultsrv exited %s" % srv.returncode)
    if p.stderr and b"ERROR: AddressSanitizer" in p.stderr \
            or b"runtime error:" in p.stderr:
        bad("host", "sanitizer report: %s"
            % p.stderr.decode(errors="replace")[:3000])
    return figures, bad, p.returncode


def report(figures, bad, out=print):
    f = figures
    out("messages %d (recipients %d), attempts %d, sessions %s (server saw "
        "%d connections, %s reset before the client had a session; TLS %s, "
        "verified %s, resumed %s)" % (
            f["messages"], f["recipients"], f["attempts"], f["connections"],
            f["server_connections"], f["connect_failed"],
            f["tls_connections"], f["tls_verified"], f["tls_resumed"]))
    out("faults injected: %d: %s" % (f["faults"], ", ".join(
        "%s %d" % kv for kv in f["faults_by_kind"].items())))
    out("results (per attempt): %s; final: %s" % (
        ", ".join("%s %d" % kv for kv in sorted(f["results"].items())),
        ", ".join("%s %d" % kv for kv in sorted(f["final"].items()))))
    out("possibly delivered %d (of which the server had stored %d); "
        "stored %d; duplicates %d" % (
            f["possibly_delivered"], f["possibly_delivered_stored"],
            f["stored"], f["duplicates"]))
    out("RSS KiB start %s end %s peak %s (getrusage max %s); slope over the "
        "last 80%%: %+.1f KiB per 10,000 attempts" % (
            f["rss_start_kib"], f["rss_end_kib"], f["rss_peak_kib"],
            f["max_rss_kib"], f["rss_slope_kib_per_10k"]))
    out("RSS curve (attempts finished, KiB): %s" % " ".join(
        "%d:%d" % (x, y) for x, y in f["rss_curve"]))
    out("descriptors start %s end %s; %s s, host CPU %s s" % (
        f["fds_start"], f["fds_end"], f["seconds"], f["host_cpu_s"]))
    for name in sorted(bad.count):
        out("VIOLATION %s: %d" % (name, bad.count[name]))
        for e in bad.examples[name]:
            out("  " + e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--per-conn", type=int, default=20)
    ap.add_argument("--attempts", type=int, default=5)
    ap.add_argument("--window", type=int, default=2,
                    help="messages in flight per connection")
    ap.add_argument("--starttls", default="optional")
    ap.add_argument("--no-resume", action="store_true",
                    help="a full TLS handshake on every connection")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="one more faultsrv option (repeatable), e.g. "
                    "--server-arg=--no-pipelining")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=int, default=10,
                    help="faults per 1000 opportunities")
    ap.add_argument("--timeout", type=int, default=400,
                    help="the client's timeouts, ms")
    ap.add_argument("--out", help="keep the records here")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--rss-bound", type=float,
                    help="fail when the RSS slope exceeds this many KiB "
                    "per 10,000 attempts")
    args = ap.parse_args()
    workdir = args.out or tempfile.mkdtemp(prefix="smtpout-soak-")
    os.makedirs(workdir, exist_ok=True)
    try:
        figures, bad, rc = run(args.build, workdir, args.messages,
                               args.concurrency, args.seed, args.rate,
                               args.timeout, args.per_conn, args.attempts,
                               window=args.window, starttls=args.starttls,
                               resume=not args.no_resume,
                               server_args=args.server_arg)
        if args.rss_bound is not None and \
                figures["rss_slope_kib_per_10k"] > args.rss_bound:
            bad("rss", "slope %.1f KiB per 10,000 attempts > %.1f" % (
                figures["rss_slope_kib_per_10k"], args.rss_bound))
        if rc != 0:
            bad("host", "soak-host exited %d" % rc)
        report(figures, bad)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(figures, violations=dict(bad.count)), f,
                          indent=1)
    finally:
        if not args.out:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if bad.count else 0)


if __name__ == "__main__":
    main()
