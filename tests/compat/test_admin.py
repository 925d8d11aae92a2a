"""Scenario 7: create / list / delete topics with confluent AdminClient and kafka-python KafkaAdminClient."""
import pytest

from kafka_harness import confluent_admin, kafka_python_admin, unique_topic, wait_until

INVALID_NAMES = ["bad topic", "bad/topic", "..", ".", "x" * 250, "t\u00e9"]


def _confluent_topics(a):
    return {n: t for n, t in a.list_topics(timeout=10).topics.items() if t.error is None}


def test_confluent_admin_create_list_delete(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic
    a = confluent_admin(broker.bootstrap)
    t1, t2 = unique_topic("adm-c1"), unique_topic("adm-c2")
    fs = a.create_topics([NewTopic(t1, 3, 1), NewTopic(t2, 1, 1)], operation_timeout=10)
    for t, f in fs.items():
        assert f.result(timeout=20) is None, t
    topics = wait_until(lambda: (lambda ts: ts if t1 in ts and t2 in ts else None)(_confluent_topics(a)),
                        timeout=10, msg="created topics listed")
    assert sorted(topics[t1].partitions) == [0, 1, 2]
    assert sorted(topics[t2].partitions) == [0]
    assert all(p.leader == 0 or p.leader >= 0 for p in topics[t1].partitions.values())

    # existing topic -> TOPIC_ALREADY_EXISTS
    f = a.create_topics([NewTopic(t1, 3, 1)], operation_timeout=10)[t1]
    with pytest.raises(Exception) as ei:
        f.result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    # invalid partition / replication counts
    bad = unique_topic("adm-badrf")
    with pytest.raises(Exception) as ei:
        a.create_topics([NewTopic(bad, 1, 3)], operation_timeout=10)[bad].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    with pytest.raises(Exception) as ei:
        a.create_topics([NewTopic(bad, 0, 1)], operation_timeout=10)[bad].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS

    # delete
    fs = a.delete_topics([t2], operation_timeout=10)
    assert fs[t2].result(timeout=20) is None
    wait_until(lambda: t2 not in _confluent_topics(a), timeout=10, msg="deleted topic gone from metadata")
    assert t1 in _confluent_topics(a)
    # deleting a missing topic -> UNKNOWN_TOPIC_OR_PART
    with pytest.raises(Exception) as ei:
        a.delete_topics([t2], operation_timeout=10)[t2].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.parametrize("name", INVALID_NAMES, ids=["space", "slash", "dotdot", "dot", "too-long", "non-ascii"])
def test_confluent_admin_invalid_topic_name(broker, name):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic
    a = confluent_admin(broker.bootstrap)
    with pytest.raises(Exception) as ei:
        a.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)[name].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, ei.value
    assert name not in a.list_topics(timeout=10).topics or a.list_topics(timeout=10).topics[name].error


def test_kafka_python_admin_create_list_delete(broker):
    from kafka.admin import NewTopic
    from kafka.errors import InvalidTopicError, TopicAlreadyExistsError
    a = kafka_python_admin(broker.bootstrap)
    try:
        t1 = unique_topic("adm-kp")
        resp = a.create_topics([NewTopic(t1, 4, 1)], timeout_ms=10000)
        assert [(t[0], t[1]) for t in resp.topic_errors] == [(t1, 0)]
        wait_until(lambda: t1 in a.list_topics(), timeout=10, msg="kafka-python list_topics shows topic")
        md = a.describe_topics([t1])
        assert md[0]["error_code"] == 0 and sorted(p["partition"] for p in md[0]["partitions"]) == [0, 1, 2, 3]

        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics([NewTopic(t1, 4, 1)], timeout_ms=10000)
        with pytest.raises(InvalidTopicError):
            a.create_topics([NewTopic("no good!", 1, 1)], timeout_ms=10000)

        resp = a.delete_topics([t1], timeout_ms=10000)
        assert [(t[0], t[1]) for t in resp.topic_error_codes] == [(t1, 0)]
        wait_until(lambda: t1 not in a.list_topics(), timeout=10, msg="kafka-python: deleted topic gone")
    finally:
        a.close()


