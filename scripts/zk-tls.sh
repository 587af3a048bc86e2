#!/usr/bin/env bash
# zk-tls.sh: the TLS side of scripts/zk.sh (sourced by it): certificates made with openssl, a TLS-only client port,
# and four-letter words over TLS. A TLS node serves only its secureClientPort (no plaintext port at all), with
# ssl.clientAuth=need and the x509 auth provider, as a production ensemble that refuses plaintext does.
#
# DIR/tls holds, once made (kept across restarts, so identities stay):
#   ca.pem ca.key                      the CA that signed everything below (trust it with --zk-tls-ca / ZK_TLS_CA)
#   server.pem                         the server's key and certificate (localhost, 127.0.0.1): ZooKeeper's key store
#   time-server.crt time-server.key    a client identity, ACL x509:CN=time-server
#   ops.crt ops.key                    a client identity, ACL x509:CN=ops (operator controls, zk.sh's own checks)
# Keys are mode 600.

# zk_tls_certs DIR: makes the files above in DIR unless its CA exists.
zk_tls_certs() {
    local dir="$1" name
    [[ -f "$dir/ca.pem" ]] && return 0
    command -v openssl >/dev/null || zk_die "--tls needs openssl (apt-get install openssl)"
    mkdir -p "$dir"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=zkutil demo CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        zk_tls_leaf "$dir" server localhost serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1"
        cat "$dir/server.key" "$dir/server.crt" >"$dir/server.pem"
        for name in time-server ops; do zk_tls_leaf "$dir" "$name" "$name" clientAuth ""; done
        rm -f "$dir"/*.csr "$dir"/*.ext
    ) || zk_die "making the TLS certificates in $dir failed"
    chmod 644 "$dir/ca.pem" "$dir"/*.crt
    zk_log "made a CA, a server certificate and client certificates (time-server, ops) in $dir"
}

# zk_tls_leaf DIR NAME CN USAGE [EXTENSION]: NAME.key and NAME.crt, CN=CN, signed by DIR's CA.
zk_tls_leaf() {
    local dir="$1" name="$2" cn="$3" usage="$4" extra="$5"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$cn" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' \
        "$usage" "$extra" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days 825 \
        -set_serial "0x$(openssl rand -hex 8)" -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

# zk_tls_port_config ADDRESS PORT TLS_DIR: the zoo.cfg lines of a TLS-only client port.
zk_tls_port_config() {
    local address="$1" port="$2" tls="$3"
    cat <<CFG
secureClientPort=$port
secureClientPortAddress=$address
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$tls/server.pem
ssl.keyStore.type=PEM
ssl.trustStore.location=$tls/ca.pem
ssl.trustStore.type=PEM
ssl.clientAuth=need
authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider
CFG
}

# zk_tls_classpath: ZK_CLASSPATH and the Netty jars zookeeper.jar's manifest leaves out (ZooKeeper's TLS runs on
# Netty only): the unversioned netty-*.jar beside it.
zk_tls_classpath() {
    local jar cp="$ZK_CLASSPATH"
    for jar in "$(dirname "${ZK_CLASSPATH%%:*}")"/netty-*.jar; do
        [[ "$(basename "$jar" .jar)" == *.* ]] || cp="$cp:$jar"
    done
    echo "$cp"
}

# zk_srvr_tls PORT TLS_DIR: srvr over TLS as CN=ops, empty when the node does not answer within 3 s.
zk_srvr_tls() {
    printf srvr | timeout 3 openssl s_client -quiet -connect "127.0.0.1:$1" -servername localhost \
        -CAfile "$2/ca.pem" -cert "$2/ops.crt" -key "$2/ops.key" -verify_return_error 2>/dev/null || true
}
