// Strom client-matrix scenario for the Java kafka-clients (Apache Kafka's own client).
//
// Usage: java -cp 'CLASSES:KAFKA_LIBS/*' Scenario BOOTSTRAP < scenario.json
//
// The scenario (topic, records, config to set) comes as JSON on stdin from the Go package
// github.com/stromhq/strom/integration/clients, which compiles this file with javac against the jars of
// the Apache Kafka release the integration harness uses and parses stdout: one JSON line per feature,
// {"feature": ..., "result": "pass"|"fail"|"n/a", "detail": ...}. Everything else goes to stderr.
// Jackson comes from Kafka's own classpath.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Scenario {
    private static final long SETTLE_TIMEOUT_MS = 15_000; // metadata and config changes propagate asynchronously
    private static final long SETTLE_POLL_MS = 200;
    private static final long TIME_GAP_MS = 30;
    private static final long CALL_TIMEOUT_S = 30;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static PrintStream out;

    private final String bootstrap;
    private final Admin admin;
    private final JsonNode sc;
    private final String topic;
    private final Map<String, String> results = new HashMap<>();

    private Scenario(String bootstrap, JsonNode sc) {
        this.bootstrap = bootstrap;
        this.sc = sc;
        this.topic = sc.get("topic").asText();
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "strom-matrix-java");
        this.admin = Admin.create(p);
    }

    @FunctionalInterface
    private interface Step {
        void run() throws Exception;
    }

    @FunctionalInterface
    private interface Check {
        boolean ok() throws Exception;
    }

    private static void emit(String feature, String result, String detail) {
        ObjectNode n = JSON.createObjectNode();
        n.put("feature", feature);
        n.put("result", result);
        n.put("detail", detail);
        out.println(n.toString());
        out.flush();
    }

    private void step(String feature, Step s) {
        try {
            s.run();
        } catch (Exception e) {
            Throwable c = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
            results.put(feature, "fail");
            emit(feature, "fail", c.getClass().getSimpleName() + ": " + c.getMessage());
            return;
        }
        results.put(feature, "pass");
        emit(feature, "pass", "");
    }

    private static void poll(Check c) throws Exception {
        long deadline = System.currentTimeMillis() + SETTLE_TIMEOUT_MS;
        while (true) {
            Exception err = null;
            try {
                if (c.ok()) {
                    return;
                }
            } catch (Exception e) {
                err = e;
            }
            if (System.currentTimeMillis() > deadline) {
                throw err != null ? err : new RuntimeException("timed out");
            }
            Thread.sleep(SETTLE_POLL_MS);
        }
    }

    private int partitionCount() throws Exception {
        return admin.describeTopics(List.of(topic)).allTopicNames().get(CALL_TIMEOUT_S, TimeUnit.SECONDS)
                .get(topic).partitions().size();
    }

    private void produce(String codec, boolean idempotent, JsonNode records) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(idempotent));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (JsonNode r : records) {
                List<Header> headers = new ArrayList<>();
                for (JsonNode h : r.get("headers")) {
                    headers.add(new RecordHeader(h.get("key").asText(), bytes(h.get("value").asText())));
                }
                acks.add(producer.send(new ProducerRecord<>(topic, r.get("partition").asInt(), bytes(r.get("key").asText()),
                        bytes(r.get("value").asText()), headers)));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
            }
        }
    }

    private long listOffset(int partition, OffsetSpec spec) throws Exception {
        TopicPartition tp = new TopicPartition(topic, partition);
        return admin.listOffsets(Map.of(tp, spec)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(tp).offset();
    }

    private List<ConsumerRecord<byte[], byte[]>> readPartition(int partition, long end) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        if (end <= 0) {
            return got;
        }
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        TopicPartition tp = new TopicPartition(topic, partition);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long deadline = System.currentTimeMillis() + CALL_TIMEOUT_S * 1000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    if (r.offset() < end) {
                        got.add(r);
                    }
                    if (r.offset() >= end - 1) {
                        return got;
                    }
                }
            }
        }
        throw new RuntimeException("timed out after " + got.size() + " records");
    }

    private static String compare(int p, List<JsonNode> want, List<ConsumerRecord<byte[], byte[]>> got) {
        for (int i = 0; i < Math.min(want.size(), got.size()); i++) {
            JsonNode w = want.get(i);
            ConsumerRecord<byte[], byte[]> g = got.get(i);
            if (g.offset() != i) {
                return "partition " + p + " record " + i + ": offset " + g.offset() + ", want " + i;
            }
            if (!str(g.key()).equals(w.get("key").asText())) {
                return "partition " + p + " offset " + i + ": key " + str(g.key()) + ", want " + w.get("key").asText();
            }
            if (!str(g.value()).equals(w.get("value").asText())) {
                return "partition " + p + " offset " + i + ": value differs";
            }
            List<String> gh = new ArrayList<>();
            for (Header h : g.headers()) {
                gh.add(h.key() + "=" + str(h.value()));
            }
            List<String> wh = new ArrayList<>();
            for (JsonNode h : w.get("headers")) {
                wh.add(h.get("key").asText() + "=" + h.get("value").asText());
            }
            if (!gh.equals(wh)) {
                return "partition " + p + " offset " + i + ": headers " + gh + ", want " + wh;
            }
        }
        if (got.size() != want.size()) {
            return "partition " + p + ": " + got.size() + " records, want " + want.size();
        }
        return "";
    }

    private void run() {
        int partitions = sc.get("partitions").asInt();
        step("create-topic", () -> {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
            poll(() -> partitionCount() == partitions);
        });

        for (JsonNode st : sc.get("produce")) {
            step(st.get("feature").asText(),
                    () -> produce(st.get("codec").asText(), st.get("idempotent").asBoolean(), st.get("records")));
        }

        step("consume-by-offset", () -> {
            Map<Integer, List<JsonNode>> want = new HashMap<>();
            for (JsonNode st : sc.get("produce")) {
                if (!"pass".equals(results.get(st.get("feature").asText()))) {
                    continue;
                }
                for (JsonNode r : st.get("records")) {
                    want.computeIfAbsent(r.get("partition").asInt(), k -> new ArrayList<>()).add(r);
                }
            }
            for (int p = 0; p < partitions; p++) {
                long end = listOffset(p, OffsetSpec.latest());
                String diff = compare(p, want.getOrDefault(p, List.of()), readPartition(p, end));
                if (!diff.isEmpty()) {
                    throw new RuntimeException(diff);
                }
            }
        });

        step("list-offsets-time", () -> {
            int p = sc.get("time_partition").asInt();
            JsonNode recs = sc.get("time_records");
            produce("none", false, JSON.createArrayNode().add(recs.get(0)));
            Thread.sleep(TIME_GAP_MS);
            long mid = System.currentTimeMillis();
            Thread.sleep(TIME_GAP_MS);
            produce("none", false, JSON.createArrayNode().add(recs.get(1)));
            long end = listOffset(p, OffsetSpec.latest());
            long got = listOffset(p, OffsetSpec.forTimestamp(mid));
            if (got != end - 1) {
                throw new RuntimeException("offset for timestamp " + mid + " is " + got + ", want " + (end - 1) + " (the second record)");
            }
        });

        step("alter-config", () -> {
            String key = sc.get("config_key").asText();
            String value = sc.get("config_value").asText();
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry(key, value), AlterConfigOp.OpType.SET))))
                    .all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
            poll(() -> {
                ConfigEntry e = admin.describeConfigs(List.of(res)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(res).get(key);
                return e != null && value.equals(e.value());
            });
        });
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String str(byte[] b) {
        return b == null ? "" : new String(b, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        // stdout carries result lines only; anything a library prints there would break the report.
        out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(System.err);
        if (args.length != 1) {
            System.err.println("usage: java Scenario BOOTSTRAP < scenario.json");
            System.exit(2);
        }
        JsonNode sc = JSON.readTree(System.in);
        Scenario s = new Scenario(args[0], sc);
        try {
            s.run();
        } finally {
            s.admin.close(Duration.ofSeconds(5));
        }
    }
}