def test_kcat_sees_admin_created_topic(broker):
    import json
    from confluent_kafka.admin import NewTopic
    from kafka_harness import kcat
    a = confluent_admin(broker.bootstrap)
    t = unique_topic("adm-kcat")
    a.create_topics([NewTopic(t, 5, 1)])[t].result(timeout=20)
    md = json.loads(kcat(["-b", broker.bootstrap, "-L", "-J"]).stdout)
    mine = [x for x in md["topics"] if x["topic"] == t]
    assert mine and len(mine[0]["partitions"]) == 5
    assert md["controllerid"] == 0 or md["controllerid"] == md["brokers"][0]["id"]


# ---------------------------------------------------------------------- ListGroups and DescribeConfigs (admin tools)

def _commit_offsets(bootstrap, topic, group, offset):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    c.close()


def test_list_groups_with_three_clients(broker):
    """A group with a live member and a group known only by its committed offsets are both listed, by the admin
    clients of confluent-kafka (ListGroups + DescribeGroups) and kafka-python (ListGroups v1/v2)."""
    from confluent_kafka import Consumer
    from kafka_harness import confluent_produce, unique_group
    topic = unique_topic("lg")
    confluent_produce(broker.bootstrap, topic, [(None, b"x", None)] * 3, partition=0)
    live, offsets_only = unique_group("lg-live"), unique_group("lg-offsets")
    _commit_offsets(broker.bootstrap, topic, offsets_only, 2)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": live, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    wait_until(lambda: c.poll(0.2) is not None and c.assignment(), timeout=30, msg="member assigned")
    try:
        groups = wait_until(lambda: (lambda gs: gs if live in gs and offsets_only in gs else None)(
            {g.id: g for g in confluent_admin(broker.bootstrap).list_groups(timeout=10)}), timeout=10,
            msg="both groups listed (confluent)")
        assert groups[live].protocol_type == "consumer" and groups[live].state == "Stable"
        assert len(groups[live].members) == 1
        assert groups[offsets_only].protocol_type == "" and groups[offsets_only].state == "Empty"
        kp = dict(kafka_python_admin(broker.bootstrap).list_consumer_groups())
        assert kp[live] == "consumer" and kp[offsets_only] == ""
    finally:
        c.close()
    # a group whose members have all left stays listed, Empty, with the protocol type they had (as in Kafka)
    kp = dict(kafka_python_admin(broker.bootstrap).list_consumer_groups())
    assert kp[live] == "consumer" and kp[offsets_only] == ""
    states = {g.id: g.state for g in confluent_admin(broker.bootstrap).list_groups(timeout=10)}
    assert states[live] == "Empty"


def test_describe_configs_topic_and_broker(tmp_path):
    """Topic and broker configuration under Kafka's names, with the broker's settings as values and a
    non-default setting reported as such: confluent-kafka (v1) and kafka-python (v2)."""
    from confluent_kafka.admin import ConfigResource
    from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType
    from kafka_harness import Broker, confluent_produce
    b = Broker(tmp_path / "cfg", sets={"broker.retention_ms": "3600000", "broker.num_partitions": "3"})
    b.start()
    try:
        topic = unique_topic("cfg")
        confluent_produce(b.bootstrap, topic, [(None, b"x", None)], partition=0)
        a = confluent_admin(b.bootstrap)
        res = ConfigResource("topic", topic)
        entries = a.describe_configs([res])[res].result(timeout=20)
        assert entries["retention.ms"].value == "3600000" and not entries["retention.ms"].is_default
        assert entries["segment.bytes"].value == "1073741824" and entries["segment.bytes"].is_default
        assert entries["cleanup.policy"].value == "delete" and entries["cleanup.policy"].is_read_only
        assert not entries["retention.ms"].is_read_only  # a topic's own setting (AlterConfigs)
        brk = ConfigResource("broker", "0")
        bentries = a.describe_configs([brk])[brk].result(timeout=20)
        assert bentries["num.partitions"].value == "3" and bentries["log.retention.ms"].value == "3600000"
        assert not any(e.is_sensitive for e in bentries.values())
        # an unknown topic is an error for that resource
        missing = ConfigResource("topic", unique_topic("nope"))
        with pytest.raises(Exception) as ei:
            a.describe_configs([missing])[missing].result(timeout=20)
        assert "does not exist" in str(ei.value) or "UNKNOWN_TOPIC" in str(ei.value)

        kp = kafka_python_admin(b.bootstrap)
        resp = kp.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})])
        results = resp[0].resources
        assert len(results) == 1 and results[0][0] == 0  # error_code
        assert [(c[0], c[1]) for c in results[0][4]] == [("retention.ms", "3600000")]
    finally:
        b.stop()


