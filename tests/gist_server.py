"""A local HTTP server that answers like the GitHub Gist REST API, for tests (no network).

    with serve(gists) as server: os.environ["TRAINBOOK_GIST_API_URL"] = server.url

It speaks the documented shapes: GET /gists/<id> and /gists/<id>/<sha> give a gist object whose
"files" map each filename to {"filename", "type", "language", "raw_url", "size", "truncated",
"content"} and whose "history" lists revisions ({"url", "version", "user", "change_status",
"committed_at"}, newest first); a missing gist or revision is 404 {"message": "Not Found", ...};
a spent rate limit is 403 with x-ratelimit-remaining: 0 and x-ratelimit-reset (epoch seconds).
`gists` maps an id to {revision: {filename: content}} (newest first), or to "rate-limited",
"secondary" (429 with retry-after), "error" (502), "html" (not JSON) or "slow" (no answer). `server.requests` records (path, headers); names in `server.truncate` come truncated.
"""

import contextlib
import http.server
import json
import threading
import time


class GistAPI(http.server.BaseHTTPRequestHandler):
    """GET /gists/<id>[/<sha>] and the raw file URLs; `server.requests` records (path, headers)."""

    def do_GET(self):
        self.server.requests.append((self.path, dict(self.headers)))
        parts = self.path.strip("/").split("/")
        if parts[0] == "raw":
            if self.path not in self.server.raw:
                return self.reply(404, "404: Not Found", "text/plain")
            return self.reply(200, self.server.raw[self.path], "text/plain")
        gist = self.server.gists.get(parts[1]) if parts[0] == "gists" and len(parts) in (2, 3) else None
        if gist == "rate-limited":
            return self.reply(403, {"message": "API rate limit exceeded for 127.0.0.1.", "documentation_url":
                                    "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"},
                              headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0",
                                       "x-ratelimit-reset": str(int(time.time()) + 1800)})
        if gist == "secondary":
            return self.reply(429, {"message": "You have exceeded a secondary rate limit"}, headers={"retry-after": "60"})
        if gist == "error":
            return self.reply(502, {"message": "Server Error"})
        if gist == "html":
            return self.reply(200, "<html>a login page</html>", "text/html")
        if gist == "slow":
            return time.sleep(3)  # then close without an answer
        revision = parts[2] if len(parts) == 3 else None
        if gist is None or (revision and revision not in gist):
            return self.reply(404, {"message": "Not Found", "documentation_url":
                                    "https://docs.github.com/rest/gists/gists#get-a-gist", "status": "404"})
        history = list(gist)  # newest first
        version = revision or history[0]
        files = {}
        for name, content in gist[version].items():
            raw_url = f"http://127.0.0.1:{self.server.server_port}/raw/{parts[1]}/{version}/{name}"
            self.server.raw[f"/raw/{parts[1]}/{version}/{name}"] = content
            truncated = name in self.server.truncate
            files[name] = {"filename": name, "type": "application/x-python", "language": "Python",
                           "raw_url": raw_url, "size": len(content), "truncated": truncated,
                           "content": content[:20] if truncated else content}
        self.reply(200, {"url": f"https://api.github.com/gists/{parts[1]}", "id": parts[1], "files": files,
                         "public": True, "truncated": False,
                         "history": [{"url": f"https://api.github.com/gists/{parts[1]}/{v}", "version": v,
                                      "user": None, "change_status": {"total": 1, "additions": 1, "deletions": 0},
                                      "committed_at": "2026-01-01T00:00:00Z"} for v in history[history.index(version):]]})

    def reply(self, status, body, content_type="application/json", headers=None):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(gists: dict):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GistAPI)
    server.daemon_threads, server.block_on_close = True, False
    server.requests, server.raw, server.truncate, server.gists = [], {}, set(), gists
    server.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
