"""One consumer-group member in its own process (so the test can SIGKILL it).

usage: /usr/bin/python3 group_member.py CLIENT BOOTSTRAP TOPIC GROUP NAME
CLIENT: confluent | kafka-python
Prints JSON lines on stdout: {"ev": "assign"|"revoke"|"rec"|"commit_fail"|"ready"|"closed", "t": time, ...}
SIGTERM => close() cleanly (LeaveGroup) and exit 0.
Offsets are committed synchronously after every processed batch (auto-commit off).
"""
import json
import signal
import sys
import time

client, bootstrap, topic, group, name = sys.argv[1:6]
stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)


def emit(ev, **kw):
    kw.update(ev=ev, t=time.time(), member=name)
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def run_confluent():
    from confluent_kafka import Consumer, KafkaException
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "enable.partition.eof": False, "fetch.wait.max.ms": 100,
    })

    def on_assign(cons, parts):
        emit("assign", parts=sorted(p.partition for p in parts))
        cons.assign(parts)

    def on_revoke(cons, parts):
        emit("revoke", parts=sorted(p.partition for p in parts))
        cons.unassign()

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    emit("ready")
    while not stop:
        msgs = c.consume(100, 0.2)
        got = False
        for m in msgs:
            if m.error():
                emit("error", err=str(m.error()))
                continue
            got = True
            emit("rec", p=m.partition(), o=m.offset(), v=m.value().decode())
        if got:
            try:
                c.commit(asynchronous=False)
            except KafkaException as e:
                emit("commit_fail", err=str(e))
    c.close()
    emit("closed")


def run_kafka_python():
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import CommitFailedError, KafkaError
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=name,
                      session_timeout_ms=6000, heartbeat_interval_ms=500,
                      enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)

    class L(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("revoke", parts=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit("assign", parts=sorted(tp.partition for tp in assigned))

    c.subscribe([topic], listener=L())
    emit("ready")
    while not stop:
        batches = c.poll(timeout_ms=200)
        got = False
        for tp, msgs in batches.items():
            for m in msgs:
                got = True
                emit("rec", p=tp.partition, o=m.offset, v=m.value.decode())
        if got:
            try:
                c.commit()
            except (CommitFailedError, KafkaError) as e:
                emit("commit_fail", err=repr(e))
    c.close()
    emit("closed")


if client == "confluent":
    run_confluent()
elif client == "kafka-python":
    run_kafka_python()
else:
    sys.exit("unknown client %s" % client)
