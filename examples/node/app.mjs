// A Node web app (no packages: node:http, node:crypto and fetch) that plugs into Chattr.
//
// Its own users sign in; its pages carry Chattr's widget, logged in with a token this server
// asks Chattr for; it posts into the chat through the server API and takes Chattr's webhooks,
// each verified.
//
//   CHATTR_URL=http://127.0.0.1:3000 CHATTR_SHARED_SECRET=... node app.mjs --port 8083

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const CHATTR_URL = (process.env.CHATTR_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const SECRET = process.env.CHATTR_SHARED_SECRET; // stays on this server, never in a page
if (!SECRET) throw new Error("set CHATTR_SHARED_SECRET to the secret chattrd was started with");
const USERS = { alice: "wonderland", bob: "builder", carol: "singer" }; // this app's own accounts
const sessions = new Map(); // session id -> { user, csrf, chat: { token, expires_at } }
const events = []; // the webhook events received, verified (they include private messages)
const deliveries = new Set(); // their delivery ids: a retry or a replay is recorded once
const MAX_BODY = 64 * 1024;

/** A call to Chattr's server API with the Bearer secret; throws with Chattr's error. */
async function chattr(method, path, body) {
  const res = await fetch(CHATTR_URL + path, {
    method,
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(`Chattr answered ${res.status}: ${answer.code} ${answer.message}`);
  return answer;
}

/** One token per sign-in, renewed before it expires: handed the same one on every page, the
 * widget keeps its chat session. */
async function chatToken(session) {
  if (!session.chat || Date.parse(session.chat.expires_at) - Date.now() < 60_000) {
    session.chat = await chattr("POST", "/api/token", { user: session.user });
  }
  return session.chat.token;
}

/** Checks `Chattr-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`. */
function verifyWebhook(body, header = "", toleranceSeconds = 300) {
  const parts = Object.fromEntries(header.split(",").map((item) => item.trim().split("=", 2)));
  if (!/^\d{1,12}$/.test(parts.t ?? "") || Math.abs(Date.now() / 1000 - Number(parts.t)) > toleranceSeconds) {
    return false; // missing, or too old: a replay
  }
  if (!/^[0-9a-f]{64}$/.test(parts.v1 ?? "")) return false;
  const expected = createHmac("sha256", SECRET).update(`${parts.t}.`).update(body).digest();
  return timingSafeEqual(Buffer.from(parts.v1, "hex"), expected);
}

/** Compares secrets in constant time. */
function same(a, b) {
  const [x, y] = [Buffer.from(String(a)), Buffer.from(String(b))];
  return x.length === y.length && timingSafeEqual(x, y);
}

const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, content) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${content}</body></html>`;
const loginForm = (error = "") => `<form method="post" action="/login">${error}
  <label>Name <input name="user" required></label>
  <label>Password <input name="password" type="password" required></label>
  <button>Sign in</button></form>`;

/** The request's body, or null past MAX_BODY. */
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A posted form; null if too big, or if it lacks the session's CSRF token (a post from
 * another site's page). */
async function readForm(req, session) {
  const body = await readBody(req);
  if (body === null) return null;
  const form = new URLSearchParams(body.toString());
  return session && !same(session.csrf, form.get("csrf") ?? "") ? null : form;
}

async function handle(req, res) {
  const sid = /(?:^|;\s*)sid=([\w-]+)/.exec(req.headers.cookie ?? "")?.[1];
  const session = sid && sessions.get(sid);
  const send = (status, body = "", headers = {}) => {
    res.writeHead(status, { "Content-Type": "text/html; charset=utf-8", ...headers });
    res.end(body);
  };
  const route = `${req.method} ${req.url}`;
  if (route === "GET /") {
    if (!session) return send(200, page("Acme (Node)", loginForm()));
    const token = await chatToken(session);
    const csrf = `<input type="hidden" name="csrf" value="${session.csrf}">`;
    return send(200, page("Acme (Node)", `
      <form method="post" action="/logout">Signed in as <b data-testid="app-user">${escape(session.user)}</b>.
        ${csrf}<button>Sign out</button></form>
      <form method="post" action="/announce"><label>Announce in #support <input name="text" required></label>
        ${csrf}<button>Post</button></form>
      <script src="${escape(CHATTR_URL)}/embed.js" data-channel="#support"></script>
      <script>Chattr.login(${JSON.stringify(token)});</script>`));
  }
  if (route === "POST /login") {
    const form = (await readForm(req)) ?? new URLSearchParams();
    const user = form.get("user") ?? "";
    const known = Object.hasOwn(USERS, user) && same(USERS[user], form.get("password") ?? "");
    if (!known) return send(401, page("Sign in", loginForm('<p class="error">Wrong name or password.</p>')));
    const id = randomBytes(24).toString("base64url");
    sessions.set(id, { user, csrf: randomBytes(16).toString("base64url") });
    return send(303, "", { Location: "/", "Set-Cookie": `sid=${id}; HttpOnly; SameSite=Lax; Path=/` });
  }
  if (route === "POST /logout" || route === "POST /announce") {
    const form = session && (await readForm(req, session));
    if (!form) return send(403, "sign in first, and use the page's forms");
    if (route === "POST /announce") {
      await chattr("POST", "/api/messages", { target: "#support", text: form.get("text") ?? "", from: "helpdesk" });
      return send(303, "", { Location: "/" });
    }
    await chattr("POST", "/api/revoke", { user: session.user }); // ends their chat sessions too
    sessions.delete(sid);
    return send(303, "", { Location: "/", "Set-Cookie": "sid=; Max-Age=0; Path=/" });
  }
  if (route === "POST /webhook") {
    const body = await readBody(req);
    if (body === null || !verifyWebhook(body, req.headers["chattr-signature"])) return send(401, "bad signature");
    const event = JSON.parse(body.toString());
    // A retry, or a replay of a genuine delivery within the signature's window, has the same
    // delivery id: record each one once.
    if (!deliveries.has(event.delivery)) {
      deliveries.add(event.delivery);
      events.push(event);
    }
    return send(204); // any 2xx: delivered; anything else is retried with backoff
  }
  if (route === "GET /events") {
    // For the app's operators (and its tests), with the shared secret.
    if (!same(req.headers.authorization ?? "", `Bearer ${SECRET}`)) return send(401, "operators only");
    return send(200, JSON.stringify(events.slice(-200)), { "Content-Type": "application/json" });
  }
  send(404, "not found");
}

const { port } = parseArgs({ options: { port: { type: "string", default: "8083" } } }).values;
createServer((req, res) =>
  handle(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(502, { "Content-Type": "text/plain" });
    res.end(String(error.message));
  }),
).listen(Number(port), "127.0.0.1", () => console.log(`Acme (Node) on http://127.0.0.1:${port}`));
