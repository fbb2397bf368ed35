"""Two kafka-python consumer-group members for TestPythonConsumerGroup.

kafka-python 2.0.2 (Debian's python3-kafka) speaks old group versions
(JoinGroup v2, SyncGroup v1, OffsetCommit v2, OffsetFetch v1). Both members
consume TOPIC in GROUP (starting only once they share the partitions),
commit synchronously after each record, and the
script prints one line per member with the number of records it consumed,
then the union size and the committed offsets per partition.

Usage: /usr/bin/python3 group_consumer.py BOOTSTRAP TOPIC GROUP PARTITIONS
"""
import sys
import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

bootstrap, topic, group, parts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seen = [set(), set()]
# assigned[i] is member i's current assignment. The records are produced before the members start, so a
# member that fetched at once could read them all before the other joins (the group's first rebalance
# is not delayed when group.initial.rebalance.delay.ms is 0): members keep their partitions paused until
# both hold disjoint, non-empty assignments that cover every partition.
assigned = [set(), set()]
lock = threading.Lock()


def ready():
    with lock:
        a, b = assigned
        return a and b and not (a & b) and len(a | b) == parts


class Listener(ConsumerRebalanceListener):
    def __init__(self, i, consumer):
        self.i, self.consumer = i, consumer

    def on_partitions_revoked(self, revoked):
        with lock:
            assigned[self.i] = set()

    def on_partitions_assigned(self, tps):
        with lock:
            assigned[self.i] = {tp.partition for tp in tps}
        if tps:
            self.consumer.pause(*tps)


def member(i):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000)
    c.subscribe([topic], listener=Listener(i, c))
    deadline = time.time() + 60
    idle_until = None
    while time.time() < deadline:
        if ready():
            if idle_until is None:
                idle_until = time.time() + 5
            if c.paused():
                c.resume(*c.paused())
        if idle_until is not None and time.time() > idle_until:
            break
        batches = c.poll(timeout_ms=200)
        for tp, msgs in batches.items():
            for m in msgs:
                c.commit({tp: OffsetAndMetadata(m.offset + 1, None)})
                seen[i].add(m.value.decode())
                idle_until = time.time() + 5
    c.close()


threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for i in range(2):
    print("MEMBER %d %d" % (i, len(seen[i])))
print("UNION %d" % len(seen[0] | seen[1]))
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
tps = [TopicPartition(topic, p) for p in range(parts)]
ends = c.end_offsets(tps)
for tp in tps:
    print("PARTITION %d %s %d" % (tp.partition, c.committed(tp), ends[tp]))
c.close()
