import { expect, test, type Page } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join as joinPath, resolve } from "node:path";
import { DEFAULT_FLOOD, login, join, send, SECRET, Server } from "./helpers";

// The one origin CHATTR_ALLOWED_ORIGINS lets embed the chat (playwright.config.ts), and two that
// it does not: one for a page that tries to drive the chat, one for a host that is not allowed.
const hostPort = Number(process.env.CHATTR_E2E_HOST_PORT ?? 3211);
const foreignPort = hostPort + 1;
const otherHostPort = hostPort + 2;
const loopHostPort = hostPort + 3;

async function token(baseURL: string, user: string): Promise<string> {
  const res = await fetch(`${baseURL}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  expect(res.status).toBe(200);
  return (await res.json()).token;
}

/** Serves `page` (HTML) on `port` until closed. */
async function serve(port: number, page: string): Promise<HttpServer> {
  const server = createServer((_, response) => {
    response.setHeader("content-type", "text/html");
    response.end(page);
  });
  await new Promise<void>((ready) => server.listen(port, "127.0.0.1", ready));
  return server;
}

/** A page on another origin that posts to every frame of its parent and to the parent itself,
 * as the chat and as the host would, then says it is done. */
const FOREIGN_PAGE = (mallory: string) => `<!doctype html><title>Someone else</title><script>
  for (let i = 0; i < parent.frames.length; i++) {
    const w = parent.frames[i];
    w.postMessage({ type: "chattr:login", token: ${JSON.stringify(mallory)} }, "*");
    w.postMessage({ type: "chattr:token", token: ${JSON.stringify(mallory)} }, "*");
    w.postMessage({ type: "chattr:open", target: "#foreign" }, "*");
    w.postMessage({ type: "chattr:theme", theme: "dark" }, "*");
    w.postMessage({ type: "chattr:logout" }, "*");
  }
  parent.postMessage({ type: "chattr:unread", unread: 42, mentions: 7 }, "*");
  parent.postMessage({ type: "chattr:message", conversation: "#x", from: "mallory", text: "fake", mention: true }, "*");
  parent.postMessage({ type: "foreign:done" }, "*");
</script>`;

/** The PHP example (examples/php) served by `php -S` on `port`, talking to the chat at `chat`. */
class PhpApp {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(joinPath(tmpdir(), "chattr-php-"));
  constructor(readonly port: number) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(chat: string) {
    this.child = spawn(
      "php",
      ["-d", `session.save_path=${this.dir}`, "-S", `127.0.0.1:${this.port}`, "-t", resolve("../examples/php")],
      {
        env: { ...process.env, CHATTR_URL: chat, CHATTR_SHARED_SECRET: SECRET, WEBHOOK_LOG: joinPath(this.dir, "hooks") },
        stdio: "ignore",
      },
    );
    await expect.poll(async () => (await fetch(`${this.url}/style.css`).catch(() => null))?.status).toBe(200);
  }

  async stop() {
    this.child?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Signs in to the PHP app as `user` in a fresh browser context. */
async function signIn(app: PhpApp, browser: import("@playwright/test").Browser, user: string, password: string) {
  const page = await (await browser.newContext()).newPage();
  (page as unknown as { errors: string[] }).errors = errorsOf(page);
  await page.goto(app.url);
  await page.getByLabel("Name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("app-user")).toHaveText(user);
  return page;
}

/** Collects the errors of a page and of every frame in it: a panic of the chat's wasm shows as
 * a page error (the trap; its message goes to the console in debug builds only). */
function errorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return errors;
}

const launcher = (page: Page) => page.locator("[data-chattr=launcher]");
const badge = (page: Page) => page.locator("[data-chattr=badge]");

test("the PHP example: its user chats from the widget; other hosts and foreign frames get nowhere", async ({
  browser,
  baseURL,
}) => {
  const app = new PhpApp(hostPort);
  const otherHost = new PhpApp(otherHostPort);
  await app.start(baseURL!);
  await otherHost.start(baseURL!);
  const foreign = await serve(foreignPort, FOREIGN_PAGE(await token(baseURL!, "mallory")));
  try {
    const visitor = await login(browser, "acmeguest");
    await join(visitor, "#support");

    // The app signs alice in with its own accounts; the widget logs her into the chat with the
    // token the app asked Chattr for, and joins #support.
    const alice = await signIn(app, browser, "alice", "wonderland");
    await expect(launcher(alice)).toHaveText(/^Chat/);
    await expect(alice.locator("[data-chattr=panel]")).toBeHidden();
    await launcher(alice).click();
    await expect(launcher(alice)).toHaveAttribute("aria-expanded", "true");
    const chat = alice.frameLocator("[data-chattr=panel] iframe");
    await expect(chat.getByTestId("me")).toHaveText("alice");
    await expect(chat.locator(".mobile-bar strong")).toHaveText("#support");
    // The compact layout fits the widget's 360×560 panel.
    const box = (await alice.locator("[data-chattr=panel]").boundingBox())!;
    expect([box.width, box.height]).toEqual([360, 560]);

    // She and the visitor talk.
    await send(visitor, "hello, anyone from Acme?");
    await expect(chat.locator(".line.message").last()).toContainText("hello, anyone from Acme?");
    await chat.getByLabel("Message", { exact: true }).fill("alice here, how can I help?");
    await chat.getByLabel("Message", { exact: true }).press("Enter");
    await expect(visitor.locator(".line.message").last()).toContainText("alice here, how can I help?");
    await expect(visitor.locator(".line.message").last().locator(".from")).toHaveText("alice");

    // The app posts through the server API as its bot. The form reloads the app's page: the
    // widget stays open, on the same chat session.
    await alice.getByLabel("Announce in #support as the helpdesk bot").fill("maintenance at noon");
    await alice.getByRole("button", { name: "Post" }).click();
    await expect(visitor.locator(".line.message").last()).toContainText("maintenance at noon");
    await expect(visitor.locator(".line.message").last().locator(".from")).toHaveText("helpdesk");
    await expect(alice.locator("[data-chattr=panel]")).toBeVisible();
    await expect(chat.locator(".line.message").last()).toContainText("maintenance at noon");
    await expect(chat.getByTestId("me")).toHaveText("alice");
    await expect(chat.locator(".line.error"), "the resumed session is not sent to #support again").toHaveCount(0);
    await alice.screenshot({ path: "../docs/screenshots/php-example.png" });

    // Closed, the widget counts what comes: on its badge and in the app's own page (its
    // "unread" event).
    await launcher(alice).click();
    await expect(alice.locator("[data-chattr=panel]")).toBeHidden();
    await send(visitor, "still there?");
    await expect(badge(alice)).toHaveText("1");
    await expect(alice.locator("#unread")).toHaveText("1 unread in the chat");
    await expect(launcher(alice)).toHaveAttribute("aria-label", "Chat, 1 unread");

    // A page on another origin in the host's page posts to the chat's frame (a token for
    // someone else, logout, open, theme) and to the host (fake counts and messages): all of
    // it is ignored on both sides.
    await alice.evaluate((src) => {
      const w = window as unknown as { foreignDone?: boolean };
      window.addEventListener("message", (e) => {
        if (e.data?.type === "foreign:done") w.foreignDone = true;
      });
      const frame = document.createElement("iframe");
      frame.src = src;
      document.body.append(frame);
    }, `http://127.0.0.1:${foreignPort}/`);
    await alice.waitForFunction(() => (window as unknown as { foreignDone?: boolean }).foreignDone === true);
    // The host's own request after the foreign ones: once it is done, they were all handled.
    await alice.evaluate(() => (window as unknown as { Chattr: { open(t: string): void } }).Chattr.open("#after"));
    await expect(chat.locator(".mobile-bar strong")).toHaveText("#after");
    await expect(chat.getByTestId("me")).toHaveText("alice");
    await expect(chat.getByTestId("status")).toHaveText("Connected");
    await expect(chat.locator("html")).not.toHaveAttribute("data-theme", "dark");
    await chat.getByRole("button", { name: /^Conversations/ }).click();
    await expect(chat.getByRole("button", { name: /^#foreign/ })).toHaveCount(0);
    await expect(badge(alice)).not.toHaveText("42");
    await expect(alice.locator("#unread")).not.toContainText("42");

    // A host that is not on the allow-list gets no chat: the frame is refused by
    // frame-ancestors, and a socket from its pages by the Origin check.
    const carol = await signIn(otherHost, browser, "carol", "singer");
    await expect
      .poll(() => carol.frames().find((f) => f !== carol.mainFrame())?.url() ?? "", { timeout: 10_000 })
      .toMatch(/^chrome-error:/);
    const socket = await carol.evaluate(
      (url) =>
        new Promise<string>((done) => {
          const ws = new WebSocket(url);
          ws.onopen = () => done("open");
          ws.onclose = () => done("refused");
        }),
      baseURL!.replace(/^http/, "ws") + "/ws",
    );
    expect(socket).toBe("refused");

    // Signing out of the app signs her out of the chat (the app revokes her tokens).
    await alice.getByRole("button", { name: "Sign out" }).click();
    await expect(alice.getByRole("button", { name: "Sign in" })).toBeVisible();
    await expect(visitor.locator(".line.system").last()).toContainText("alice");
    expect((alice as unknown as { errors: string[] }).errors, "nothing failed in the page or the chat").toEqual([]);
  } finally {
    foreign.close();
    await app.stop();
    await otherHost.stop();
  }
});

test("the host page's API: login, open, theme, logout, and events", async ({ browser, baseURL }) => {
  const bob = await login(browser, "bobw");
  await join(bob, "#widget");
  const tok = await token(baseURL!, "wendy");
  const host = await serve(
    hostPort,
    `<!doctype html><title>Host</title>
    <script src="${baseURL}/embed.js" data-channel="#widget" data-theme="light" data-label="Help"></script>
    <script>
      window.seen = [];
      for (const name of ["ready", "unread", "connection", "message"]) Chattr.on(name, (e) => seen.push([name, e]));
      Chattr.login(${JSON.stringify(tok)});
    </script>`,
  );
  try {
    const page = await (await browser.newContext()).newPage();
    const errors = errorsOf(page);
    await page.goto(`http://127.0.0.1:${hostPort}/`);
    const seen = () => page.evaluate(() => (window as unknown as { seen: [string, Record<string, unknown>][] }).seen);
    await expect.poll(async () => (await seen()).some(([n, e]) => n === "connection" && e.state === "online" && e.nick === "wendy")).toBe(true);
    await expect(launcher(page)).toHaveText(/^Help/);

    // A message while the widget is closed: a "message" event (for the host's own
    // notifications) and the count.
    await send(bob, "wendy: are you there?");
    await expect(badge(page)).toHaveText("1");
    await expect.poll(async () => (await seen()).find(([n]) => n === "message")?.[1]).toEqual({
      conversation: "#widget",
      from: "bobw",
      text: "wendy: are you there?",
      mention: true,
    });
    await expect.poll(async () => (await seen()).filter(([n]) => n === "unread").pop()?.[1]).toEqual({ unread: 1, mentions: 1 });

    // open() shows the widget on a conversation: the channel's unread line is read then; a
    // nick opens a private conversation.
    const chat = page.frameLocator("[data-chattr=panel] iframe");
    const open = (target: string) =>
      page.evaluate((t) => (window as unknown as { Chattr: { open(t: string): void } }).Chattr.open(t), target);
    await open("#widget");
    await expect(page.locator("[data-chattr=panel]")).toBeVisible();
    await expect(chat.locator(".mobile-bar strong")).toHaveText("#widget");
    await expect(badge(page)).toBeHidden();
    await expect(chat.getByTestId("new-messages")).toBeVisible();
    await open("bobw");
    await expect(chat.locator(".mobile-bar strong")).toHaveText("bobw");
    await expect(chat.locator("html")).toHaveAttribute("data-theme", "light");
    await page.evaluate(() => (window as unknown as { Chattr: { setTheme(t: string): void } }).Chattr.setTheme("dark"));
    await expect(chat.locator("html")).toHaveAttribute("data-theme", "dark");

    // Another person on the same host page (the app signed someone else in): nothing of
    // wendy's shows or is sent as theirs, not her private conversation, not her draft.
    await open("#widget");
    await chat.getByLabel("Message", { exact: true }).fill("wendy's unsent words");
    const walter = await token(baseURL!, "walter");
    await page.evaluate((t) => (window as unknown as { Chattr: { login(t: string): void } }).Chattr.login(t), walter);
    await expect(chat.getByTestId("me")).toHaveText("walter");
    await expect(chat.locator(".mobile-bar strong")).toHaveText("#widget");
    await expect(chat.getByLabel("Message", { exact: true })).toHaveValue("");
    await chat.getByRole("button", { name: /^Conversations/ }).click();
    await expect(chat.getByRole("button", { name: /^bobw/ })).toHaveCount(0);
    await chat.getByRole("button", { name: /^Conversations/ }).click();
    const place = await page.frames()[1].evaluate(() => localStorage.getItem("chattr-place") ?? "");
    expect(place).not.toContain("wendy");
    // Back to wendy: her own session.
    await page.evaluate((t) => (window as unknown as { Chattr: { login(t: string): void } }).Chattr.login(t), tok);
    await expect(chat.getByTestId("me")).toHaveText("wendy");
    // (Each switch ended the session before it: bob saw wendy leave once.)
    const wendyLeft = bob.locator(".line.system", { hasText: /wendy.*(quit|left)/ });
    await expect(wendyLeft).toHaveCount(1);
    await expect(chat.locator(".mobile-bar strong")).toHaveText("#widget");

    // A reload of the host page hands the same token over: the chat session carries on.
    await page.reload();
    await expect(page.locator("[data-chattr=panel]")).toBeVisible();
    await expect(chat.getByTestId("me")).toHaveText("wendy");
    await expect.poll(async () => (await seen()).some(([n, e]) => n === "connection" && e.state === "online")).toBe(true);
    await send(bob, "still one wendy?");
    await expect(chat.locator(".line.message").last()).toContainText("still one wendy?");
    await expect(wendyLeft).toHaveCount(1);

    // logout() ends the chat session: back to the chat's login form, and the host hears it.
    await page.evaluate(() => (window as unknown as { Chattr: { logout(): void } }).Chattr.logout());
    await expect(chat.getByRole("button", { name: "Start chatting" })).toBeVisible();
    await expect.poll(async () => (await seen()).filter(([n]) => n === "connection").pop()?.[1].state).not.toBe("online");
    expect(errors, "nothing failed in the page or the chat").toEqual([]);
  } finally {
    host.close();
  }
});

test("inline, the chat fills the host's element; a guest can still come in by nick", async ({ browser, baseURL }) => {
  const host = await serve(
    hostPort,
    `<!doctype html><title>Host</title>
    <script src="${baseURL}/embed.js" data-mode="inline" data-target="#box" data-channel="#inline"></script>
    <main><div id="box" style="width:800px;height:500px"></div></main>`,
  );
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`http://127.0.0.1:${hostPort}/`);
    await expect(launcher(page)).toHaveCount(0);
    const frame = page.locator("#box > iframe");
    const box = (await frame.boundingBox())!;
    expect([box.width, box.height]).toEqual([800, 500]);
    const chat = page.frameLocator("#box > iframe");
    await chat.getByLabel("Nick").fill("inliner");
    await chat.getByRole("button", { name: "Start chatting" }).click();
    await expect(chat.getByTestId("me")).toHaveText("inliner");
    // The channel the host named is joined and shown.
    await expect(chat.locator(".topic-bar .title")).toHaveText("#inline");
  } finally {
    host.close();
  }
});

