"""The soak under faults, short (tests/bench/soak.py; the long run is
section 7 of tests/bench/run.sh): 3,000 messages through soak-host, 50
sessions at a time with new connections and reused ones, against faultsrv
--soak (421s, resets before and after the dot, stalls past the timeouts, TLS
alerts in the handshake and in transactions, slow reads, refusals), every
deferral retried.  Checked from both records: one result per recipient,
nothing stored without being reported delivered or possibly delivered, no
duplicate without a possibly delivered attempt before it, no descriptor
left open.  The RSS is printed, never asserted here; nothing depends on
timing.  The checker is then shown to catch each lie on doctored copies of
the records, so that a pass means something."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "bench"))
from testlib import BUILD, main  # noqa: E402
import soak  # noqa: E402

MESSAGES = 3000
ATTEMPTS = 5


class SoakTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-soak-")
        # 15 faults per 1000 opportunities: every kind shows up in a run
        # of this size (about 300 faults), and most messages go through.
        cls.figures, cls.bad, cls.rc = soak.run(
            BUILD, cls.tmp, messages=MESSAGES, concurrency=50, seed=17,
            rate=15, timeout=400, attempts=ATTEMPTS, sample_every=100)
        cls.results = os.path.join(cls.tmp, "results.jsonl")
        cls.events = os.path.join(cls.tmp, "events.jsonl")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_soak_loses_nothing_and_leaks_no_descriptor(self):
        soak.report(self.figures, self.bad, out=lambda s: print("# " + s))
        problems = ["%s: %d, e.g. %s" % (k, v, self.bad.examples[k][:2])
                    for k, v in sorted(self.bad.count.items())]
        self.assertEqual(problems, [])
        # soak-host exits non-zero on its own findings, and under the
        # sanitizers on any error or leak.
        self.assertEqual(self.rc, 0)
        f = self.figures
        self.assertEqual(f["fds_start"], f["fds_end"])
        self.assertEqual(f["final"].get("delivered", 0)
                         + f["final"].get("bounced", 0)
                         + f["final"].get("expired", 0), f["recipients"])

    def test_the_run_met_every_kind_of_fault(self):
        # A soak without faults would pass everything: the run must have
        # hit each kind the issue names, retried, and met the possibly
        # delivered case.
        kinds = self.figures["faults_by_kind"]
        for kind in ("421", "reset", "reset-in-data", "reset-after-dot",
                     "stall", "stall-in-data", "stall-after-dot",
                     "tls-alert", "slow-read"):
            self.assertGreater(kinds.get(kind, 0), 0, kind)
        self.assertGreater(self.figures["attempts"], MESSAGES)
        self.assertGreater(self.figures["possibly_delivered_stored"], 0)
        self.assertGreater(self.figures["tls_connections"], 0)
        self.assertGreater(self.figures["tls_resumed"], 0)

    def test_faults_follow_from_the_seed(self):
        # Every point a fault may strike at, with --soak-rate 1000: the
        # greeting of each connection, whatever the timing.  Two servers
        # with one seed inject the same faults; another seed, others.
        def greeting_faults(seed):
            events = os.path.join(self.tmp, "seed-%d.jsonl" % seed)
            srv = subprocess.Popen(
                [os.path.join(BUILD, "tests", "faultsrv"), "--soak",
                 str(seed), "--soak-rate", "1000", "--max-conns", "40",
                 "--events", events], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
            try:
                port = int(srv.stdout.readline().split()[1])
                for _ in range(40):
                    try:
                        socket.create_connection(("127.0.0.1", port),
                                                 10).close()
                    except ConnectionResetError:
                        pass  # a reset at the greeting beat connect()
                _, err = srv.communicate(timeout=60)
            finally:
                if srv.poll() is None:
                    srv.kill()
                    srv.communicate()
            self.assertEqual((srv.returncode, err), (0, b""))
            with open(events) as f:
                recs = [json.loads(line) for line in f]
            return [(r["conn"], r["kind"], r["phase"]) for r in recs
                    if r["event"] == "fault"]
        first = greeting_faults(5)
        self.assertEqual(len(first), 40)
        self.assertEqual({p for _, _, p in first}, {"greeting"})
        self.assertEqual(greeting_faults(5), first)
        self.assertNotEqual(greeting_faults(6), first)

    # ---- the checker catches what it must --------------------------------

    def doctored(self, results=None, events=None):
        """Checks copies of the records, changed by the functions given
        (each takes and returns the list of records); returns the
        violation counts."""
        out = {}
        for name, path, change in (("results", self.results, results),
                                   ("events", self.events, events)):
            with open(path) as f:
                recs = [json.loads(line) for line in f]
            if change:
                recs = change(recs)
            out[name] = os.path.join(self.tmp, "doctored-" + name)
            with open(out[name], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in recs)
        _, bad = soak.check(out["results"], out["events"], MESSAGES, ATTEMPTS)
        return bad.count

    def first(self, recs, pred):
        for i, r in enumerate(recs):
            if pred(r):
                return i
        self.fail("no record to doctor")

    def stored_pd(self):
        """(m, a, j) of a recipient stored and flagged possibly
        delivered."""
        with open(self.events) as f:
            stored = [json.loads(line) for line in f]
        keys = set()
        for e in stored:
            if e["event"] == "stored":
                m, a = soak.parse_sender(e["from"])
                keys |= {(m, a, soak.parse_rcpt(r)[1]) for r in e["rcpt_to"]}
        with open(self.results) as f:
            for line in f:
                r = json.loads(line)
                if r["ev"] == "result" and r["pd"] and \
                        (r["m"], r["a"], r["rcpt"]) in keys:
                    return r["m"], r["a"], r["rcpt"]
        self.fail("the run stored no possibly delivered message")

    def test_checker_sees_a_missing_or_second_result(self):
        def drop(recs):
            del recs[self.first(recs, lambda r: r["ev"] == "result")]
            return recs

        def double(recs):
            i = self.first(recs, lambda r: r["ev"] == "result")
            recs.insert(i, recs[i])
            return recs
        self.assertGreater(self.doctored(results=drop)["one-result"], 0)
        self.assertGreater(self.doctored(results=double)["one-result"], 0)

    def test_checker_sees_stored_but_not_flagged(self):
        key = self.stored_pd()

        def unflag(recs):
            i = self.first(recs, lambda r: r["ev"] == "result" and
                           (r["m"], r["a"], r["rcpt"]) == key)
            recs[i]["pd"] = False
            return recs
        self.assertGreater(self.doctored(results=unflag)["stored-flagged"], 0)

    def test_checker_sees_delivered_but_not_stored(self):
        def lie(recs):
            i = self.first(recs, lambda r: r["ev"] == "result" and
                           r["status"] == "deferred" and not r["pd"])
            recs[i]["status"] = "delivered"
            return recs
        self.assertGreater(self.doctored(results=lie)["delivered-stored"], 0)

    def delivered(self):
        """A result reported delivered."""
        with open(self.results) as f:
            for line in f:
                r = json.loads(line)
                if r["ev"] == "result" and r["status"] == "delivered":
                    return r
        self.fail("nothing was delivered")

    def test_checker_sees_a_duplicate_without_a_flag(self):
        # A delivered attempt sent and stored again, as if retried.
        d = self.delivered()
        m, a = d["m"], d["a"]

        def resend(recs):
            i = self.first(recs, lambda r: r["ev"] == "submit" and
                           (r["m"], r["a"]) == (m, a))
            recs.append(dict(recs[i], a=a + 1))
            recs.append(dict(d, a=a + 1))
            return recs

        def store(recs):
            i = self.first(recs, lambda r: r["event"] == "stored" and
                           soak.parse_sender(r["from"]) == (m, a))
            recs.append(dict(recs[i], **{
                "from": "s%d.%d@soak.example" % (m, a + 1),
                "rcpt_to": ["m%d.r%d@test.example" % (m, d["rcpt"])]}))
            return recs
        bad = self.doctored(results=resend, events=store)
        self.assertGreater(bad["duplicates"], 0)

    def test_checker_sees_a_code_of_another_class(self):
        def lie(recs):
            i = self.first(recs, lambda r: r["ev"] == "result" and
                           r["status"] == "deferred")
            recs[i]["code"] = 250
            return recs
        self.assertGreater(self.doctored(results=lie)["codes"], 0)

    def test_checker_sees_a_descriptor_left_open(self):
        def leak(recs):
            i = self.first(recs, lambda r: r["ev"] == "end")
            recs[i]["fds_end"] += 1
            return recs
        self.assertGreater(self.doctored(results=leak)["descriptors"], 0)

    def test_checker_sees_a_fault_reported_delivered(self):
        # Claim a reset after the dot struck an attempt reported delivered.
        d = self.delivered()

        def fault(recs):
            recs.append({"event": "fault", "conn": 0,
                         "kind": "reset-after-dot", "phase": "eod",
                         "tls": False,
                         "from": "s%d.%d@soak.example" % (d["m"], d["a"]),
                         "rcpt": None})
            return recs
        self.assertGreater(self.doctored(events=fault)["faults"], 0)

    def test_checker_sees_a_retry_that_never_came(self):
        def forget(recs):
            i = self.first(recs, lambda r: r["ev"] == "submit" and
                           r["a"] == 2)
            m = recs[i]["m"]
            return [r for r in recs
                    if not (r.get("m") == m and r.get("a", 0) >= 2)]
        self.assertGreater(self.doctored(results=forget)["retries"], 0)


if __name__ == "__main__":
    main()
