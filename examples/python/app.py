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
import re
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
SESSIONS: dict[str, dict] = {}  # session id -> {"user", "csrf", "jwt", "exp"}
EVENTS: list[dict] = []  # the webhook events received, verified (they include private messages)
DELIVERIES: set[str] = set()  # their delivery ids: a retry or a replay is recorded once
MAX_BODY = 64 * 1024


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
    t, v1 = parts.get("t", ""), parts.get("v1", "")
    if not re.fullmatch(r"[0-9]{1,12}", t) or abs(time.time() - int(t)) > tolerance:
        return False  # missing, or too old: a replay
    expected = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme (Python)</title></head>
<body><h1>{title}</h1>{content}</body></html>"""

LOGIN_FORM = """<form method="post" action="/login">{error}
<label>Name <input name="user" required></label>
<label>Password <input name="password" type="password" required></label>
<button>Sign in</button></form>"""

SIGNED_IN = """<form method="post" action="/logout">Signed in as <b data-testid="app-user">{user}</b>.
<input type="hidden" name="csrf" value="{csrf}"><button>Sign out</button></form>
<form method="post" action="/announce"><label>Announce in #support <input name="text" required></label>
<input type="hidden" name="csrf" value="{csrf}"><button>Post</button></form>
<script src="{chat}/embed.js" data-channel="#support"></script>
<script>Chattr.login({token});</script>"""


class App(BaseHTTPRequestHandler):
    def session(self) -> dict | None:
        jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
        return SESSIONS.get(jar["sid"].value) if "sid" in jar else None

    def body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if 0 <= length <= MAX_BODY else None

    def form(self, session: dict | None = None) -> dict[str, str] | None:
        """The posted form; `None` if too big, or if it lacks the session's CSRF token (a post
        from another site's page)."""
        body = self.body()
        if body is None:
            return None
        fields = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
        if session is not None and not hmac.compare_digest(session["csrf"], fields.get("csrf", "")):
            return None
        return fields

    def reply(self, status: int, body: str = "", kind: str = "text/html; charset=utf-8", headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        session = self.session()
        if self.path == "/":
            content = LOGIN_FORM.format(error="")
            if session:
                user, token = html.escape(session["user"]), json.dumps(session_jwt(session))
                content = SIGNED_IN.format(user=user, csrf=session["csrf"], chat=html.escape(CHATTR_URL), token=token)
            self.reply(200, PAGE.format(title="Acme", content=content))
        elif self.path == "/events":
            # For the app's operators (and its tests), with the shared secret.
            if not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {SECRET.decode()}"):
                return self.reply(401, "operators only", "text/plain")
            self.reply(200, json.dumps(EVENTS[-200:]), "application/json")
        else:
            self.reply(404, "not found", "text/plain")

    def do_POST(self):
        session = self.session()
        if self.path == "/login":
            fields = self.form() or {}
            name, password = fields.get("user", ""), fields.get("password", "")
            if name in USERS and hmac.compare_digest(USERS[name], password):
                sid = secrets.token_urlsafe(32)
                SESSIONS[sid] = {"user": name, "csrf": secrets.token_urlsafe(16)}
                cookie = f"sid={sid}; HttpOnly; SameSite=Lax; Path=/"
                self.reply(303, headers=[("Location", "/"), ("Set-Cookie", cookie)])
            else:
                error = '<p class="error">Wrong name or password.</p>'
                self.reply(401, PAGE.format(title="Sign in", content=LOGIN_FORM.format(error=error)))
        elif self.path in ("/announce", "/logout"):
            fields = self.form(session) if session else None
            if fields is None:
                return self.reply(403, "sign in first, and use the page's forms", "text/plain")
            if self.path == "/announce":
                chattr_api("POST", "/api/messages", {"target": "#support", "text": fields.get("text", ""), "from": "helpdesk"})
                return self.reply(303, headers=[("Location", "/")])
            chattr_api("POST", "/api/revoke", {"user": session["user"]})  # ends their chat sessions too
            session.clear()
            self.reply(303, headers=[("Location", "/"), ("Set-Cookie", "sid=; Max-Age=0; Path=/")])
        elif self.path == "/webhook":
            body = self.body()
            if body is None or not verify_webhook(body, self.headers.get("Chattr-Signature", "")):
                return self.reply(401, "bad signature", "text/plain")
            event = json.loads(body)
            # A retry, or a replay of a genuine delivery within the signature's window, has the
            # same delivery id: record each one once.
            if event["delivery"] not in DELIVERIES:
                DELIVERIES.add(event["delivery"])
                EVENTS.append(event)
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
