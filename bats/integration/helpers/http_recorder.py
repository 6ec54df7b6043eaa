# A tiny HTTP receiver standing in for ntfy, Healthchecks and a dead man's switch: every request
# is appended to a JSON-lines log (method, path, the headers that matter, body). While the file
# FAIL_FILE holds "down" it answers every request 503 (the endpoint is down); a number N > 0 refuses
# the next N requests. Refused requests are logged with "refused": true.
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG, FAIL_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Recorder(BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length).decode('utf-8', 'replace') if length else ''
        refused = False
        try:
            with open(FAIL_FILE) as f:
                mode = f.read().strip()
        except OSError:
            mode = ''
        left = int(mode) if mode.isdigit() else 0
        if mode == 'down':
            refused = True
        elif left > 0:
            refused = True
            with open(FAIL_FILE, 'w') as f:
                f.write(str(left - 1))
        entry = {'method': self.command, 'path': self.path, 'refused': refused, 'body': body,
                 'title': self.headers.get('Title'), 'priority': self.headers.get('Priority'),
                 'tags': self.headers.get('Tags')}
        with open(LOG, 'a') as f:
            f.write(json.dumps(entry) + '\n')
        self.send_response(503 if refused else 200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'OK')

    do_GET = do_POST = do_HEAD = do_PUT = _handle

    def log_message(self, *args):
        pass


ThreadingHTTPServer(('127.0.0.1', PORT), Recorder).serve_forever()
