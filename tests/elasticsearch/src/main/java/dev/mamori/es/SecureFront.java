package dev.mamori.es;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Base64;
import java.util.concurrent.Executors;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;

/**
 * An HTTPS front for the test node, requiring basic auth or an API key as
 * Elasticsearch's security does. The embedded node has no x-pack security,
 * so this is what lets the tests check mamori's side of TLS (CA trust,
 * host name verification) and of authentication (Basic and ApiKey
 * headers, 401 handling) against the real node behind it.
 */
final class SecureFront {
    private final HttpClient client = HttpClient.newHttpClient();
    private final String backend;
    private final String basic;
    private final String apiKey;

    private SecureFront(String backend, String user, String password, String apiKey) {
        this.backend = backend;
        this.basic = user == null ? null
            : "Basic " + b64(user + ":" + password);
        this.apiKey = apiKey == null ? null : "ApiKey " + b64(apiKey);
    }

    static int start(int port, Path keystore, String storePassword, String backend,
                     String user, String password, String apiKey) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keystore)) {
            ks.load(in, storePassword.toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, storePassword.toCharArray());
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), null, null);
        HttpsServer server = HttpsServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.setHttpsConfigurator(new HttpsConfigurator(ssl));
        server.setExecutor(Executors.newFixedThreadPool(4));
        SecureFront front = new SecureFront(backend, user, password, apiKey);
        server.createContext("/", front::handle);
        server.start();
        return server.getAddress().getPort();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            boolean ok = auth != null
                && ((basic != null && basic.equals(auth)) || (apiKey != null && apiKey.equals(auth)));
            if (!ok) {
                byte[] body = ("{\"error\":{\"type\":\"security_exception\",\"reason\":"
                    + "\"unable to authenticate request\"},\"status\":401}")
                    .getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().add("Content-Type", "application/json");
                ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"security\"");
                ex.sendResponseHeaders(401, body.length);
                ex.getResponseBody().write(body);
                return;
            }
            byte[] in = ex.getRequestBody().readAllBytes();
            String type = ex.getRequestHeaders().getFirst("Content-Type");
            HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(backend + ex.getRequestURI()))
                .method(ex.getRequestMethod(), HttpRequest.BodyPublishers.ofByteArray(in));
            if (type != null) {
                req.header("Content-Type", type);
            }
            HttpResponse<byte[]> resp = client.send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
            resp.headers().firstValue("Content-Type")
                .ifPresent(v -> ex.getResponseHeaders().add("Content-Type", v));
            byte[] body = resp.body();
            ex.sendResponseHeaders(resp.statusCode(), body.length == 0 ? -1 : body.length);
            if (body.length > 0) {
                ex.getResponseBody().write(body);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }
}
