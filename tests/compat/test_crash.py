"""Scenario 9: acks=all records survive kill -9 of the broker at random instants.

A confluent-kafka producer (acks=all, no retries, so an unacknowledged attempt can never be
duplicated by a retry) produces in a loop; the broker is SIGKILLed at a random instant
(random.uniform over a bounded window), restarted on the same data dir, several times.
Then every acknowledged (partition, offset, value) must be present exactly once, at that offset,
and in send order per partition.
"""
import os
import random
import threading
import time

from kafka_harness import create_topic, unique_group, unique_topic, wait_until

NPART = 3
ROUNDS = int(os.environ.get("SLUICE_CRASH_ROUNDS", "4"))


def _produce_until_killed(broker, topic, rnd, seq0, acked, errors):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.send.max.retries": 0,
                  "linger.ms": 2, "message.timeout.ms": 10000, "socket.timeout.ms": 5000,
                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    stop = threading.Event()
    lock = threading.Lock()
    state = {"seq": seq0}

    def cb(err, m):
        with lock:
            if err is None:
                acked.append((m.partition(), m.offset(), m.value().decode()))
            else:
                errors.append(str(err))

    def loop():
        seq = seq0
        while not stop.is_set():
            v = "r%d-%08d" % (rnd, seq)
            try:
                p.produce(topic, value=v.encode(), partition=seq % NPART, on_delivery=cb)
                seq += 1
            except BufferError:
                p.poll(0.01)
                continue
            if len(p) > 2000:
                p.poll(0.005)
            else:
                p.poll(0)
        state["seq"] = seq

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    # the random instant (not a wait for a condition): uniform over a bounded window
    time.sleep(random.uniform(0.3, 2.5))
    broker.kill9()
    stop.set()
    th.join(10)
    # recovery on the same data dir; the producer reconnects (same port) and delivers what was still
    # queued, while the attempts in flight at the kill fail (no retries) -> error callbacks
    broker.start_same_port()
    remaining = p.flush(20)
    assert remaining == 0, "%d messages neither acked nor failed" % remaining
    return state["seq"]


def _read_all(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_group("crash-read"),
                  "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        log = {}
        for part in range(NPART):
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
            assert lo == 0
            log[part] = []
            if hi == 0:
                continue
            c.assign([TopicPartition(topic, part, 0)])
            deadline = time.monotonic() + 60
            while len(log[part]) < hi and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is None:
                    continue
                assert m.error() is None, m.error()
                log[part].append((m.offset(), m.value().decode()))
            assert len(log[part]) == hi, "partition %d: read %d of %d" % (part, len(log[part]), hi)
        return log
    finally:
        c.close()


def test_acked_records_survive_kill9(make_broker):
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("crash"), NPART)
    acked, errors = [], []
    seq = 0
    per_round = []
    for rnd in range(ROUNDS):
        before = len(acked)
        seq = _produce_until_killed(b, topic, rnd, seq, acked, errors)
        per_round.append(len(acked) - before)
    assert sum(per_round) > 0, "no record was ever acknowledged"
    assert sum(1 for n in per_round if n > 0) >= ROUNDS - 1, "acks per round: %r" % per_round
    print("acks per round %r, delivery errors %d, log size follows" % (per_round, len(errors)))

    log = _read_all(b.bootstrap, topic)
    for part in range(NPART):
        offs = [o for o, _ in log[part]]
        assert offs == list(range(len(offs))), "partition %d offsets not contiguous" % part
    values = [v for part in range(NPART) for _, v in log[part]]
    assert len(values) == len(set(values)), "a value appears twice in the log"
    at = {(part, o): v for part in range(NPART) for o, v in log[part]}
    lost = [(p, o, v) for p, o, v in acked if at.get((p, o)) != v]
    assert not lost, "%d acknowledged records missing or moved, e.g. %r (log has %r); acks/round %r" % (
        len(lost), lost[:5], [at.get((p, o)) for p, o, _ in lost[:5]], per_round)
    # per-partition order: acknowledged offsets increase with send sequence
    for part in range(NPART):
        mine = sorted((v, o) for p, o, v in acked if p == part)
        offs = [o for _, o in mine]
        assert offs == sorted(offs), "partition %d: acked records out of send order" % part
    # the log order per partition is also send order for everything present
    for part in range(NPART):
        vs = [v for _, v in log[part]]
        assert vs == sorted(vs), "partition %d: log not in send order" % part
    # and the broker still takes writes after all that
    from kafka_harness import assert_broker_serves
    assert_broker_serves(b)
