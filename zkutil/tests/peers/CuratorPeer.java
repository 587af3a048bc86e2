// CuratorPeer: Apache Curator's own service discovery (Debian's
// libcurator-discovery-java 5.4), driven by zkutil's interop tests. It is
// the reader and writer that Curator users, Spring Cloud Zookeeper and
// Dubbo 3 run; the tests check that it and zkutil understand each other.
//
//   list     HOSTS BASE SERVICE [spring]   queryForInstances: one JSON line per instance
//   provider HOSTS BASE SERVICE [N]        ServiceProvider.getInstance, N times (1): address:port per line
//   cache    HOSTS BASE SERVICE            ServiceCache: "instances a:p,b:p" on start and each change, until stdin closes
//   register HOSTS BASE SERVICE ADDR PORT  registers, prints "registered ID", unregisters when stdin closes
//   children HOSTS BASE SERVICE            CuratorFramework's getChildren and getData of BASE/SERVICE, no
//                                          discovery: one JSON line {"name", "data"} per child (any format)
//   count    HOSTS BASE SERVICE            ServiceCache for the benchmark: "session 0x…", then "count N <unix nanos>"
//                                          on start and each change, until stdin closes
//
// Compiled by the test harness (zkutil::testing::CuratorPeer) with javac
// against /usr/share/java. The ZooKeeper client inside takes its settings
// (TLS: zookeeper.client.secure, zookeeper.ssl.*) from JVM system
// properties, as in production; it waits at most 30 s for a connection.

import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.utils.ZKPaths;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.details.ServiceCacheListener;
import org.apache.curator.framework.state.ConnectionState;
import org.springframework.cloud.zookeeper.discovery.ZookeeperInstance;

public class CuratorPeer {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        String command = args[0], hosts = args[1], base = args[2], service = args[3];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 5000, new ExponentialBackoffRetry(100, 5))) {
            client.start();
            if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("not connected to " + hosts + " within 30 s");
            }
            switch (command) {
                case "list":
                    if (args.length > 4 && args[4].equals("spring")) {
                        list(client, base, service, ZookeeperInstance.class);
                    } else {
                        list(client, base, service, Map.class);
                    }
                    break;
                case "provider":
                    provider(client, base, service, args.length > 4 ? Integer.parseInt(args[4]) : 1);
                    break;
                case "cache":
                    cache(client, base, service);
                    break;
                case "count":
                    count(client, base, service);
                    break;
                case "children":
                    children(client, ZKPaths.makePath(base, service));
                    break;
                case "register":
                    register(client, base, service, args[4], Integer.parseInt(args[5]));
                    break;
                default:
                    throw new IllegalArgumentException("unknown command " + command);
            }
        }
    }

    static <T> ServiceDiscovery<T> discovery(CuratorFramework client, String base, Class<T> payload)
            throws Exception {
        ServiceDiscovery<T> discovery = ServiceDiscoveryBuilder.builder(payload)
                .client(client)
                .basePath(base)
                .serializer(new JsonInstanceSerializer<>(payload))
                .build();
        discovery.start();
        return discovery;
    }

    static <T> void list(CuratorFramework client, String base, String service, Class<T> payload)
            throws Exception {
        try (ServiceDiscovery<T> discovery = discovery(client, base, payload)) {
            for (ServiceInstance<T> instance : discovery.queryForInstances(service)) {
                Map<String, Object> line = new java.util.LinkedHashMap<>();
                line.put("id", instance.getId());
                line.put("name", instance.getName());
                line.put("address", instance.getAddress());
                line.put("port", instance.getPort());
                line.put("enabled", instance.isEnabled());
                line.put("payload", instance.getPayload());
                line.put("payloadClass", instance.getPayload() == null ? null
                        : instance.getPayload().getClass().getName());
                System.out.println(JSON.writeValueAsString(line));
            }
        }
    }

    static void children(CuratorFramework client, String path) throws Exception {
        for (String child : client.getChildren().forPath(path)) {
            byte[] data = client.getData().forPath(ZKPaths.makePath(path, child));
            Map<String, Object> line = new java.util.LinkedHashMap<>();
            line.put("name", child);
            line.put("data", data == null ? null : new String(data, java.nio.charset.StandardCharsets.UTF_8));
            System.out.println(JSON.writeValueAsString(line));
        }
    }

    static void provider(CuratorFramework client, String base, String service, int picks) throws Exception {
        try (ServiceDiscovery<Map> discovery = discovery(client, base, Map.class);
             ServiceProvider<Map> provider = discovery.serviceProviderBuilder().serviceName(service).build()) {
            provider.start();
            for (int i = 0; i < picks; i++) {
                ServiceInstance<Map> instance = provider.getInstance();
                System.out.println(instance == null ? "none" : instance.getAddress() + ":" + instance.getPort());
            }
        }
    }

    static void cache(CuratorFramework client, String base, String service) throws Exception {
        try (ServiceDiscovery<Map> discovery = discovery(client, base, Map.class);
             ServiceCache<Map> cache = discovery.serviceCacheBuilder().name(service).build()) {
            cache.addListener(new ServiceCacheListener() {
                @Override
                public void cacheChanged() {
                    print(cache);
                }

                @Override
                public void stateChanged(CuratorFramework c, ConnectionState state) {
                }
            });
            cache.start();
            print(cache);
            waitForEof(System.in);
        }
    }

    static void count(CuratorFramework client, String base, String service) throws Exception {
        try (ServiceDiscovery<Map> discovery = discovery(client, base, Map.class);
             ServiceCache<Map> cache = discovery.serviceCacheBuilder().name(service).build()) {
            long session = client.getZookeeperClient().getZooKeeper().getSessionId();
            System.out.println("session 0x" + Long.toHexString(session));
            cache.addListener(new ServiceCacheListener() {
                @Override
                public void cacheChanged() {
                    printCount(cache);
                }

                @Override
                public void stateChanged(CuratorFramework c, ConnectionState state) {
                }
            });
            cache.start();
            printCount(cache);
            waitForEof(System.in);
        }
    }

    static synchronized void printCount(ServiceCache<Map> cache) {
        java.time.Instant now = java.time.Instant.now();
        long nanos = now.getEpochSecond() * 1_000_000_000L + now.getNano();
        System.out.println("count " + cache.getInstances().size() + " " + nanos);
        System.out.flush();
    }

    static synchronized void print(ServiceCache<Map> cache) {
        List<String> endpoints = new ArrayList<>();
        for (ServiceInstance<Map> instance : cache.getInstances()) {
            endpoints.add(instance.getAddress() + ":" + instance.getPort());
        }
        Collections.sort(endpoints);
        System.out.println("instances " + String.join(",", endpoints));
        System.out.flush();
    }

    static void register(CuratorFramework client, String base, String service, String address, int port)
            throws Exception {
        ServiceInstance<Map> instance = ServiceInstance.<Map>builder()
                .name(service).address(address).port(port)
                .payload(Collections.singletonMap("registeredBy", "curator")).build();
        try (ServiceDiscovery<Map> discovery = discovery(client, base, Map.class)) {
            discovery.registerService(instance);
            System.out.println("registered " + instance.getId());
            System.out.flush();
            waitForEof(System.in);
        }
        System.out.println("closed");
    }

    static void waitForEof(InputStream in) throws Exception {
        while (in.read() >= 0) {
        }
    }
}
