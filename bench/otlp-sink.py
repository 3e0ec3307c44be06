#!/usr/bin/env python3
"""otlp-sink.py: a stand-in OTLP/HTTP collector for benchmarks: answers
every POST with 200 and counts the spans it received (printed at exit).

    bench/otlp-sink.py PORT &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT OTEL_TRACES_SAMPLER=traceidratio \\
        OTEL_TRACES_SAMPLER_ARG=0.01 make bench-instr
"""
import http.server
import json
import signal
import sys

spans = 0


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global spans
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            for rs in json.loads(body).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    spans += len(ss.get("spans", []))
        except ValueError:
            pass
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def done(*_):
    print("otlp-sink: %d spans" % spans, file=sys.stderr)
    sys.exit(0)


signal.signal(signal.SIGTERM, done)
signal.signal(signal.SIGINT, done)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