test("a host page calling open() in a loop does not get the person thrown out for flooding", async ({ browser }) => {
  test.setTimeout(60_000);
  const server = new Server(3400 + Math.floor(Math.random() * 50), {
    ...DEFAULT_FLOOD,
    CHATTR_ALLOWED_ORIGINS: `http://127.0.0.1:${loopHostPort}`,
  });
  let host: HttpServer | undefined;
  const context = await browser.newContext();
  try {
    await server.start();
    host = await serve(
      loopHostPort,
      `<!doctype html><title>Host</title>
      <script src="${server.url}/embed.js" data-mode="inline" data-target="#box"></script>
      <script>
        window.states = [];
        Chattr.on("connection", (e) => states.push(e.state));
      </script>
      <main><div id="box" style="width:800px;height:500px"></div></main>`,
    );
    const page = await context.newPage();
    const errors = errorsOf(page);
    await page.goto(`http://127.0.0.1:${loopHostPort}/`);
    const chat = page.frameLocator("#box > iframe");
    await chat.getByLabel("Nick").fill("looper");
    await chat.getByRole("button", { name: "Start chatting" }).click();
    await expect(chat.getByTestId("me")).toHaveText("looper");
    // 200 opens over 30 channels, then one more: each would be a join.
    await page.evaluate(() => {
      const chattr = (window as unknown as { Chattr: { open(t: string): void } }).Chattr;
      for (let i = 0; i < 200; i++) chattr.open(`#loop${i % 30}`);
      chattr.open("#loopend");
    });
    // The opens are paced: the loop ends on its last target, on the same session, and the
    // server refused none of its frames.
    await expect(chat.locator(".topic-bar .title")).toHaveText("#loopend", { timeout: 15_000 });
    await expect(chat.getByTestId("status")).toHaveText("Connected");
    expect(await server.metric("flood_refusals_total")).toBe(0);
    expect(await server.metric("flood_disconnects_total")).toBe(0);
    const states = await page.evaluate(() => (window as unknown as { states: string[] }).states);
    expect(states.slice(states.indexOf("online")), "online once, and never disconnected").toEqual(["online"]);
    expect(errors, "nothing failed in the page or the chat").toEqual([]);
  } finally {
    host?.close();
    await context.close();
    await server.dispose();
  }
});

