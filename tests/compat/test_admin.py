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
