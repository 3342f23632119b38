import { test, expect } from "@playwright/test";
import { createServer } from "node:http";
import { join, login, member, memberAction, open, send, SECRET } from "./helpers";

/** The host page's port in the embedding test: playwright.config.ts allows its origin. */
const hostPort = Number(process.env.CHATTR_E2E_HOST_PORT ?? 3211);

test("two people chat in a channel and by private message", async ({ browser }) => {
  const alice = await login(browser, "alice");
  const bob = await login(browser, "bob");
  await join(alice, "#lobby");
  await join(bob, "#lobby");
  await expect(member(alice, "bob")).toBeVisible();

  await send(alice, "hello bob, see https://example.com/docs");
  const line = bob.locator(".line.message").last();
  await expect(line).toContainText("hello bob");
  await expect(line.locator(".from")).toHaveText("alice");
  await expect(line).toHaveClass(/mention/);
  const link = line.getByRole("link", { name: "https://example.com/docs" });
  await expect(link).toHaveAttribute("rel", "noopener noreferrer");
  await expect(link).toHaveAttribute("href", "https://example.com/docs");

  await send(bob, "hi alice");
  await expect(alice.locator(".line.message").last()).toContainText("hi alice");

  // A private message from the member list.
  await memberAction(bob, "alice", "Message");
  await expect(bob.locator(".topic-bar .title")).toHaveText("alice");
  // A private conversation has no member list; it says whether the other person is around.
  await expect(bob.locator(".members")).toBeHidden();
  await expect(bob.getByTestId("presence")).toHaveText("online");
  await send(alice, "/away making tea");
  await expect(bob.getByTestId("presence")).toHaveText("away: making tea");
  await send(alice, "/away");
  await expect(bob.getByTestId("presence")).toHaveText("online");
  await send(bob, "just between us");
  await expect(alice.getByRole("button", { name: /^bob, 1 unread, 1 mentioning you$/ })).toBeVisible();
  await expect(alice.getByTestId("mention-badge")).toHaveText("1");
  await alice.getByRole("button", { name: /^bob,/ }).click();
  await expect(alice.getByTestId("new-messages")).toBeVisible();
  await expect(alice.locator(".line.message").last()).toContainText("just between us");
  await send(alice, "sure");
  await expect(bob.locator(".line.message").last()).toContainText("sure");
  await alice.getByRole("button", { name: "#lobby" }).click();
  await expect(alice.locator(".members")).toBeVisible();
  // The away message shows on hover in the member list.
  await send(bob, "/away back soon");
  await expect(alice.locator(".members .member", { hasText: "bob" })).toHaveAttribute("title", "away: back soon");
  await send(bob, "/away");
  await expect(alice.locator(".members .member", { hasText: "bob" })).not.toHaveAttribute("title", /away/);
  await alice.screenshot({ path: "../docs/screenshots/chat.png" });
});

test("an op kicks and bans from the member list", async ({ browser }) => {
  const op = await login(browser, "opal");
  const other = await login(browser, "rowdy");
  await join(op, "#mod");
  await join(other, "#mod");
  await expect(member(op, "opal")).toContainText("@");

  // Non-ops see no moderation actions.
  await other.locator(".members .member-name", { hasText: "opal" }).click();
  await expect(other.getByRole("menuitem", { name: "Kick" })).toHaveCount(0);

  await memberAction(op, "rowdy", "Voice");
  await expect(member(op, "rowdy")).toContainText("+");
  // Kick asks for a reason and a confirmation; Cancel changes nothing.
  await memberAction(op, "rowdy", "Kick…");
  const kick = op.getByRole("dialog", { name: "Kick rowdy from #mod" });
  await expect(op.getByLabel("Reason (shown to everyone)")).toBeFocused();
  await kick.getByRole("button", { name: "Cancel" }).click();
  await expect(kick).toHaveCount(0);
  await expect(member(op, "rowdy")).toBeVisible();
  await memberAction(op, "rowdy", "Kick…");
  await op.getByLabel("Reason (shown to everyone)").fill("cool down");
  await kick.getByRole("button", { name: "Kick rowdy" }).click();
  await expect(member(op, "rowdy")).toHaveCount(0);
  await expect(other.locator(".line.error").last()).toContainText("you were kicked from #mod by opal (cool down)");

  // Ban removes them and keeps them out; the event names the person.
  await join(other, "#mod");
  await expect(member(op, "rowdy")).toBeVisible();
  await memberAction(op, "rowdy", "Ban…");
  await op.getByLabel("Reason (shown to everyone)").fill("spam");
  await op.getByRole("dialog", { name: "Ban rowdy from #mod" }).getByRole("button", { name: "Ban rowdy" }).click();
  await expect(member(op, "rowdy")).toHaveCount(0);
  await expect(op.locator(".line.system", { hasText: "opal banned rowdy (*!*@" })).toHaveCount(1);
  await expect(op.locator(".line.system").last()).toContainText("rowdy was kicked by opal (spam)");
  await other.getByLabel("Join a channel").fill("#mod");
  await other.getByRole("button", { name: "Join", exact: true }).click();
  await expect(other.locator(".line.error").last()).toContainText("you are banned from #mod");
});

