// GroupMember is one member of the membership proof (TestGroupMembersJava*): Apache Kafka's Java consumer
// with the group protocol given on the command line ("classic" or "consumer" = KIP-848). It prints
// "ASSIGN p,p,.." (or "ASSIGN -") whenever its assignment changes and "REC partition offset" for each
// record after committing that record's offset synchronously. SIGTERM wakes the poll and closes the
// consumer, which leaves the group.
//
// Usage: java -cp 'LIBS/*' GroupMember.java BOOTSTRAP TOPIC GROUP PROTOCOL
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupMember {
    static final TreeSet<Integer> owned = new TreeSet<>();
    static volatile boolean stopping = false;

    static void show() {
        StringBuilder sb = new StringBuilder("ASSIGN ");
        if (owned.isEmpty()) {
            sb.append('-');
        }
        boolean first = true;
        for (int p : owned) {
            if (!first) {
                sb.append(',');
            }
            sb.append(p);
            first = false;
        }
        System.out.println(sb);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("group.id", args[2]);
        p.put("group.protocol", args[3]);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("max.poll.records", "1");
        if (args[3].equals("classic")) {
            p.put("session.timeout.ms", "6000");
            p.put("heartbeat.interval.ms", "500");
        }
        KafkaConsumer<String, String> c = new KafkaConsumer<>(p);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            c.wakeup();
            try {
                closed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        try {
            c.subscribe(List.of(args[1]), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    for (TopicPartition tp : parts) {
                        owned.remove(tp.partition());
                    }
                    show();
                }

                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    onPartitionsRevoked(parts);
                }

                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    for (TopicPartition tp : parts) {
                        owned.add(tp.partition());
                    }
                    show();
                }
            });
            while (!stopping) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    try {
                        c.commitSync(Map.of(tp, new OffsetAndMetadata(r.offset() + 1)));
                    } catch (WakeupException e) {
                        throw e;
                    } catch (Exception e) {
                        System.err.println("COMMIT-FAILED " + e);
                        if (c.assignment().contains(tp)) {
                            c.seek(tp, r.offset()); // still ours: read it again; else its next owner does
                        }
                        continue;
                    }
                    System.out.println("REC " + r.partition() + " " + r.offset());
                    System.out.flush();
                }
            }
        } catch (WakeupException e) {
            // SIGTERM: fall through to close
        } finally {
            c.close();
            closed.countDown();
        }
    }
}