def test_delete_groups_kafka_python(tmp_path):
    """DeleteGroups: a memberless group and its offsets go (durably: not back after a restart); a group with a
    member is NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND."""
    from confluent_kafka import Consumer
    from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError
    from kafka_harness import Broker, confluent_produce, unique_group
    b = Broker(tmp_path / "del")
    b.start()
    try:
        topic = unique_topic("dg")
        confluent_produce(b.bootstrap, topic, [(None, b"x", None)] * 2, partition=0)
        gone, busy, unknown = unique_group("dg-gone"), unique_group("dg-busy"), unique_group("dg-unknown")
        _commit_offsets(b.bootstrap, topic, gone, 1)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": busy, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        wait_until(lambda: c.poll(0.2) is not None and c.assignment(), timeout=30, msg="member assigned")
        try:
            res = dict(kafka_python_admin(b.bootstrap).delete_consumer_groups([gone, busy, unknown]))
            assert res[gone] is NoError and res[busy] is NonEmptyGroupError and res[unknown] is GroupIdNotFoundError
        finally:
            c.close()
        listed = dict(kafka_python_admin(b.bootstrap).list_consumer_groups())
        assert gone not in listed and busy in listed
        assert kafka_python_admin(b.bootstrap).list_consumer_group_offsets(gone) == {}
        b.stop()
        b.start()  # the deletion was durable: replayed from the offsets log
        listed = dict(kafka_python_admin(b.bootstrap).list_consumer_groups())
        assert gone not in listed and busy in listed
    finally:
        b.stop()


def test_offsets_expire_for_groups_without_members(tmp_path):
    """Kafka's offsets.retention.minutes: the offsets of a memberless group expire after broker.offsets_retention_ms
    without a commit; a group with a live member keeps its offsets however old."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka_harness import Broker, confluent_produce, unique_group
    b = Broker(tmp_path / "exp", sets={"broker.offsets_retention_ms": "1500",
                                       "broker.offsets_retention_check_interval_ms": "100"})
    b.start()
    try:
        topic = unique_topic("exp")
        confluent_produce(b.bootstrap, topic, [(None, b"x", None)] * 2, partition=0)
        idle, active = unique_group("exp-idle"), unique_group("exp-active")
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": active, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        wait_until(lambda: c.poll(0.2) is not None and c.assignment(), timeout=30, msg="member assigned")
        try:
            # the active group commits first, so when the idle group's offsets expire its commit is older still
            c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
            _commit_offsets(b.bootstrap, topic, idle, 1)
            admin = kafka_python_admin(b.bootstrap)
            assert admin.list_consumer_group_offsets(idle)
            wait_until(lambda: not admin.list_consumer_group_offsets(idle), timeout=30, msg="idle offsets expired")
            assert idle not in dict(admin.list_consumer_groups())
            assert [o.offset for o in admin.list_consumer_group_offsets(active).values()] == [2]
        finally:
            c.close()
    finally:
        b.stop()


def test_create_partitions_three_clients(tmp_path):
    """CreatePartitions grows a topic (never shrinks it): confluent-kafka, then kafka-python; records go to the new
    partitions; the count survives a restart; validate_only changes nothing; errors come back per topic."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewPartitions, NewTopic
    from kafka.admin import NewPartitions as KpNewPartitions
    from kafka.errors import InvalidPartitionsError
    from kafka_harness import Broker, confluent_consume_assign, confluent_produce
    b = Broker(tmp_path / "cp")
    b.start()
    try:
        a = confluent_admin(b.bootstrap)
        topic = unique_topic("cp")
        assert a.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=20) is None

        def partitions():
            return len(confluent_admin(b.bootstrap).list_topics(topic, timeout=10).topics[topic].partitions)
        assert partitions() == 2
        assert a.create_partitions([NewPartitions(topic, 5)], validate_only=True)[topic].result(timeout=20) is None
        assert partitions() == 2
        assert a.create_partitions([NewPartitions(topic, 5)])[topic].result(timeout=20) is None
        assert partitions() == 5
        with pytest.raises(Exception) as ei:  # not fewer, not the same
            a.create_partitions([NewPartitions(topic, 4)])[topic].result(timeout=20)
        assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS
        missing = unique_topic("cp-none")
        with pytest.raises(Exception) as ei:
            a.create_partitions([NewPartitions(missing, 3)])[missing].result(timeout=20)
        assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        # kafka-python grows it further; an invalid count is its InvalidPartitionsError
        kp = kafka_python_admin(b.bootstrap)
        kp.create_partitions({topic: KpNewPartitions(7)})
        assert partitions() == 7
        with pytest.raises(InvalidPartitionsError):
            kp.create_partitions({topic: KpNewPartitions(3)})
        # the new partitions take records
        confluent_produce(b.bootstrap, topic, [(None, b"in-six", None)], partition=6)
        assert [m.value() for m in confluent_consume_assign(b.bootstrap, topic, 6, 0, 1)] == [b"in-six"]
        b.stop()
        b.start()
        assert partitions() == 7
        assert [m.value() for m in confluent_consume_assign(b.bootstrap, topic, 6, 0, 1)] == [b"in-six"]
    finally:
        b.stop()


