"""Scenario 6: committed offsets survive a broker restart; manual-assign commits (generation -1)."""
import time

from kafka_harness import (confluent_consume_assign, confluent_produce, create_topic, unique_group, unique_topic,
                      wait_until)

N = 10


def _produce(bootstrap, topic):
    res = confluent_produce(bootstrap, topic, [(b"k%d" % i, b"v%d" % i, None) for i in range(N)], partition=0)
    assert [o for _, o in res] == list(range(N))


def _confluent_group_consume(bootstrap, topic, group, count, timeout=30):
    """Subscribe, consume `count` records, commit them synchronously, close. Returns the offsets seen."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    seen = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, m.error()
            seen.append((m.offset(), m.value()))
            if len(seen) == count:
                c.commit(message=m, asynchronous=False)  # commits m.offset()+1
        assert len(seen) == count, "consumed %d/%d" % (len(seen), count)
    finally:
        c.close()
    return seen


def _confluent_committed(bootstrap, topic, group):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        c.close()


def test_confluent_group_commit_survives_restart(make_broker):
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("off-c"), 1)
    group = unique_group("off-c")
    _produce(b.bootstrap, topic)
    seen = _confluent_group_consume(b.bootstrap, topic, group, 4)
    assert seen == [(i, b"v%d" % i) for i in range(4)]
    assert _confluent_committed(b.bootstrap, topic, group) == 4

    b.restart()  # SIGTERM (asserts exit 0) + start on the same data dir
    assert _confluent_committed(b.bootstrap, topic, group) == 4
    seen = _confluent_group_consume(b.bootstrap, topic, group, N - 4)
    assert seen == [(i, b"v%d" % i) for i in range(4, N)], "did not resume after the committed offset"
    assert _confluent_committed(b.bootstrap, topic, group) == N


def test_kafka_python_group_commit_survives_restart(make_broker):
    from kafka import KafkaConsumer, TopicPartition
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("off-kp"), 1)
    group = unique_group("off-kp")
    _produce(b.bootstrap, topic)
    tp = TopicPartition(topic, 0)

    def consume(count):
        c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000)
        out = []
        try:
            deadline = time.monotonic() + 30
            while len(out) < count and time.monotonic() < deadline:
                for _tp, msgs in c.poll(timeout_ms=200, max_records=count - len(out)).items():
                    out.extend((m.offset, m.value) for m in msgs)
            assert len(out) == count, "kafka-python consumed %d/%d" % (len(out), count)
            c.commit()
            return out, c.committed(tp)
        finally:
            c.close()

    out, committed = consume(6)
    assert out == [(i, b"v%d" % i) for i in range(6)] and committed == 6

    b.restart()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert c.committed(tp) == 6
    finally:
        c.close()
    out, committed = consume(N - 6)
    assert out == [(i, b"v%d" % i) for i in range(6, N)] and committed == N


def test_confluent_manual_assign_commit(make_broker):
    """confluent assign() + commit: OffsetCommit with generation -1 / member ''."""
    from confluent_kafka import Consumer, TopicPartition
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("mac"), 2)
    group = unique_group("mac")
    _produce(b.bootstrap, topic)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        wait_until(lambda: c.poll(0.2) is not None, timeout=20, msg="first record")
        r = c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 0)], asynchronous=False)
        assert all(tp.error is None for tp in r), r
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert [tp.offset for tp in got] == [7, 0]
    finally:
        c.close()
    b.restart()
    assert _confluent_committed(b.bootstrap, topic, group) == 7
    # a consumer that starts from the committed offset resumes at 7
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "latest"})
    try:
        c.assign([TopicPartition(topic, 0)])  # OFFSET_INVALID -> use committed
        m = wait_until(lambda: c.poll(0.2), timeout=20, msg="record after committed offset")
        assert m.error() is None and m.offset() == 7 and m.value() == b"v7"
    finally:
        c.close()


def test_kafka_python_manual_assign_commit(make_broker):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("mak"), 1)
    group = unique_group("mak")
    _produce(b.bootstrap, topic)
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        c.assign([tp])
        assert c.committed(tp) is None
        c.commit({tp: OffsetAndMetadata(3, "meta-3")})
        assert c.committed(tp) == 3
    finally:
        c.close()
    b.restart()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        c.assign([tp])
        assert c.committed(tp) == 3
        out = []
        deadline = time.monotonic() + 20
        while len(out) < N - 3 and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=200).items():
                out.extend(m.offset for m in msgs)
        assert out == list(range(3, N)), "kafka-python did not resume from committed offset 3: %r" % out
    finally:
        c.close()


def test_committed_offset_unknown_group(broker):
    """OffsetFetch for a group that never committed: -1 (no error)."""
    topic = create_topic(broker.bootstrap, unique_topic("off-none"), 1)
    assert _confluent_committed(broker.bootstrap, topic, unique_group("nobody")) == -1001  # OFFSET_INVALID
