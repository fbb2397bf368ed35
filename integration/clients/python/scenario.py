#!/usr/bin/python3
"""Strom client-matrix scenario for the Python Kafka clients.

Usage: /usr/bin/python3 scenario.py {kafka-python|confluent-kafka-python} BOOTSTRAP < scenario.json

The scenario (topic, records, config to set) comes as JSON on stdin from the Go package
github.com/stromhq/strom/integration/clients, which also defines the features. One JSON line per feature
goes to stdout: {"feature": ..., "result": "pass"|"fail"|"n/a", "detail": ...}. Logs go to stderr only.

Run it with /usr/bin/python3: Debian's python3-kafka and python3-confluent-kafka are installed for that
interpreter. snappy/lz4/zstd with kafka-python need python3-snappy, python3-lz4 and python3-zstandard.
"""

import json
import sys
import time

SETTLE_TIMEOUT = 15.0  # seconds; metadata and config changes propagate to brokers asynchronously
SETTLE_POLL = 0.2
TIME_GAP = 0.03
CALL_TIMEOUT = 30.0


class NotSupported(Exception):
    """The client cannot do this at all: reported as n/a with the reason."""


def emit(feature, result, detail=""):
    print(json.dumps({"feature": feature, "result": result, "detail": detail}), flush=True)


class KafkaPythonDriver:
    """kafka-python (Debian's 2.0.2): KafkaAdminClient, KafkaProducer, KafkaConsumer with assign()."""

    def __init__(self, bootstrap):
        import kafka
        from kafka.admin import KafkaAdminClient

        self.kafka = kafka
        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="strom-matrix-kafka-python")
        self.consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                            group_id=None, consumer_timeout_ms=1000)

    def close(self):
        self.consumer.close()
        self.admin.close()

    def create_topic(self, topic, partitions):
        from kafka.admin import NewTopic

        resp = self.admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=int(CALL_TIMEOUT * 1000))
        for t in getattr(resp, "topic_errors", []):
            if t[1] != 0:
                raise RuntimeError("create topic error code %d: %s" % (t[1], t[2] if len(t) > 2 else ""))

    def partition_count(self, topic):
        # partitions_for_topic reads cached metadata; force a refresh so a new topic shows up.
        self.consumer._client.cluster.request_update()
        self.consumer.topics()
        parts = self.consumer.partitions_for_topic(topic)
        return len(parts) if parts else 0

    def produce(self, topic, codec, idempotent, records):
        if idempotent:
            raise NotSupported("kafka-python %s has no idempotent producer" % self.kafka.__version__)
        from kafka import codec as kcodec

        have = {"gzip": kcodec.has_gzip, "snappy": kcodec.has_snappy, "lz4": kcodec.has_lz4, "zstd": kcodec.has_zstd}
        if codec in have and not have[codec]():
            module = {"gzip": "gzip", "snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}[codec]
            raise RuntimeError("kafka-python supports %s but its codec module is not installed (%s)" % (codec, module))
        p = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                     compression_type=None if codec == "none" else codec, linger_ms=0)
        try:
            futures = [p.send(topic, key=r["key"].encode(), value=r["value"].encode(), partition=r["partition"],
                              headers=[(h["key"], h["value"].encode()) for h in r["headers"]]) for r in records]
            for f in futures:
                f.get(timeout=CALL_TIMEOUT)
        finally:
            p.close(timeout=CALL_TIMEOUT)

    def _tp(self, topic, partition):
        return self.kafka.TopicPartition(topic, partition)

    def end_offset(self, topic, partition):
        tp = self._tp(topic, partition)
        return self.consumer.end_offsets([tp])[tp]

    def offset_for_time(self, topic, partition, ts):
        tp = self._tp(topic, partition)
        r = self.consumer.offsets_for_times({tp: ts})[tp]
        return -1 if r is None else r.offset

    def read_partition(self, topic, partition, end):
        out = []
        if end <= 0:
            return out
        tp = self._tp(topic, partition)
        self.consumer.assign([tp])
        self.consumer.seek_to_beginning(tp)
        deadline = time.time() + CALL_TIMEOUT
        while time.time() < deadline:
            for recs in self.consumer.poll(timeout_ms=500).values():
                for m in recs:
                    if m.offset < end:
                        out.append({"offset": m.offset, "partition": m.partition, "key": m.key.decode(),
                                    "value": m.value.decode(),
                                    "headers": [{"key": k, "value": v.decode()} for k, v in m.headers]})
                    if m.offset >= end - 1:
                        return out
        raise RuntimeError("timed out after %d records" % len(out))

    def set_topic_config(self, topic, key, value):
        from kafka.admin import ConfigResource, ConfigResourceType

        # kafka-python 2.0.2 only has the legacy AlterConfigs (replaces the topic's whole dynamic config).
        resp = self.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={key: value})])
        for r in resp.resources:
            if r[0] != 0:
                raise RuntimeError("alter configs error code %d: %s" % (r[0], r[1]))

    def topic_config(self, topic, key):
        from kafka.admin import ConfigResource, ConfigResourceType

        for resp in self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
            for r in resp.resources:
                if r[0] != 0:
                    raise RuntimeError("describe configs error code %d: %s" % (r[0], r[1]))
                for entry in r[4]:
                    if entry[0] == key:
                        return entry[1]
        raise RuntimeError("config %s not described" % key)