def test_topic_configs_create_alter_describe_apply(tmp_path):
    """A topic's own configs: set at creation (confluent-kafka), replaced by AlterConfigs (confluent-kafka, then
    kafka-python), described with their source, applied to the log (retention.bytes deletes old segments), and kept
    across a restart; configs this broker cannot honour are INVALID_CONFIG."""
    from confluent_kafka import Consumer, KafkaError
    from confluent_kafka.admin import ConfigResource, ConfigSource, NewTopic
    from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType
    from kafka_harness import Broker, confluent_produce
    b = Broker(tmp_path / "tc", sets={"broker.retention_check_interval_ms": "100"})
    b.start()
    try:
        a = confluent_admin(b.bootstrap)
        topic = unique_topic("tc")
        f = a.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "60000", "cleanup.policy": "delete"})])
        assert f[topic].result(timeout=20) is None
        res = ConfigResource("topic", topic)

        def describe():
            adm = confluent_admin(b.bootstrap)  # kept alive until the result is in
            return adm.describe_configs([res])[res].result(timeout=20)
        e = describe()
        assert e["retention.ms"].value == "60000" and e["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        assert not e["retention.ms"].is_read_only and e["cleanup.policy"].is_read_only
        assert e["retention.bytes"].value == "-1" and e["retention.bytes"].is_default
        for bad in ({"cleanup.policy": "compact"}, {"no.such.config": "1"}, {"retention.ms": "soon"}):
            t = unique_topic("tc-bad")
            with pytest.raises(Exception) as ei:
                a.create_topics([NewTopic(t, 1, 1, config=bad)])[t].result(timeout=20)
            assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG, bad
        # AlterConfigs replaces the whole set: retention.ms goes back to the broker's value
        a.alter_configs([ConfigResource("topic", topic, set_config={"segment.bytes": "100",
                                                                   "retention.bytes": "1"})])[
            ConfigResource("topic", topic)].result(timeout=20)
        e = describe()
        assert e["retention.ms"].is_default and e["segment.bytes"].value == "100" and e["retention.bytes"].value == "1"
        # applied to the log: one segment per batch, and all but the newest deleted by retention.bytes
        for i in range(5):
            confluent_produce(b.bootstrap, topic, [(None, b"batch-%d" % i, None)], partition=0)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "tc-watermarks"})
        from confluent_kafka import TopicPartition
        try:
            wait_until(lambda: c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5) == (4, 5), timeout=30,
                       msg="old segments deleted by the topic's retention.bytes")
        finally:
            c.close()
        # kafka-python sets it back; the setting survives a restart
        kp = kafka_python_admin(b.bootstrap)
        kp.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "3600000"})])
        b.stop()
        b.start()
        e = describe()
        assert e["retention.ms"].value == "3600000" and e["segment.bytes"].is_default and e["retention.bytes"].is_default
    finally:
        b.stop()
