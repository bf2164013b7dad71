"""A tiny threaded HTTPS server on 127.0.0.1: TLS on a port that is not SMTP."""
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"smtpguard control: plain HTTPS\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        request.settimeout(10)   # the handshake runs in the request's own thread
        with self.ctx.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address):
        pass


class HTTPSServer:
    def __init__(self, cert):
        self._httpd = _TLSServer(("127.0.0.1", 0), _Handler)
        self._httpd.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._httpd.ctx.load_cert_chain(cert.cert, cert.key)
        self.host, self.port = self._httpd.server_address
        self.url = f"https://{self.host}:{self.port}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
