#!/usr/bin/python3
"""One confluent-kafka-python consumer-group member for Strom's membership proof.

Usage: ck_group_member.py BOOTSTRAP TOPIC GROUP

Prints "ASSIGN p,p,.." (or "ASSIGN -") on each assignment change and "REC partition offset" for each
record once its offset is committed synchronously. A commit the coordinator refuses (a rebalance moved the
partition on, for one) prints "COMMITFAIL partition offset error" instead: that record is not committed,
so its next owner reads it again. SIGTERM closes the consumer, which leaves the group.

On each assignment the member reads the committed offsets itself (an OffsetFetch to the coordinator, as
librdkafka would send) and assigns the partitions at them, printing "COMMITTED p:o,.." to stderr. This
works around librdkafka bug #4636 (fixed in 2.4.0; Debian ships 2.0.2): assign() resumes every newly
assigned partition, paused or not, and a partition this member had owned in an earlier generation then
fetches from its old position while the committed offset is still being looked up, so records its
later owners committed come back. With the offsets given to assign() there is no lookup to race.
"""
import signal
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException

bootstrap, topic, group = sys.argv[1:4]
stopping = False


def on_term(_sig, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)


def show(parts):
    print("ASSIGN " + (",".join(str(p) for p in sorted(parts)) or "-"), flush=True)


def committed(consumer, parts):
    """The partitions at their committed offsets (the beginning where none is), or None on failure."""
    for _ in range(3):
        try:
            got = consumer.committed(parts, timeout=10)
        except KafkaException as e:
            print("COMMITTED-FAILED", e, file=sys.stderr, flush=True)
            continue
        if any(tp.error for tp in got):
            print("COMMITTED-FAILED", [str(tp.error) for tp in got if tp.error], file=sys.stderr, flush=True)
            continue
        for tp in got:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING
        print("COMMITTED " + ",".join("%d:%d" % (tp.partition, tp.offset) for tp in got),
              file=sys.stderr, flush=True)
        return got
    return None


def on_assign(consumer, parts):
    at = committed(consumer, parts) if parts else None
    # Without offsets (the lookup failed three times) librdkafka looks them up itself, bug and all.
    consumer.assign(at if at is not None else parts)
    show([p.partition for p in parts])


def on_revoke(_consumer, _parts):
    show([])


c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
})
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
while not stopping:
    m = c.poll(0.2)
    if m is None:
        continue
    if m.error():
        print("ERROR", m.error(), file=sys.stderr, flush=True)
        continue
    # A synchronous commit raises on a request-level error and reports a refused partition in the
    # returned list; either way the record is not committed, and printing it would claim it was.
    try:
        failed = [tp.error for tp in c.commit(message=m, asynchronous=False) or [] if tp.error]
    except KafkaException as e:
        failed = [e]
    if failed:
        print("COMMITFAIL %d %d %s" % (m.partition(), m.offset(), failed[0]), flush=True)
        continue
    print("REC %d %d" % (m.partition(), m.offset()), flush=True)
c.close()
