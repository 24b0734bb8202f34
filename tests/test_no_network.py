"""The test suite's own guard (tests/conftest.py, no_network): no test reaches the network, and
loopback still works (a local HTTP server, W&B's service, gloo's rendezvous)."""

import http.server
import socket
import threading
import urllib.error
import urllib.request

import pytest


def test_a_connection_off_this_machine_fails_at_once():
    with pytest.raises(OSError, match="tests do not reach the network"):
        socket.create_connection(("93.184.216.34", 443), timeout=5)  # an address: no lookup
    with pytest.raises(socket.gaierror, match="tests do not reach the network"):
        socket.getaddrinfo("download.pytorch.org", 443)
    with pytest.raises(urllib.error.URLError, match="tests do not reach the network"):
        urllib.request.urlopen("https://huggingface.co/timm/xception65.tf_in1k", timeout=5)


def test_loopback_still_works():
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as response:
                assert response.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()