class ConfluentDriver:
    """confluent-kafka-python (Debian's 1.7.0 on the system librdkafka)."""

    def __init__(self, bootstrap):
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        self.ck = confluent_kafka
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "strom-matrix-ckp",
                                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def close(self):
        self.consumer.close()

    def create_topic(self, topic, partitions):
        from confluent_kafka.admin import NewTopic

        for f in self.admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            f.result(timeout=CALL_TIMEOUT)

    def partition_count(self, topic):
        md = self.admin.list_topics(topic, timeout=CALL_TIMEOUT)
        t = md.topics.get(topic)
        if t is None:
            return 0
        if t.error is not None:
            raise RuntimeError(str(t.error))
        return len(t.partitions)

    def produce(self, topic, codec, idempotent, records):
        p = self.ck.Producer({"bootstrap.servers": self.bootstrap, "compression.codec": codec,
                              "enable.idempotence": idempotent, "acks": "all", "linger.ms": 0})
        errors = []
        delivered = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                delivered.append(msg.offset())

        for r in records:
            p.produce(topic, value=r["value"].encode(), key=r["key"].encode(), partition=r["partition"],
                      headers=[(h["key"], h["value"].encode()) for h in r["headers"]], on_delivery=on_delivery)
        left = p.flush(CALL_TIMEOUT)
        if errors:
            raise RuntimeError("delivery failed: " + "; ".join(errors))
        if left or len(delivered) != len(records):
            raise RuntimeError("%d of %d records not delivered" % (len(records) - len(delivered), len(records)))

    def end_offset(self, topic, partition):
        _, high = self.consumer.get_watermark_offsets(self.ck.TopicPartition(topic, partition), timeout=CALL_TIMEOUT)
        return high

    def offset_for_time(self, topic, partition, ts):
        tps = self.consumer.offsets_for_times([self.ck.TopicPartition(topic, partition, ts)], timeout=CALL_TIMEOUT)
        if tps[0].error is not None:
            raise RuntimeError(str(tps[0].error))
        return tps[0].offset

    def read_partition(self, topic, partition, end):
        out = []
        if end <= 0:
            return out
        self.consumer.assign([self.ck.TopicPartition(topic, partition, self.ck.OFFSET_BEGINNING)])
        try:
            deadline = time.time() + CALL_TIMEOUT
            while time.time() < deadline:
                m = self.consumer.poll(0.5)
                if m is None:
                    continue
                if m.error() is not None:
                    raise RuntimeError(str(m.error()))
                if m.offset() < end:
                    out.append({"offset": m.offset(), "partition": m.partition(), "key": m.key().decode(),
                                "value": m.value().decode(),
                                "headers": [{"key": k, "value": v.decode()} for k, v in (m.headers() or [])]})
                if m.offset() >= end - 1:
                    return out
            raise RuntimeError("timed out after %d records" % len(out))
        finally:
            self.consumer.unassign()

    def set_topic_config(self, topic, key, value):
        from confluent_kafka.admin import ConfigResource

        # 1.7.0 has only the legacy AlterConfigs (replaces the topic's whole dynamic config).
        for f in self.admin.alter_configs([ConfigResource("topic", topic, set_config={key: value})]).values():
            f.result(timeout=CALL_TIMEOUT)

    def topic_config(self, topic, key):
        from confluent_kafka.admin import ConfigResource

        for f in self.admin.describe_configs([ConfigResource("topic", topic)]).values():
            entries = f.result(timeout=CALL_TIMEOUT)
            if key in entries:
                return entries[key].value
        raise RuntimeError("config %s not described" % key)


