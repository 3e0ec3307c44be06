# hello-peers.sh: what the HTTP benchmarks share; sourced, not run.
#   free_port            a port on 127.0.0.1 the kernel had free a moment ago
#   nginx_hello DIR PORT [WORKERS]
#                        writes DIR/nginx.conf: Debian's nginx as the peer of
#                        examples/hello (one process, no daemon, `return 200`
#                        with the same body, keep-alive without a request
#                        limit, no access log), everything it writes in DIR;
#                        WORKERS > 1: a master and that many worker processes
#                        (the master's children), each accepting on its own
#                        SO_REUSEPORT socket as hello's reactors do
#   start_server NAME CPUS WANT-PORT COMMAND...
#                        starts a server (below); needs $tmp, $pids, $conns,
#                        $me and $PYTHON set by the caller
#   stop_servers         kills and reaps every server started ($pids)

free_port() {
    ${PYTHON:-python3} -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nginx_hello() {
    mkdir -p "$1/logs"
    workers=${3:-1} master=off reuseport=''
    if [ "$workers" -gt 1 ]; then master=on reuseport=' reuseport'; fi
    cat >"$1/nginx.conf" <<EOF
daemon off;
master_process $master;
worker_processes $workers;
pid $1/nginx.pid;
error_log $1/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    server {
        listen 127.0.0.1:$2$reuseport;
        location /hello {
            default_type application/json;
            return 200 '{"message":"Hello, World!"}';
        }
    }
}
EOF
}

# start_server NAME CPUS WANT-PORT COMMAND...: starts it on CPUS in the
# background; waits for its "listening on HOST:PORT" line (or for
# WANT-PORT to answer) and sets NAME_pid and NAME_port.
start_server() {
    name=$1 cpus=$2 want_port=$3; shift 3
    taskset -c "$cpus" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    i=0 port=''
    while [ $i -lt 500 ]; do
        if [ -z "$want_port" ]; then
            port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out" | head -n1)
        elif "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' \
                "$want_port" 2>/dev/null; then
            port=$want_port
        fi
        if [ -n "$port" ]; then
            eval "${name}_pid=$pid ${name}_port=$port"
            taskset -c 1 wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/hello" >/dev/null 2>&1 || true  # warm-up
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
        i=$((i + 1))
    done
    echo "$me: $name did not start: $*" >&2
    cat "$tmp/$name.err" >&2
    return 1
}

stop_servers() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    pids=''
}
