// A single-node Elasticsearch 7.17 started from the jars on the class path (see pom.xml): the server
// plus the module plugins a distribution ships, loaded as classpath plugins the way
// codelibs' elasticsearch-cluster-runner does, without the distribution's plugin directories.
//
// Usage: java -Xmx512m -cp CLASSES:JARS Launcher HOME [setting=value ...]
//
// HOME gets config/, data/ and logs/. HTTP and transport bind to 127.0.0.1 on free ports
// unless settings say otherwise. When the node is up, HOME/ready.json is written (atomically)
// with {"port":HTTP_PORT,"pid":PID,"version":"..."}; the same line goes to stdout. The node
// runs until the process is killed (a shutdown hook closes it on SIGTERM/SIGINT), or, when
// DATATRACE_ENGINE_KEEPER_PID is set, until that process (the testkit's keeper) is gone.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.elasticsearch.Version;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;

public final class Launcher {
    /** The module plugins this node loads from the class path. */
    private static final String[] MODULES = {
        "org.elasticsearch.transport.Netty4Plugin",
        "org.elasticsearch.index.mapper.MapperExtrasPlugin",
        "org.elasticsearch.join.ParentJoinPlugin",
        "org.elasticsearch.reindex.ReindexPlugin",
    };

    private static final String LOG4J2 = String.join("\n",
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n",
        "rootLogger.level = warn",
        "rootLogger.appenderRef.console.ref = console",
        "logger.node.name = org.elasticsearch.node.Node",
        "logger.node.level = info",
        "");

    /** Node's plugin-taking constructor is protected. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // the distribution's node-id logging listener needs the bootstrap; nothing to do
        }
    }

    /** Deletes the node's home and halts the JVM once the keeper is gone (SIGKILLed, say). */
    static void watchKeeper(Path home) {
        String keeper = System.getenv("DATATRACE_ENGINE_KEEPER_PID");
        if (keeper == null || keeper.isEmpty()) {
            return;
        }
        long pid = Long.parseLong(keeper);
        Thread watcher = new Thread(() -> {
            while (true) {
                if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                    deleteTree(home);
                    Runtime.getRuntime().halt(0);
                }
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "datatrace-keeper-watch");
        watcher.setDaemon(true);
        watcher.start();
    }

    static void deleteTree(Path root) {
        try (java.util.stream.Stream<Path> paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (Exception e) {
            // best effort: the keeper normally does this
        }
    }

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable e) {
            // The node's own threads would keep a half-started JVM alive: leave for good.
            e.printStackTrace();
            Runtime.getRuntime().halt(1);
        }
    }

    static void run(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Launcher HOME [setting=value ...]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        watchKeeper(home);
        Path config = home.resolve("config");
        Files.createDirectories(config);
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("modules"));
        Files.write(config.resolve("log4j2.properties"), LOG4J2.getBytes(StandardCharsets.UTF_8));
        Files.write(config.resolve("elasticsearch.yml"), new byte[0]);

        Settings.Builder builder = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "datatrace")
            .put("node.name", "datatrace-0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "0")
            .put("transport.port", "0")
            // Shared, busy disks must not turn test indices read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", "false")
            .put("action.auto_create_index", "true");
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("not a setting=value pair: " + args[i]);
                System.exit(2);
            }
            builder.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        Settings settings = builder.build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), config, () -> "datatrace-0");
        LogConfigurator.registerErrorListener();
        LogConfigurator.configure(env);

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : MODULES) {
            plugins.add(Class.forName(name).asSubclass(Plugin.class));
        }
        Node node = new ClasspathNode(env, plugins);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                // exiting anyway
            }
        }));
        node.start();

        int port = node.injector().getInstance(HttpServerTransport.class)
            .boundAddress().publishAddress().getPort();
        String ready = "{\"port\":" + port + ",\"pid\":" + ProcessHandle.current().pid()
            + ",\"version\":\"" + Version.CURRENT + "\",\"flavor\":\"elasticsearch\"}";
        Path tmp = home.resolve("ready.json.tmp");
        Files.write(tmp, (ready + "\n").getBytes(StandardCharsets.UTF_8));
        Files.move(tmp, home.resolve("ready.json"), StandardCopyOption.ATOMIC_MOVE);
        System.out.println(ready);
        System.out.flush();
        new CountDownLatch(1).await();
    }
}
