"""A Python web app (standard library only) that plugs into Chattr.

Its own users sign in; its pages carry Chattr's widget, logged in with a JWT this app signs
itself (no call to Chattr needed); it posts into the chat through the server API and takes
Chattr's webhooks, each verified.

    CHATTR_URL=http://127.0.0.1:3000 CHATTR_SHARED_SECRET=... python3 app.py --port 8082
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CHATTR_URL = os.environ.get("CHATTR_URL", "http://127.0.0.1:3000").rstrip("/")
SECRET = os.environ["CHATTR_SHARED_SECRET"].encode()  # stays on this server, never in a page
USERS = {"alice": "wonderland", "bob": "builder", "carol": "singer"}  # this app's own accounts
SESSIONS: dict[str, dict] = {}  # session id -> {"user", "jwt", "exp"}
EVENTS: list[dict] = []  # the webhook events received, verified


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def chat_jwt(user: str, expires: int) -> str:
    """A JWT that logs `user` in where a token goes: HS256 with the shared secret."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": user, "iat": int(time.time()), "exp": expires}).encode())
    signature = hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def session_jwt(session: dict) -> str:
    """One JWT per sign-in, signed again before it expires: handed the same one on every page,
    the widget keeps its chat session."""
    if session.get("exp", 0) - time.time() < 60:
        session["exp"] = int(time.time()) + 3600
        session["jwt"] = chat_jwt(session["user"], session["exp"])
    return session["jwt"]


def chattr_api(method: str, path: str, body: dict | None = None) -> dict:
    """A call to Chattr's server API with the Bearer secret; raises with Chattr's error."""
    request = urllib.request.Request(
        CHATTR_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SECRET.decode()}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        problem = json.load(error)
        raise RuntimeError(f"Chattr answered {error.code}: {problem['code']} {problem['message']}") from None


def verify_webhook(body: bytes, header: str, tolerance: int = 300) -> bool:
    """Checks `Chattr-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`."""
    parts = dict(item.strip().split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or abs(time.time() - int(parts["t"])) > tolerance:
        return False  # missing, or too old: a replay
    expected = hmac.new(SECRET, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme (Python)</title></head>
<body><h1>{title}</h1>{content}</body></html>"""

LOGIN_FORM = """<form method="post" action="/login">{error}
<label>Name <input name="user" required></label>
<label>Password <input name="password" type="password" required></label>
<button>Sign in</button></form>"""

SIGNED_IN = """<p>Signed in as <b data-testid="app-user">{user}</b>. <a href="/logout">Sign out</a></p>
<form method="post" action="/announce"><label>Announce in #support <input name="text" required></label>
<button>Post</button></form>
<script src="{chat}/embed.js" data-channel="#support"></script>
<script>Chattr.login({token});</script>"""


class App(BaseHTTPRequestHandler):
    def session(self) -> dict | None:
        jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
        return SESSIONS.get(jar["sid"].value) if "sid" in jar else None

    def reply(self, status: int, body: str = "", kind: str = "text/html; charset=utf-8", headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        return {key: values[0] for key, values in parse_qs(body).items()}

    def do_GET(self):
        session = self.session()
        if self.path == "/":
            content = LOGIN_FORM.format(error="")
            if session:
                user, token = html.escape(session["user"]), json.dumps(session_jwt(session))
                content = SIGNED_IN.format(user=user, chat=html.escape(CHATTR_URL), token=token)
            self.reply(200, PAGE.format(title="Acme", content=content))
        elif self.path == "/logout":
            if session:
                chattr_api("POST", "/api/revoke", {"user": session["user"]})  # ends their chat sessions too
                session.clear()
            self.reply(303, headers=[("Location", "/"), ("Set-Cookie", "sid=; Max-Age=0; Path=/")])
        elif self.path == "/events":
            self.reply(200, json.dumps(EVENTS[-200:]), "application/json")
        else:
            self.reply(404, "not found", "text/plain")

    def do_POST(self):
        if self.path == "/login":
            fields = self.form()
            name, password = fields.get("user", ""), fields.get("password", "")
            if name in USERS and hmac.compare_digest(USERS[name], password):
                sid = secrets.token_urlsafe(32)
                SESSIONS[sid] = {"user": name}
                cookie = f"sid={sid}; HttpOnly; SameSite=Lax; Path=/"
                self.reply(303, headers=[("Location", "/"), ("Set-Cookie", cookie)])
            else:
                error = '<p class="error">Wrong name or password.</p>'
                self.reply(401, PAGE.format(title="Sign in", content=LOGIN_FORM.format(error=error)))
        elif self.path == "/announce":
            if not self.session():
                return self.reply(403, "sign in first", "text/plain")
            chattr_api("POST", "/api/messages", {"target": "#support", "text": self.form().get("text", ""), "from": "helpdesk"})
            self.reply(303, headers=[("Location", "/")])
        elif self.path == "/webhook":
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not verify_webhook(body, self.headers.get("Chattr-Signature", "")):
                return self.reply(401, "bad signature", "text/plain")
            EVENTS.append(json.loads(body))
            self.reply(204)  # any 2xx: delivered; anything else is retried with backoff
        else:
            self.reply(404, "not found", "text/plain")

    def log_message(self, format, *args):  # quiet: one line per request is noise here
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8082)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), App)
    print(f"Acme (Python) on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
