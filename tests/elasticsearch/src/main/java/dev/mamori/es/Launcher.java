package dev.mamori.es;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import java.util.Map;
import java.util.zip.ZipFile;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;

/**
 * Starts a real single-node Elasticsearch on 127.0.0.1 for mamori's tests.
 *
 * Usage: Launcher --home DIR --modules DIR [--port N] [--stdin]
 *                 [--tls-port N --keystore P12 --keystore-pass PW
 *                  [--user U --password PW] [--api-key ID:KEY]]
 *
 * With --tls-port, an HTTPS front that requires the given credentials
 * forwards to the node ({@link SecureFront}); its URL goes to DIR/tls-url.
 *
 * Boots the node as Elasticsearch's own bootstrap does: server jars on the
 * class path, each module (here: transport-netty4, the HTTP server) from
 * its own directory with its plugin descriptor.
 *
 * When the node answers, writes its URL to DIR/url and prints
 * "READY <url>". Stops cleanly on SIGTERM/SIGINT or when stdin closes
 * (with --stdin), so a test harness that dies takes the node with it.
 */
public final class Launcher {
    public static void main(String[] args) throws Exception {
        Path home = null;
        Path modules = null;
        String port = "0";
        boolean watchStdin = false;
        Integer tlsPort = null;
        Path keystore = null;
        String keystorePass = "";
        String user = null;
        String password = null;
        String apiKey = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--home" -> home = Path.of(args[++i]);
                case "--modules" -> modules = Path.of(args[++i]);
                case "--port" -> port = args[++i];
                case "--stdin" -> watchStdin = true;
                case "--tls-port" -> tlsPort = Integer.parseInt(args[++i]);
                case "--keystore" -> keystore = Path.of(args[++i]);
                case "--keystore-pass" -> keystorePass = args[++i];
                case "--user" -> user = args[++i];
                case "--password" -> password = args[++i];
                case "--api-key" -> apiKey = args[++i];
                default -> {
                    System.err.println("unknown argument: " + args[i]);
                    System.exit(2);
                }
            }
        }
        if (home == null || modules == null) {
            System.err.println("usage: Launcher --home DIR --modules DIR [--port N] [--stdin]");
            System.exit(2);
        }
        Files.createDirectories(home);
        Path urlFile = home.resolve("url");
        Files.deleteIfExists(urlFile);

        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("cluster.name", "mamori-test")
            .put("node.name", "es-1")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // CI disks may be nearly full; do not flip indices read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        LogConfigurator.configureWithoutConfig(settings);

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "es-1");
        Path installed = installModules(modules, home.resolve("modules"));
        PluginsLoader plugins = PluginsLoader.createPluginsLoader(
            PluginsLoader.loadModulesBundles(installed), java.util.Set.of(), Map.of());
        Node node = new Node(env, plugins);
        node.start();
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        InetSocketAddress addr = http.boundAddress().publishAddress().address();
        String url = "http://" + addr.getHostString() + ":" + addr.getPort();
        if (tlsPort != null) {
            int bound = SecureFront.start(tlsPort, keystore, keystorePass, url, user, password, apiKey);
            Path tlsTmp = home.resolve("tls-url.tmp");
            Files.writeString(tlsTmp, "https://localhost:" + bound + "\n", StandardCharsets.UTF_8);
            Files.move(tlsTmp, home.resolve("tls-url"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        Path tmp = home.resolve("url.tmp");
        Files.writeString(tmp, url + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, urlFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        System.out.println("READY " + url);
        System.out.flush();

        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
            stop.countDown();
        }));
        if (watchStdin) {
            InputStream in = System.in;
            while (in.read() >= 0) {
                // drain until the parent closes our stdin
            }
            System.exit(0);
        }
        stop.await();
    }

    /**
     * Lays the modules out under the node's home as Elasticsearch expects:
     * one directory per module, its jars (linked) and the plugin descriptor
     * that the module's jar carries inside.
     */
    private static Path installModules(Path from, Path to) throws IOException {
        try (var dirs = Files.list(from)) {
            for (Path dir : dirs.toList()) {
                String name = dir.getFileName().toString();
                Path target = to.resolve(name);
                Files.createDirectories(target);
                String entry = "META-INF/es-plugins/" + name + "/plugin-descriptor.properties";
                Path descriptor = target.resolve("plugin-descriptor.properties");
                Files.deleteIfExists(descriptor);
                try (var jars = Files.list(dir)) {
                    for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).toList()) {
                        Path link = target.resolve(jar.getFileName());
                        Files.deleteIfExists(link);
                        Files.createSymbolicLink(link, jar.toAbsolutePath());
                        try (ZipFile zip = new ZipFile(jar.toFile())) {
                            var e = zip.getEntry(entry);
                            if (e != null) {
                                try (InputStream in = zip.getInputStream(e)) {
                                    Files.copy(in, descriptor);
                                }
                            }
                        }
                    }
                }
                if (!Files.exists(descriptor)) {
                    throw new IOException("no " + entry + " in the jars of " + dir);
                }
            }
        }
        return to;
    }
}
