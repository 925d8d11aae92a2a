"""TLS on the Kafka port (OpenSSL): SSL and SASL_SSL with confluent-kafka and kafka-python, kcat, and a plaintext
client refused. The certificate is made per test module with the openssl command line."""
import os
import subprocess

import pytest

import kproto
from kafka_harness import Broker, confluent_consume_assign, confluent_produce, kcat, unique_topic


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(str(d))
    b = Broker(d, name="tls", sets={"broker.tls_cert_file": cert, "broker.tls_key_file": key,
                                    "broker.sasl_mechanisms": "SCRAM-SHA-256", "broker.sasl_users": "alice:s3cret"})
    b.cert = cert
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ssl_only_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssl")
    cert, key = make_cert(str(d))
    b = Broker(d, name="ssl", sets={"broker.tls_cert_file": cert, "broker.tls_key_file": key})
    b.cert = cert
    b.start()
    yield b
    b.stop()


def test_confluent_ssl_produce_consume(ssl_only_broker):
    b = ssl_only_broker
    auth = {"security.protocol": "SSL", "ssl.ca.location": b.cert}
    topic = unique_topic("tls")
    values = [(None, b"encrypted-%d" % i, None) for i in range(50)]
    confluent_produce(b.bootstrap, topic, values, partition=0, **auth)
    got = confluent_consume_assign(b.bootstrap, topic, 0, 0, 50, **auth)
    assert [m.value() for m in got] == [v for _, v, _ in values]


def test_confluent_sasl_ssl_scram(tls_broker):
    b = tls_broker
    auth = {"security.protocol": "SASL_SSL", "ssl.ca.location": b.cert, "sasl.mechanisms": "SCRAM-SHA-256",
            "sasl.username": "alice", "sasl.password": "s3cret"}
    topic = unique_topic("sasl-ssl")
    big = os.urandom(300_000)  # spans many TLS records
    confluent_produce(b.bootstrap, topic, [(b"k", big, None)], partition=0, **auth)
    got = confluent_consume_assign(b.bootstrap, topic, 0, 0, 1, **auth)
    assert got[0].value() == big


def test_kafka_python_ssl(ssl_only_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    b = ssl_only_broker
    auth = dict(security_protocol="SSL", ssl_cafile=b.cert)
    topic = unique_topic("kp-tls")
    p = KafkaProducer(bootstrap_servers=b.bootstrap, **auth)
    for i in range(10):
        p.send(topic, b"kp-%d" % i, partition=0).get(timeout=20)
    p.close()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap, consumer_timeout_ms=5000, **auth)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    got = [m.value for m in c]
    c.close()
    assert got == [b"kp-%d" % i for i in range(10)]


def test_kcat_ssl_metadata(ssl_only_broker):
    b = ssl_only_broker
    out = kcat(["-b", b.bootstrap, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + b.cert, "-L"])
    assert "broker 0 at 127.0.0.1" in out.stdout.decode()


def test_plaintext_client_refused(ssl_only_broker):
    s = kproto.connect(ssl_only_broker.bootstrap)
    try:
        s.sendall(kproto.request(18, 0, 1, b""))  # not a TLS ClientHello
        assert kproto.wait_closed(s), "a plaintext request was served on the TLS port"
    finally:
        s.close()
    ssl_only_broker.assert_alive()


def test_missing_key_refused_at_start(tmp_path):
    cert, _key = make_cert(str(tmp_path))
    b = Broker(tmp_path / "b", name="nokey", sets={"broker.tls_cert_file": cert})
    with pytest.raises(AssertionError):
        b.start()
    assert "needs both broker.tls_cert_file and broker.tls_key_file" in open(b.log_path).read()