test("markup in a message is shown as text and runs nothing", async ({ browser }) => {
  const alice = await login(browser, "carol");
  const bob = await login(browser, "dave");
  await join(alice, "#xss");
  await join(bob, "#xss");
  let fired = false;
  bob.on("dialog", (d) => {
    fired = true;
    return d.dismiss();
  });
  const payload = `<img src=x onerror="alert(1)"> javascript:alert(2)`;
  await send(alice, payload);
  await expect(bob.locator(".line.message .text").last()).toHaveText(payload);
  expect(await bob.locator(".lines img").count()).toBe(0);
  expect(await bob.locator(".lines a").count()).toBe(0);
  expect(fired).toBe(false);
});

test("the composer suggests commands, completes nicks and recalls lines", async ({ browser }) => {
  const alice = await login(browser, "alicia");
  const bob = await login(browser, "bobbin");
  await join(alice, "#keys");
  await join(bob, "#keys");
  await expect(member(alice, "bobbin")).toBeVisible();
  const input = alice.getByLabel("Message", { exact: true });

  await input.fill("/to");
  await expect(alice.getByRole("listbox", { name: "Commands" })).toContainText("Show or set the topic");
  await input.press("Tab");
  await expect(input).toHaveValue("/topic ");
  // ↑/↓ choose among the suggestions (focus stays in the field), Enter takes the chosen one.
  await input.fill("/p");
  const options = alice.getByRole("listbox", { name: "Commands" }).getByRole("option");
  await expect(options).toHaveCount(2);
  await input.press("ArrowDown");
  await expect(options.nth(0)).toHaveAttribute("aria-selected", "true");
  await input.press("ArrowDown");
  await expect(options.nth(1)).toHaveAttribute("aria-selected", "true");
  await expect(input).toHaveAttribute("aria-activedescendant", "suggestion-1");
  await expect(input).toBeFocused();
  await input.press("Enter");
  await expect(input).toHaveValue("/potato ");
  await input.fill("bob");
  await input.press("Tab");
  await expect(input).toHaveValue("bobbin: ");
  await input.press("End");
  await input.pressSequentially("first line");
  await input.press("Enter");
  await expect(bob.locator(".line.message").last()).toContainText("bobbin: first line");
  await input.press("ArrowUp");
  await expect(input).toHaveValue("bobbin: first line");
  await input.press("ArrowDown");
  await expect(input).toHaveValue("");

  // Alt+↑ moves between conversations.
  await join(alice, "#other");
  await alice.keyboard.press("Alt+ArrowUp");
  await expect(alice.locator(".topic-bar .title")).toHaveText("#keys");
});

test("a message an app posts as its bot arrives live and says it is a bot", async ({ browser, baseURL }) => {
  const reader = await login(browser, "botreader");
  await join(reader, "#deploys");
  const res = await fetch(`${baseURL}/api/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ target: "#deploys", text: "release 1.2 is live", from: "deploybot" }),
  });
  expect(res.status).toBe(200);
  const line = reader.locator(".line.message").filter({ hasText: "release 1.2 is live" });
  const author = line.locator(".from");
  await expect(author).toHaveText("deploybot");
  await expect(author).toHaveClass(/\bbot\b/);
  expect(await author.evaluate((el) => getComputedStyle(el, "::after").content)).toBe('"bot"');
});

test("a host app's token in the URL fragment logs its user in", async ({ browser, baseURL }) => {
  const res = await fetch(`${baseURL}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user: "appuser" }),
  });
  expect(res.status).toBe(200);
  const { token } = await res.json();
  const page = await open(browser, {}, `/#token=${encodeURIComponent(token)}`);
  await expect(page.getByTestId("me")).toHaveText("appuser");
  await expect(page.locator(".identity .account")).toHaveText("app:appuser");
  // The token does not linger in the address bar.
  expect(page.url()).not.toContain("token");
});

