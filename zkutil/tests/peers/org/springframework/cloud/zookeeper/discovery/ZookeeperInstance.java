package org.springframework.cloud.zookeeper.discovery;

import java.util.HashMap;
import java.util.Map;

/**
 * The shape of Spring Cloud Zookeeper's payload class (id, name, metadata:
 * a map of strings), under its real name: Spring itself cannot be installed
 * here, so the Curator peer reads zkutil's Spring-flavoured instances with
 * this class, as a Spring service's discovery client would.
 */
public class ZookeeperInstance {
    private String id;
    private String name;
    private Map<String, String> metadata = new HashMap<>();

    public String getId() { return id; }
    public void setId(String id) { this.id = id; }
    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public Map<String, String> getMetadata() { return metadata; }
    public void setMetadata(Map<String, String> metadata) { this.metadata = metadata; }
}
