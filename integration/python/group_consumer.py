"""Two kafka-python consumer-group members for TestPythonConsumerGroup.

kafka-python 2.0.2 (Debian's python3-kafka) speaks old group versions
(JoinGroup v2, SyncGroup v1, OffsetCommit v2, OffsetFetch v1). Both members
consume TOPIC in GROUP, commit synchronously after each record, and the
script prints one line per member with the number of records it consumed,
then the union size and the committed offsets per partition.

Usage: /usr/bin/python3 group_consumer.py BOOTSTRAP TOPIC GROUP PARTITIONS
"""
import sys
import threading

from kafka import KafkaConsumer, TopicPartition

bootstrap, topic, group, parts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seen = [set(), set()]


def member(i):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=10000, session_timeout_ms=10000,
                      heartbeat_interval_ms=1000)
    for m in c:
        c.commit()
        seen[i].add(m.value.decode())
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