def poll(fn):
    """Call fn until it returns True, at most SETTLE_TIMEOUT; re-raise its last error on timeout."""
    deadline = time.time() + SETTLE_TIMEOUT
    while True:
        err = None
        try:
            if fn():
                return
        except NotSupported:
            raise
        except Exception as e:  # noqa: BLE001 -- retried, reported if it persists
            err = e
        if time.time() > deadline:
            raise err if err is not None else RuntimeError("timed out")
        time.sleep(SETTLE_POLL)


def step(feature, fn, results):
    try:
        fn()
    except NotSupported as e:
        results[feature] = "n/a"
        emit(feature, "n/a", str(e))
        return
    except Exception as e:  # noqa: BLE001 -- every failure is a result, not a crash
        results[feature] = "fail"
        emit(feature, "fail", "%s: %s" % (type(e).__name__, e))
        return
    results[feature] = "pass"
    emit(feature, "pass")


def compare(p, want, got):
    for i, (w, g) in enumerate(zip(want, got)):
        if g["offset"] != i:
            return "partition %d record %d: offset %d, want %d" % (p, i, g["offset"], i)
        if g["key"] != w["key"]:
            return "partition %d offset %d: key %r, want %r" % (p, i, g["key"], w["key"])
        if g["value"] != w["value"]:
            return "partition %d offset %d: value %r, want %r" % (p, i, g["value"][:60], w["value"][:60])
        if g["headers"] != w["headers"]:
            return "partition %d offset %d: headers %r, want %r" % (p, i, g["headers"], w["headers"])
    if len(got) != len(want):
        return "partition %d: %d records, want %d" % (p, len(got), len(want))
    return ""


def run(d, sc):
    results = {}
    topic = sc["topic"]

    def create():
        d.create_topic(topic, sc["partitions"])
        poll(lambda: d.partition_count(topic) == sc["partitions"])

    step("create-topic", create, results)

    for st in sc["produce"]:
        step(st["feature"], lambda st=st: d.produce(topic, st["codec"], st["idempotent"], st["records"]), results)

    def consume():
        want = {}
        for st in sc["produce"]:
            if results.get(st["feature"]) == "pass":
                for r in st["records"]:
                    want.setdefault(r["partition"], []).append(r)
        for p in range(sc["partitions"]):
            end = d.end_offset(topic, p)
            got = d.read_partition(topic, p, end)
            diff = compare(p, [{"key": r["key"], "value": r["value"], "headers": r["headers"]} for r in want.get(p, [])], got)
            if diff:
                raise RuntimeError(diff)

    step("consume-by-offset", consume, results)

    def list_offsets_time():
        p = sc["time_partition"]
        a, b = sc["time_records"]
        d.produce(topic, "none", False, [a])
        time.sleep(TIME_GAP)
        mid = int(time.time() * 1000)
        time.sleep(TIME_GAP)
        d.produce(topic, "none", False, [b])
        end = d.end_offset(topic, p)
        got = d.offset_for_time(topic, p, mid)
        if got != end - 1:
            raise RuntimeError("offset for timestamp %d is %d, want %d (the second record)" % (mid, got, end - 1))

    step("list-offsets-time", list_offsets_time, results)

    def alter_config():
        d.set_topic_config(topic, sc["config_key"], sc["config_value"])
        poll(lambda: d.topic_config(topic, sc["config_key"]) == sc["config_value"])

    step("alter-config", alter_config, results)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("kafka-python", "confluent-kafka-python"):
        print(__doc__, file=sys.stderr)
        return 2
    sc = json.load(sys.stdin)
    driver = KafkaPythonDriver if sys.argv[1] == "kafka-python" else ConfluentDriver
    d = driver(sys.argv[2])
    try:
        run(d, sc)
    finally:
        d.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