test("embed.js paces open(): channels three at once then one a second, nicks free, the latest five waiting, dropped by a login", async ({
  browser,
}) => {
  // embed.js on its own, against a stand-in chat frame that records what it is sent, on a
  // fake clock: both are served by the browser context itself (same origin, nothing listens).
  const origin = "http://127.0.0.1:3199";
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.clock.install({ time: new Date("2026-01-01T00:00:00Z") });
  const embedJs = readFileSync(resolve("../public/embed.js"), "utf8");
  await context.route(`${origin}/**`, (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === "/embed.js") return route.fulfill({ contentType: "text/javascript", body: embedJs });
    if (url.searchParams.has("embed")) {
      return route.fulfill({
        contentType: "text/html",
        body: `<!doctype html><script>
          window.received = [];
          addEventListener("message", (e) => { if (e.data.type !== "chattr:view") received.push(e.data.target ?? e.data.type); });
          parent.postMessage({ type: "chattr:ready" }, "*");
        </script>`,
      });
    }
    return route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><div id="box"></div><script src="/embed.js" data-mode="inline" data-target="#box"></script>`,
    });
  });
  await page.goto(`${origin}/`);
  const chat = () => page.frames().find((f) => f.url().includes("embed="))!;
  await expect.poll(() => chat()?.evaluate(() => Array.isArray((window as unknown as { received?: [] }).received))).toBe(true);
  const received = () => chat().evaluate(() => (window as unknown as { received: string[] }).received.slice());
  // From here the clock moves only when the test moves it.
  await page.clock.pauseAt(new Date("2026-01-01T00:01:00Z"));
  const call = (script: string) => page.evaluate(script);

  // Ten channels and a nick in a loop: three go, the latest five wait (the nick behind them).
  await call(`for (let i = 0; i < 10; i++) Chattr.open("#c" + i); Chattr.open("bob"); Chattr.open(42); Chattr.open("")`);
  await expect.poll(received).toEqual(["#c0", "#c1", "#c2"]);
  await page.clock.runFor(999);
  expect(await received()).toEqual(["#c0", "#c1", "#c2"]);
  await page.clock.runFor(1);
  await expect.poll(received).toEqual(["#c0", "#c1", "#c2", "#c6"]);
  await page.clock.runFor(3000);
  await expect.poll(received).toEqual(["#c0", "#c1", "#c2", "#c6", "#c7", "#c8", "#c9", "bob"]);
  // A nick with nothing waiting goes at once, whatever the channels used up; the same channel
  // asked twice while it waits goes once (names compared without case).
  await call(`Chattr.open("alice"); Chattr.open("#d"); Chattr.open("#D")`);
  await expect.poll(received).toContain("alice");
  await page.clock.runFor(1000);
  await expect.poll(received).toEqual(["#c0", "#c1", "#c2", "#c6", "#c7", "#c8", "#c9", "bob", "alice", "#D"]);
  // What waits when the host logs someone in (or out) was asked for the person before: dropped.
  await call(`Chattr.open("#x1"); Chattr.open("#x2"); Chattr.login("another-token")`);
  await expect.poll(async () => (await received()).slice(-1)).toEqual(["chattr:login"]);
  await page.clock.runFor(10_000);
  expect((await received()).filter((t) => t.startsWith("#x"))).toEqual([]);
  await context.close();
});
