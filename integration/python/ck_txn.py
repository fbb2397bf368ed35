#!/usr/bin/python3
"""confluent-kafka-python transactions for Strom's transaction proof.

Usage: ck_txn.py BOOTSTRAP OUT_TOPIC IN_TOPIC GROUP TXN_ID_PREFIX IN_COUNT

1. A transactional producer commits a-0..a-9, aborts x-0..x-9 and commits b-0..b-9 on OUT_TOPIC
   (one partition).
2. Consume-transform-produce: a read_committed consumer in GROUP reads IN_COUNT records of IN_TOPIC; for
   each batch a second transactional producer writes "t-" + value to OUT_TOPIC and adds the consumer's
   positions with send_offsets_to_transaction. The first batch is aborted on purpose and re-read from the
   offsets it started at; every other batch is committed.
3. A read_committed consumer (no group) reads OUT_TOPIC from the start and prints "READ value" for each
   record until it has read 20 + IN_COUNT records, then "DONE".
Errors go to stderr with a non-zero exit.
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, out_topic, in_topic, group, tid, in_count = sys.argv[1:7]
in_count = int(in_count)
deadline = time.time() + 45


def producer(txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5})
    p.init_transactions(20)
    return p


p = producer(tid + "-plain")
for prefix, commit in (("a", True), ("x", False), ("b", True)):
    p.begin_transaction()
    for i in range(10):
        p.produce(out_topic, value=("%s-%d" % (prefix, i)).encode(), partition=0)
    if commit:
        p.commit_transaction(20)
    else:
        p.flush(20)
        p.abort_transaction(20)
print("PLAIN done", flush=True)

ctp = producer(tid + "-ctp")
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
})
c.subscribe([in_topic])
done = 0
aborted_once = False
while done < in_count:
    if time.time() > deadline:
        sys.exit("consume-transform-produce: %d of %d records before the deadline" % (done, in_count))
    msgs = c.consume(num_messages=5, timeout=0.5)
    msgs = [m for m in msgs if not m.error()]
    if not msgs:
        continue
    ctp.begin_transaction()
    for m in msgs:
        ctp.produce(out_topic, value=b"t-" + m.value(), partition=0)
    ctp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 20)
    if not aborted_once:
        aborted_once = True
        ctp.abort_transaction(20)
        firsts = {}
        for m in msgs:
            firsts.setdefault(m.partition(), m.offset())
        for part, off in firsts.items():
            c.seek(TopicPartition(in_topic, part, off))
        print("CTP aborted %d" % len(msgs), flush=True)
        continue
    ctp.commit_transaction(20)
    done += len(msgs)
    print("CTP committed %d" % len(msgs), flush=True)
c.close()

r = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group + "-reader",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
})
r.assign([TopicPartition(out_topic, 0, 0)])
n = 0
while n < 20 + in_count:
    if time.time() > deadline + 10:
        sys.exit("read_committed: %d of %d records before the deadline" % (n, 20 + in_count))
    m = r.poll(0.5)
    if m is None or m.error():
        continue
    print("READ %s" % m.value().decode(), flush=True)
    n += 1
r.close()
print("DONE", flush=True)