test("when the host app revokes its user's login, the page says so and stays disconnected", async ({ browser, baseURL }) => {
  const post = (path: string) =>
    fetch(`${baseURL}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
      body: JSON.stringify({ user: "leaver" }),
    });
  const { token } = await (await post("/api/token")).json();
  const page = await open(browser, {}, `/#token=${encodeURIComponent(token)}`);
  await expect(page.getByTestId("me")).toHaveText("leaver");
  const watcher = await login(browser, "watcher");
  await join(watcher, "#exit");
  await join(page, "#exit");
  await expect(member(watcher, "leaver")).toBeVisible();

  const res = await post("/api/revoke");
  expect((await res.json()).sessions_closed).toBe(1);
  // The final wording, not "reconnecting": the page will not try again with a dead token.
  await expect(page.getByTestId("status")).toHaveText(
    "Disconnected: your login was ended by the site you came from.",
  );
  await expect(member(watcher, "leaver")).toHaveCount(0);
});

test("themes and the phone layout", async ({ browser }) => {
  const page = await login(browser, "phoebe", { viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true });
  // The sidebar sits behind a button on a phone.
  await expect(page.locator(".sidebar")).toBeHidden();
  await page.getByRole("button", { name: "Conversations" }).click();
  await join(page, "#phone");
  await expect(page.locator(".sidebar")).toBeHidden();
  await send(page, "typing on a small screen");
  await expect(page.locator(".line.message").last()).toContainText("typing on a small screen");
  await page.getByRole("button", { name: "Members" }).click();
  await expect(member(page, "phoebe")).toBeVisible();
  await page.getByRole("button", { name: "Members" }).click();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(390);
  await page.screenshot({ path: "../docs/screenshots/phone.png" });

  const desktop = await login(browser, "daria");
  await join(desktop, "#themes");
  await send(desktop, "light and dark");
  await desktop.getByLabel("Theme", { exact: true }).selectOption("dark");
  await expect(desktop.locator("html")).toHaveAttribute("data-theme", "dark");
  const background = await desktop.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe("rgb(22, 24, 29)");
  await desktop.screenshot({ path: "../docs/screenshots/chat-dark.png" });
  // The choice is remembered.
  await desktop.reload();
  await desktop.waitForSelector("body[data-hydrated]");
  await expect(desktop.locator("html")).toHaveAttribute("data-theme", "dark");
  // So is the session: the reload comes back as daria.
  await expect(desktop.getByTestId("me")).toHaveText("daria");
  await desktop.getByLabel("Theme", { exact: true }).selectOption("light");
  await expect(desktop.locator("html")).toHaveAttribute("data-theme", "light");
});

test("history comes on join, and older messages load on scroll-up without moving the view", async ({ browser }) => {
  const writer = await login(browser, "archivist");
  await join(writer, "#archive");
  // 120 messages straight over the page's own WebSocket, acknowledged one by one.
  await writer.evaluate(async () => {
    const ws = new WebSocket(`ws://${location.host}/ws`);
    await new Promise((ready) => (ws.onopen = ready));
    const next = () => new Promise<any>((got) => (ws.onmessage = (e) => got(JSON.parse(e.data))));
    ws.send(JSON.stringify({ type: "auth", nick: "bulk" }));
    await next();
    ws.send(JSON.stringify({ type: "command", line: "/join #archive" }));
    for (let e = await next(); e.type !== "history"; e = await next()) {}
    for (let i = 1; i <= 120; i++) {
      ws.send(JSON.stringify({ type: "message", target: "#archive", text: `entry ${i}` }));
      for (let e = await next(); !(e.type === "message" && e.text === `entry ${i}`); e = await next()) {}
    }
    ws.close();
  });

  const reader = await login(browser, "reader");
  await join(reader, "#archive");
  const lines = reader.locator(".lines");
  // The last 50 arrive on join, newest at the bottom, in view.
  await expect(reader.locator(".line.message").last()).toContainText("entry 120");
  await expect(reader.locator(".line.message")).toHaveCount(50);
  await expect(reader.locator(".line.message").last()).toBeInViewport();

  // Scrolling to the top loads the page before, and the line that was on top stays put.
  const anchor = reader.locator(".line.message .text", { hasText: /^entry 71$/ });
  await lines.evaluate((el) => (el.scrollTop = 0));
  await expect(reader.locator(".line.message")).toHaveCount(100);
  await expect(anchor).toBeInViewport();
  await lines.evaluate((el) => (el.scrollTop = 0));
  await expect(reader.locator(".line.message")).toHaveCount(120);
  await expect(reader.locator(".line.message").first()).toContainText("entry 1");
});

test("an embedding page on another origin hands the token over with postMessage", async ({ browser, baseURL }) => {
  const res = await fetch(`${baseURL}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user: "embedded" }),
  });
  const { token } = await res.json();
  // The host app's page, served from an origin of its own.
  const hostPage = `<!doctype html><title>Host app</title>
    <iframe id="chat" src="${baseURL}/" style="width:1000px;height:600px"></iframe>
    <script>
      const frame = document.getElementById("chat");
      frame.addEventListener("load", () => {
        // Hydration may finish after load: repeat until the chat has the token.
        window.timer = setInterval(() => frame.contentWindow.postMessage(
          { type: "chattr:token", token: ${JSON.stringify(token)} }, ${JSON.stringify(baseURL)}), 200);
      });
    </script>`;
  const host = createServer((_, response) => {
    response.setHeader("content-type", "text/html");
    response.end(hostPage);
  });
  // The one origin CHATTR_ALLOWED_ORIGINS lets frame the UI (frame-ancestors).
  await new Promise<void>((ready) => host.listen(hostPort, "127.0.0.1", ready));
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`http://127.0.0.1:${hostPort}/`);
    const chat = page.frameLocator("#chat");
    await expect(chat.getByTestId("me")).toHaveText("embedded");
    await expect(chat.locator(".identity .account")).toHaveText("app:embedded");
  } finally {
    host.close();
  }
});

test("a taken nick keeps you on the form, and the nick you pick next is your one session", async ({ browser }) => {
  const holder = await login(browser, "holder");
  const context = await browser.newContext();
  // Fake timers that run as usual, so the test can jump past any reconnect a first attempt
  // scheduled instead of waiting for it.
  await context.clock.install();
  const page = await context.newPage();
  await page.goto("/");
  await page.waitForSelector("body[data-hydrated]");
  await page.getByLabel("Nick").fill("holder");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.locator(".login-errors")).toContainText("someone is using that nick");
  await expect(page.getByRole("button", { name: "Start chatting" })).toBeVisible();

  await page.getByLabel("Nick").fill("second");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText("second");
  // Past every retry delay: nothing from the first attempt may open a second socket.
  await page.clock.fastForward(60_000);
  await join(holder, "#one-session");
  await join(page, "#one-session");
  await send(page, "only one of me");
  await expect(holder.locator(".line.message").last()).toContainText("only one of me");
  await expect(page.getByTestId("status")).toHaveText("Connected");
  await expect(member(holder, "second")).toHaveCount(1);
  await expect(holder.locator(".members .member")).toHaveCount(2);
});

