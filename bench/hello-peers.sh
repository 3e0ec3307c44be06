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
