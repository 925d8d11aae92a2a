"""Scenario 5: consumer groups with three members of the same client.

Members run as separate processes (group_member.py). Phases:
  1. three members join: all partitions assigned, disjoint, every record consumed;
  2. one member close()s cleanly (LeaveGroup) -> rebalance to the two others;
  3. one member is SIGKILLed -> the group notices after session.timeout.ms (6000) -> last member owns all.
Checks: no record lost; a record delivered to two members only if the first one could not commit it
(killed, or its commit failed because a rebalance began) -- i.e. never twice within one generation;
partition ownership intervals of different members never overlap.
"""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from kafka_harness import DEBIAN_PYTHON, HERE, confluent_produce, create_topic, unique_group, unique_topic, wait_until

NPART = 6
PER_PHASE = 60


class Member:
    def __init__(self, client, bootstrap, topic, group, name, events):
        self.name = name
        self.events = events
        self.proc = subprocess.Popen(
            [DEBIAN_PYTHON, os.path.join(HERE, "group_member.py"), client, bootstrap, topic, group, name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.stderr = []
        self.current = set()
        self.killed_at = None
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev["ev"] == "assign":
                self.current = set(ev["parts"])
            elif ev["ev"] == "revoke":
                self.current = set()
            self.events.append(ev)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace"))

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, "member %s exited %s\n%s" % (self.name, rc, "".join(self.stderr[-50:]))
        self.current = set()

    def kill9(self):
        self.killed_at = time.time()
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.current = set()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _balanced(members):
    sets = [m.current for m in members]
    if any(not s for s in sets):
        return False
    union = set().union(*sets)
    return union == set(range(NPART)) and sum(len(s) for s in sets) == NPART


def _consumed_values(events):
    return {e["v"] for e in events if e["ev"] == "rec"}


def _produce_phase(bootstrap, topic, phase):
    vals = ["ph%d-%03d" % (phase, i) for i in range(PER_PHASE)]
    for part in range(NPART):
        confluent_produce(bootstrap, topic, [(None, v.encode(), None) for i, v in enumerate(vals) if i % NPART == part],
                          partition=part)
    return vals


def _check_history(events, members, killed):
    # 1. ownership intervals never overlap between members
    intervals = {}  # partition -> list of (start, end, member)
    open_ = {}
    end_t = time.time()
    for e in sorted(events, key=lambda e: e["t"]):
        if e["ev"] == "assign":
            for p in e["parts"]:
                open_[(e["member"], p)] = e["t"]
        elif e["ev"] == "revoke":
            for p in e["parts"]:
                s = open_.pop((e["member"], p), None)
                if s is not None:
                    intervals.setdefault(p, []).append((s, e["t"], e["member"]))
        elif e["ev"] == "closed":  # kafka-python's close() leaves without calling on_partitions_revoked
            for (mname, p) in [k for k in open_ if k[0] == e["member"]]:
                intervals.setdefault(p, []).append((open_.pop((mname, p)), e["t"], mname))
    for (mname, p), s in open_.items():
        k = [m for m in members if m.name == mname][0]
        intervals.setdefault(p, []).append((s, k.killed_at or end_t, mname))
    for p, ivs in intervals.items():
        ivs.sort()
        for a, b in zip(ivs, ivs[1:]):
            if a[2] != b[2]:
                assert a[1] <= b[0], "partition %d owned by %s and %s at the same time: %r, %r" % (p, a[2], b[2], a, b)
    # 2. duplicates only when the first deliverer could not commit
    first = {}
    fails = {e["member"] for e in events if e["ev"] == "commit_fail"}
    for e in sorted(events, key=lambda e: e["t"]):
        if e["ev"] != "rec":
            continue
        key = (e["p"], e["o"])
        if key in first:
            prev = first[key]
            assert prev["v"] == e["v"], "same offset, different value: %r %r" % (prev, e)
            assert prev["member"] in killed or prev["member"] in fails, \
                "record %r delivered to %s and then to %s though %s committed it" % (
                    key, prev["member"], e["member"], prev["member"])
        else:
            first[key] = e


def _run_group_scenario(broker, client):
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic("grp-" + client), NPART)
    group = unique_group("grp-" + client)
    events = []
    produced = set(_produce_phase(bootstrap, topic, 1))
    members = [Member(client, bootstrap, topic, group, "%s-m%d" % (client, i), events) for i in range(3)]

    def diag():
        return "\nmembers: %s\nlast events: %s\nstderr: %s" % (
            [(m.name, sorted(m.current), m.proc.poll()) for m in members],
            events[-15:], ["".join(m.stderr[-20:]) for m in members])
    try:
        # phase 1: three members, all partitions assigned
        wait_until(lambda: _balanced(members), timeout=45, interval=0.1,
                   msg=lambda: "3 members covering %d partitions" % NPART + diag())
        wait_until(lambda: produced <= _consumed_values(events), timeout=30, interval=0.1,
                   msg=lambda: "phase-1 records consumed" + diag())
        assert all(len(m.current) == 2 for m in members), [m.current for m in members]

        # phase 2: clean leave of m0
        members[0].stop()
        wait_until(lambda: _balanced(members[1:]), timeout=30, interval=0.1,
                   msg=lambda: "rebalance after clean leave" + diag())
        produced |= set(_produce_phase(bootstrap, topic, 2))
        wait_until(lambda: produced <= _consumed_values(events), timeout=30, interval=0.1,
                   msg=lambda: "phase-2 records consumed" + diag())

        # phase 3: SIGKILL m1; session timeout 6 s, then m2 must own everything
        members[1].kill9()
        t_kill = time.monotonic()
        produced |= set(_produce_phase(bootstrap, topic, 3))
        wait_until(lambda: _balanced(members[2:]), timeout=40, interval=0.1,
                   msg=lambda: "rebalance after SIGKILL of a member" + diag())
        assert time.monotonic() - t_kill >= 3.0, \
            "group reassigned before the killed member could have timed out (%.1fs)" % (time.monotonic() - t_kill)
        wait_until(lambda: produced <= _consumed_values(events), timeout=30, interval=0.1,
                   msg=lambda: "phase-3 records consumed" + diag())
        members[2].stop()
    finally:
        for m in members:
            m.cleanup()
    missing = produced - _consumed_values(events)
    assert not missing, "lost records: %r" % sorted(missing)[:20]
    _check_history(events, members, killed={members[1].name})
    broker.assert_alive()


@pytest.mark.slow
def test_group_confluent(broker):
    _run_group_scenario(broker, "confluent")


@pytest.mark.slow
def test_group_kafka_python(broker):
    _run_group_scenario(broker, "kafka-python")


def test_group_kcat_balanced(broker):
    """kcat -G (balanced consumer) reads everything of a 4-partition topic through a group."""
    from kafka_harness import kcat
    topic = create_topic(broker.bootstrap, unique_topic("grp-kcat"), 4)
    vals = ["kg-%d" % i for i in range(40)]
    for p in range(4):
        confluent_produce(broker.bootstrap, topic, [(None, v.encode(), None) for i, v in enumerate(vals) if i % 4 == p],
                          partition=p)
    r = kcat(["-b", broker.bootstrap, "-G", unique_group("kcatg"), topic, "-o", "beginning", "-c", "40",
              "-X", "session.timeout.ms=6000", "-f", "%s\\n"], timeout=60)
    assert sorted(r.stdout.decode().split()) == sorted(vals)