test("before the page is interactive the login form is inert, so nothing typed is lost to a reload", async ({ browser }) => {
  const page = await (await browser.newContext()).newPage();
  // Hold the WebAssembly back, as a slow phone would.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route("**/pkg/*.wasm", async (route) => {
    await held;
    await route.continue();
  });
  await page.goto("/");
  await expect(page.locator("#login")).toBeDisabled();
  await expect(page.locator("#login")).toHaveText("Loading…");
  await expect(page.getByLabel("Nick")).toBeDisabled();
  release();
  await page.waitForSelector("body[data-hydrated]");
  await page.getByLabel("Nick").fill("early-bird");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText("early-bird");
  expect(page.url()).not.toContain("nick=");
});

test("log out and /quit return to the login form with the nick filled in", async ({ browser }) => {
  const page = await login(browser, "goodbye");
  await join(page, "#exit");
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page.getByRole("button", { name: "Start chatting" })).toBeEnabled();
  await expect(page.getByLabel("Nick")).toHaveValue("goodbye");
  await expect(page.getByTestId("status")).toContainText("you left the chat");
  // Back in at once, as a fresh session: no old conversations come back.
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText("goodbye");
  await expect(page.locator(".conversations li")).toHaveCount(0);
  await page.getByLabel("Message", { exact: true }).fill("/quit");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  await expect(page.getByLabel("Nick")).toHaveValue("goodbye");
});
