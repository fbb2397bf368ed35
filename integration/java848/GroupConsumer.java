// GroupConsumer is one member of a consumer group run by TestJavaConsumerGroups: Apache Kafka's Java
// consumer with the group protocol given on the command line ("consumer" = KIP-848, "classic").
// It commits synchronously after every poll and prints "V <value>" for each record of a poll whose
// commit succeeded, then "COMMITTED" after each commit; it stops (closing the consumer, which leaves the
// group) when the stop file appears or after 120 s.
//
// Usage: java -cp 'LIBS/*' GroupConsumer.java BOOTSTRAP TOPIC GROUP PROTOCOL STOPFILE
import java.io.File;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupConsumer {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("group.id", args[2]);
        p.put("group.protocol", args[3]);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        if (args[3].equals("classic")) {
            p.put("session.timeout.ms", "10000");
            p.put("heartbeat.interval.ms", "500");
        }
        File stop = new File(args[4]);
        long deadline = System.currentTimeMillis() + 120_000;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(args[1]));
            while (!stop.exists() && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    continue;
                }
                try {
                    c.commitSync();
                } catch (Exception e) {
                    System.out.println("COMMIT-FAILED " + e);
                    System.out.flush();
                    continue;
                }
                StringBuilder sb = new StringBuilder();
                for (ConsumerRecord<String, String> r : recs) {
                    sb.append("V ").append(r.value()).append('\n');
                }
                sb.append("COMMITTED\n");
                System.out.print(sb);
                System.out.flush();
            }
        }
        System.out.println("CLOSED");
    }
}
