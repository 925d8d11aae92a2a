"""SASL on the Kafka port: PLAIN and SCRAM-SHA-256 with each client's own flow (librdkafka: handshake v1 +
SaslAuthenticate v0; kafka-python: handshake v0 + raw tokens), wrong passwords refused, and nothing but ApiVersions
and the SASL requests served before authentication."""
import pytest

import kproto
from kproto import array, request, string
from kafka_harness import confluent_consume_assign, confluent_produce, create_topic, unique_topic

USERS = "alice:alice-secret,bob:b0b=pa:ss"  # a password may hold ":" and "="
SASL_SETS = {"broker.sasl_mechanisms": "PLAIN,SCRAM-SHA-256", "broker.sasl_users": USERS}


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    from kafka_harness import Broker
    b = Broker(tmp_path_factory.mktemp("sasl"), sets=SASL_SETS, name="sasl")
    b.start()
    yield b
    b.stop()


def _confluent(mechanism, user, password):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mechanism, "sasl.username": user,
            "sasl.password": password}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_confluent_sasl_produce_consume(sasl_broker, mechanism):
    auth = _confluent(mechanism, "alice", "alice-secret")
    topic = unique_topic("sasl")
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": sasl_broker.bootstrap, **auth})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    values = [(None, b"secret-%d" % i, None) for i in range(20)]
    confluent_produce(sasl_broker.bootstrap, topic, values, partition=0, **auth)
    got = confluent_consume_assign(sasl_broker.bootstrap, topic, 0, 0, 20, **auth)
    assert [m.value() for m in got] == [v for _, v, _ in values]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_confluent_wrong_password_refused(sasl_broker, mechanism):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": sasl_broker.bootstrap, **_confluent(mechanism, "alice", "wrong")})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_scram_password_with_special_characters(sasl_broker):
    auth = _confluent("SCRAM-SHA-256", "bob", "b0b=pa:ss")
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": sasl_broker.bootstrap, **auth}).list_topics(timeout=10)
    assert md.brokers


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_kafka_python_sasl_raw_tokens(sasl_broker, mechanism):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    auth = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_plain_username="alice",
                sasl_plain_password="alice-secret")
    topic = unique_topic("kp-sasl")
    p = KafkaProducer(bootstrap_servers=sasl_broker.bootstrap, **auth)
    for i in range(10):
        p.send(topic, b"kp-%d" % i, partition=0).get(timeout=20)
    p.close()
    c = KafkaConsumer(bootstrap_servers=sasl_broker.bootstrap, consumer_timeout_ms=5000, **auth)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    got = [m.value for m in c]
    c.close()
    assert got == [b"kp-%d" % i for i in range(10)]


def test_kafka_python_wrong_password_refused(sasl_broker):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    with pytest.raises((KafkaError, Exception)):
        KafkaProducer(bootstrap_servers=sasl_broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="nope",
                      api_version_auto_timeout_ms=5000, request_timeout_ms=5000)


def test_requests_before_authentication_close_the_connection(sasl_broker):
    s = kproto.connect(sasl_broker.bootstrap)
    try:
        s.sendall(request(18, 0, 1, b""))  # ApiVersions is allowed
        corr, body = kproto.recv_response(s)
        assert corr == 1 and kproto.api_versions_v0_parse(body)[0] == 0
        s.sendall(request(3, 1, 2, array([string("t")])))  # Metadata is not
        assert kproto.wait_closed(s), "Metadata before authentication was served"
    finally:
        s.close()
    # an unknown mechanism is refused with UNSUPPORTED_SASL_MECHANISM and the enabled list
    s = kproto.connect(sasl_broker.bootstrap)
    try:
        s.sendall(request(17, 1, 3, string("GSSAPI")))
        _corr, body = kproto.recv_response(s)
        r = kproto.Reader(body)
        assert r.i16() == 33
        assert r.array(lambda r: r.string()) == ["PLAIN", "SCRAM-SHA-256"]
    finally:
        s.close()


def test_bad_user_list_is_refused_at_start(make_broker):
    from kafka_harness import Broker
    import os
    b = Broker(os.path.join(os.environ.get("TMPDIR", "/tmp"), unique_topic("badsasl")),
               sets={"broker.sasl_mechanisms": "PLAIN", "broker.sasl_users": "alice-without-password"}, name="bad")
    with pytest.raises(AssertionError):
        b.start()
    assert "sasl_users must be user:password" in open(b.log_path).read()


def test_sasl_off_by_default_accepts_plaintext_clients(broker):
    topic = create_topic(broker.bootstrap, unique_topic("plain"), 1)
    confluent_produce(broker.bootstrap, topic, [(None, b"x", None)], partition=0)
