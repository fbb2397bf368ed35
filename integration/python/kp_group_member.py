#!/usr/bin/python3
"""One kafka-python (2.0.2, Debian's python3-kafka) group member for Strom's membership proof.

Usage: kp_group_member.py BOOTSTRAP TOPIC GROUP

Prints "ASSIGN p,p,.." (or "ASSIGN -") on each assignment change and "REC partition offset" for each
record once its offset is committed synchronously. SIGTERM closes the consumer, which leaves the group.
"""
import signal
import sys

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

bootstrap, topic, group = sys.argv[1:4]
stopping = False


def on_term(_sig, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)


def show(parts):
    print("ASSIGN " + (",".join(str(p) for p in sorted(parts)) or "-"), flush=True)


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        show([])

    def on_partitions_assigned(self, assigned):
        show([tp.partition for tp in assigned])


c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                  enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
c.subscribe([topic], listener=Listener())
while not stopping:
    for tp, recs in c.poll(timeout_ms=200, max_records=1).items():
        for r in recs:
            try:
                c.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(r.offset + 1, None)})
            except Exception as e:  # a commit refused during a rebalance: the record is read again
                print("COMMIT-FAILED", e, file=sys.stderr, flush=True)
                if tp in c.assignment():
                    c.seek(tp, r.offset)  # still ours: read it again; else its next owner does
                continue
            print("REC %d %d" % (r.partition, r.offset), flush=True)
c.close()
