"""Scenario 8: idempotent producer (librdkafka enable.idempotence=true): exactly once, in order."""
from kafka_harness import confluent_consume_assign, confluent_produce, create_topic, unique_topic

NPART = 3
N = 900


def test_confluent_idempotent_exactly_once_in_order(broker):
    topic = create_topic(broker.bootstrap, unique_topic("idem-c"), NPART)
    recs = [(b"k%d" % i, b"idem-%05d" % i, None) for i in range(N)]
    # many small batches with 5 in flight per partition: exercises sequence numbers across batches
    res = []
    for part in range(NPART):
        mine = [r for i, r in enumerate(recs) if i % NPART == part]
        res.append(confluent_produce(broker.bootstrap, topic, mine, partition=part,
                                     **{"enable.idempotence": True, "linger.ms": 1, "batch.num.messages": 20,
                                        "max.in.flight.requests.per.connection": 5}))
    for part in range(NPART):
        mine = [r for i, r in enumerate(recs) if i % NPART == part]
        assert res[part] == [(part, o) for o in range(len(mine))], "partition %d offsets not 0..n-1" % part
        got = confluent_consume_assign(broker.bootstrap, topic, part, 0, len(mine))
        assert [m.value() for m in got] == [v for _, v, _ in mine]
        assert [m.offset() for m in got] == list(range(len(mine)))
    # nothing beyond what was produced (no duplicates appended)
    import kproto
    for part in range(NPART):
        err, hw, records = kproto.fetch_v4(broker.bootstrap, topic, part, 0)
        assert err == 0 and hw == N // NPART, (part, err, hw)
        hdrs = kproto.batch_headers(records)
        assert hdrs and all(h["magic"] == 2 for h in hdrs)


def test_confluent_idempotent_two_producers(broker):
    """Two idempotent producers (distinct producer ids) interleaving on one partition."""
    from confluent_kafka import Producer
    topic = create_topic(broker.bootstrap, unique_topic("idem-2"), 1)
    ps = [Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 2})
          for _ in range(2)]
    acked = {0: [], 1: []}
    for i in range(300):
        which = i % 2
        ps[which].produce(topic, value=b"p%d-%d" % (which, i), partition=0,
                          on_delivery=lambda err, m, w=which: acked[w].append((err, m.offset(), m.value())))
        ps[which].poll(0)
    for p in ps:
        assert p.flush(30) == 0
    for w in (0, 1):
        assert all(e is None for e, _, _ in acked[w]), acked[w][:3]
        offs = [o for _, o, _ in acked[w]]
        assert offs == sorted(offs)  # each producer's records in its send order
    all_offsets = sorted(o for w in (0, 1) for _, o, _ in acked[w])
    assert all_offsets == list(range(300))
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, 300)
    by_off = {o: v for w in (0, 1) for _, o, v in acked[w]}
    assert [m.value() for m in got] == [by_off[o] for o in range(300)]
