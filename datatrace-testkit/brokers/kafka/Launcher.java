import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Starts a single-node Apache Kafka broker in KRaft mode (broker and controller in one
 * process) for DataTrace's tests, in one JVM: it picks two free loopback ports, writes the
 * server properties, formats the storage, runs kafka.Kafka, waits until an admin client sees
 * the cluster, then writes HOME/ready.json ({"port":P,"pid":N,"version":V}).
 *
 * Usage: Launcher HOME [key=value ...]   (extra broker settings; "port=P" fixes the port)
 *
 * When DATATRACE_KAFKA_KEEPER_PID names a process, the broker halts as soon as that process
 * is gone, so a killed keeper leaves nothing running.
 */
public final class Launcher {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Launcher HOME [key=value ...]");
            System.exit(2);
        }
        File home = new File(args[0]).getAbsoluteFile();
        File data = new File(home, "data");
        data.mkdirs();
        watchKeeper();

        int port = 0;
        Properties extra = new Properties();
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq < 1) {
                System.err.println("not a key=value setting: " + args[i]);
                System.exit(2);
            }
            String key = args[i].substring(0, eq);
            String value = args[i].substring(eq + 1);
            if (key.equals("port")) {
                port = Integer.parseInt(value);
            } else {
                extra.setProperty(key, value);
            }
        }
        if (port == 0) {
            port = freePort();
        }
        int controller = freePort();

        Properties p = new Properties();
        p.setProperty("process.roles", "broker,controller");
        p.setProperty("node.id", "1");
        p.setProperty("controller.quorum.bootstrap.servers", "127.0.0.1:" + controller);
        p.setProperty("listeners", "PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controller);
        p.setProperty("advertised.listeners", "PLAINTEXT://127.0.0.1:" + port);
        p.setProperty("controller.listener.names", "CONTROLLER");
        p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.setProperty("log.dirs", data.getPath());
        p.setProperty("num.partitions", "1");
        p.setProperty("offsets.topic.replication.factor", "1");
        p.setProperty("offsets.topic.num.partitions", "4");
        p.setProperty("transaction.state.log.replication.factor", "1");
        p.setProperty("transaction.state.log.min.isr", "1");
        p.setProperty("transaction.state.log.num.partitions", "4");
        p.setProperty("share.coordinator.state.topic.replication.factor", "1");
        p.setProperty("share.coordinator.state.topic.min.isr", "1");
        p.setProperty("group.initial.rebalance.delay.ms", "0");
        // Tests create their topics (as DataTrace's sink does); a typo must not create one.
        p.setProperty("auto.create.topics.enable", "false");
        // Short session timeouts let tests see a killed consumer leave its group quickly.
        p.setProperty("group.min.session.timeout.ms", "1000");
        p.setProperty("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000");
        p.setProperty("log.flush.interval.messages", "9223372036854775807");
        p.putAll(extra);
        File props = new File(home, "server.properties");
        try (Writer w = new OutputStreamWriter(new FileOutputStream(props), StandardCharsets.UTF_8)) {
            p.store(w, "DataTrace testkit: single-node KRaft broker");
        }

        byte[] id = new byte[16];
        new SecureRandom().nextBytes(id);
        String clusterId = Base64.getUrlEncoder().withoutPadding().encodeToString(id);
        int formatted = kafka.tools.StorageTool.execute(
                new String[] {"format", "-t", clusterId, "-c", props.getPath(), "--standalone", "--ignore-formatted"},
                System.out);
        if (formatted != 0) {
            System.err.println("formatting the storage failed: " + formatted);
            System.exit(1);
        }

        final String[] serverArgs = {props.getPath()};
        Thread server = new Thread(() -> kafka.Kafka.main(serverArgs), "kafka-main");
        server.setDaemon(false);
        server.start();

        Properties admin = new Properties();
        admin.setProperty(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + port);
        admin.setProperty(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        admin.setProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        try (Admin client = Admin.create(admin)) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (true) {
                try {
                    client.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                    break;
                } catch (Exception e) {
                    if (System.nanoTime() > deadline || !server.isAlive()) {
                        System.err.println("the broker did not come up: " + e);
                        Runtime.getRuntime().halt(1);
                    }
                    Thread.sleep(100);
                }
            }
        }
        String version = org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
        long pid = ProcessHandle.current().pid();
        File tmp = new File(home, "ready.json.tmp");
        Files.write(tmp.toPath(), ("{\"port\":" + port + ",\"pid\":" + pid + ",\"version\":\"" + version
                + "\",\"controller_port\":" + controller + ",\"start_ms\":"
                + ManagementFactory.getRuntimeMXBean().getUptime() + "}\n").getBytes(StandardCharsets.UTF_8));
        Files.move(tmp.toPath(), new File(home, "ready.json").toPath(), StandardCopyOption.ATOMIC_MOVE);
        System.out.println("DataTrace testkit: Kafka " + version + " ready on 127.0.0.1:" + port + " after "
                + ManagementFactory.getRuntimeMXBean().getUptime() + " ms");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(false);
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            return s.getLocalPort();
        }
    }

    /** Halts the JVM once the keeper process (DATATRACE_KAFKA_KEEPER_PID) is gone. */
    private static void watchKeeper() {
        String keeper = System.getenv("DATATRACE_KAFKA_KEEPER_PID");
        if (keeper == null || keeper.isEmpty()) {
            return;
        }
        long pid = Long.parseLong(keeper.trim());
        Thread t = new Thread(() -> {
            while (true) {
                boolean alive = ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
                if (!alive) {
                    Runtime.getRuntime().halt(0);
                }
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "keeper-watch");
        t.setDaemon(true);
        t.start();
    }
}
