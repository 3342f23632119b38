import { test, expect, type Browser, type Page, type WebSocketRoute } from "@playwright/test";
import { DEFAULT_FLOOD, join, login, member, open, send, Server } from "./helpers";

/** The composer. */
const composer = (page: Page) => page.getByLabel("Message", { exact: true });

/** Starts `server` and logs `nick` in there, in 30 channels (#room0 to #room29). */
async function inThirtyChannels(browser: Browser, server: Server, nick: string): Promise<Page> {
  await server.start();
  const page = await login(browser, nick, { baseURL: server.url });
  for (let i = 0; i < 30; i++) await join(page, `#room${i}`);
  return page;
}

test("a reload keeps the session: nick, channels, roles, drafts, private history and what is unread", async ({ browser }) => {
  const me = await login(browser, "reloader");
  const friend = await login(browser, "friend");
  await join(me, "#stay");
  await join(friend, "#stay");
  await expect(member(me, "reloader")).toContainText("@");
  // A private conversation, then back to #stay with half a sentence in the composer.
  await send(friend, "/msg reloader a private word");
  await me.getByRole("button", { name: /^friend,/ }).click();
  await expect(me.locator(".line.message").last()).toContainText("a private word");
  await me.getByRole("button", { name: "#stay" }).click();
  await composer(me).fill("half a thought");
  // Something arrives in the private conversation while #stay is on screen.
  await send(friend, "/msg reloader while you look elsewhere");
  await expect(me.getByRole("button", { name: /^friend, 1 unread/ })).toBeVisible();

  await me.reload();
  await me.waitForSelector("body[data-hydrated]");
  await expect(me.getByTestId("me")).toHaveText("reloader");
  await expect(me.getByTestId("status")).toHaveText("Connected");
  await expect(me.locator(".topic-bar .title")).toHaveText("#stay");
  await expect(composer(me)).toHaveValue("half a thought");
  await expect(member(me, "reloader")).toContainText("@");
  await expect(member(me, "friend")).toBeVisible();
  await expect(me.getByRole("button", { name: /^friend, 1 unread/ })).toBeVisible();
  await me.getByRole("button", { name: /^friend,/ }).click();
  await expect(me.locator(".line.message", { hasText: "a private word" })).toHaveCount(1);
  await expect(me.getByTestId("new-messages")).toBeVisible();
  // The same session: others saw no quit and no join, and it still talks.
  await expect(friend.locator(".line.system", { hasText: "reloader" })).toHaveCount(0);
  await me.getByRole("button", { name: "#stay" }).click();
  await composer(me).fill("still me after a reload");
  await composer(me).press("Enter");
  await expect(friend.locator(".line.message").last()).toContainText("still me after a reload");
  await expect(me.locator(".line.system", { hasText: "reloader joined" })).toHaveCount(0);
});

test("a Potato user is still signed in after a reload", async ({ browser }) => {
  const page = await open(browser);
  await page.getByRole("tab", { name: "Register" }).click();
  await page.getByLabel("Nick").fill("steady");
  await page.getByLabel("Password").fill('a pass phrase with "quotes" and ünïcødé');
  await page.getByLabel("Email").fill("steady@mail.example");
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".identity .account")).toHaveText("potato:steady");
  await page.reload();
  await page.waitForSelector("body[data-hydrated]");
  await expect(page.getByTestId("status")).toHaveText("Connected");
  await expect(page.locator(".identity .account")).toHaveText("potato:steady");
  await expect(page.getByTestId("me")).toHaveText("steady");
  // Logging out forgets the session: a reload shows the form.
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page.getByLabel("Nick")).toHaveValue("steady");
  await page.reload();
  await page.waitForSelector("body[data-hydrated]");
  await expect(page.getByRole("button", { name: "Start chatting" })).toBeEnabled();
  await expect(page.getByTestId("me")).toHaveCount(0);
});

test("offline: a banner counts down, members stay, messages wait and go once the server is back", async ({ browser }) => {
  test.setTimeout(90_000);
  const server = new Server(3340 + Math.floor(Math.random() * 50));
  await server.start();
  try {
    const typist = await login(browser, "typist", { baseURL: server.url });
    const reader = await login(browser, "reader", { baseURL: server.url });
    await join(typist, "#queue");
    await join(reader, "#queue");
    await expect(member(typist, "reader")).toBeVisible();

    await server.stop();
    const banner = typist.getByTestId("connection-banner");
    await expect(banner).toContainText(/Connection lost\. Reconnecting in \d+ s/);
    await expect(banner.getByRole("button", { name: "Reconnect now" })).toBeVisible();
    // The member list stays, marked as old.
    await expect(typist.getByTestId("members-stale")).toBeVisible();
    await expect(member(typist, "reader")).toBeVisible();
    // The countdown ticks: once a wait of several seconds is shown, it goes down.
    const seconds = async () => Number((await banner.textContent())?.match(/in (\d+) s/)?.[1] ?? -1);
    await expect.poll(seconds, { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    const first = await seconds();
    await expect.poll(seconds).toBeLessThan(first);

    // A message typed now waits, greyed with a clock; a command is refused and kept.
    await composer(typist).fill("typed while offline");
    await composer(typist).press("Enter");
    await expect(composer(typist)).toHaveValue("");
    const pending = typist.locator(".line.pending", { hasText: "typed while offline" });
    await expect(pending).toBeVisible();
    await expect(pending.getByRole("img", { name: "not sent yet" })).toBeVisible();
    await composer(typist).fill("/topic not now");
    await composer(typist).press("Enter");
    await expect(typist.locator(".line.error").last()).toContainText("You are offline");
    await expect(composer(typist)).toHaveValue("/topic not now");

    // Once the next attempt is a while away, the server comes back and "Reconnect now" goes
    // at once instead of waiting.
    await expect.poll(seconds, { timeout: 40_000 }).toBeGreaterThanOrEqual(8);
    await server.start();
    expect(await seconds()).toBeGreaterThanOrEqual(4);
    await banner.getByRole("button", { name: "Reconnect now" }).click();
    await expect(typist.getByTestId("status")).toHaveText("Connected", { timeout: 3_000 });
    await expect(banner).toHaveCount(0);
    await expect(pending).toHaveCount(0);
    await expect(typist.locator(".line.message", { hasText: "typed while offline" })).toHaveCount(1);
    await expect(reader.locator(".line.message", { hasText: "typed while offline" })).toHaveCount(1, { timeout: 30_000 });
    await expect(typist.getByTestId("members-stale")).toHaveCount(0);
    // No join line of one's own for the rejoin.
    await expect(typist.locator(".line.system", { hasText: "typist joined" })).toHaveCount(1);
  } finally {
    await server.dispose();
  }
});

test("a refused message says why and can be retried or taken back to edit", async ({ browser }) => {
  const sender = await login(browser, "sender");
  const gone = await login(browser, "goner");
  await send(sender, "/msg goner hello");
  await sender.getByRole("button", { name: /^goner/ }).click();
  await expect(sender.locator(".line.message", { hasText: "hello" })).toBeVisible();
  await gone.getByRole("button", { name: "Log out" }).click();
  await expect(gone.getByLabel("Nick")).toHaveValue("goner");

  await composer(sender).fill("are you there?");
  await composer(sender).press("Enter");
  const failed = sender.locator(".line.failed", { hasText: "are you there?" });
  await expect(failed).toContainText("Not sent: goner is not online");
  await expect(failed.locator(".ts")).toHaveCount(1);
  await failed.getByRole("button", { name: "Retry" }).click();
  await expect(failed).toContainText("Not sent: goner is not online");
  await failed.getByRole("button", { name: "Edit" }).click();
  await expect(failed).toHaveCount(0);
  await expect(composer(sender)).toHaveValue("are you there?");
});

test("the composer: Shift+Enter for new lines, a draft per conversation, a byte counter, a refused text kept", async ({ browser }) => {
  const writer = await login(browser, "writer");
  const listener = await login(browser, "listener");
  await join(writer, "#lines");
  await join(listener, "#lines");
  await composer(writer).fill("first line");
  await composer(writer).press("Shift+Enter");
  await composer(writer).pressSequentially("second line");
  await expect(composer(writer)).toHaveValue("first line\nsecond line");
  await composer(writer).press("Enter");
  const received = listener.locator(".line.message").last();
  await expect(received).toContainText("first line\nsecond line", { useInnerText: true });

  // A draft per conversation.
  await composer(writer).fill("for #lines");
  await join(writer, "#other");
  await expect(composer(writer)).toHaveValue("");
  await composer(writer).fill("for #other");
  await writer.getByRole("button", { name: "#lines" }).click();
  await expect(composer(writer)).toHaveValue("for #lines");
  await writer.getByRole("button", { name: "#other" }).click();
  await expect(composer(writer)).toHaveValue("for #other");

  // Near the limit a counter appears; over it, the server's refusal leaves the text in place.
  await composer(writer).fill("x".repeat(3950));
  await expect(writer.getByTestId("byte-counter")).toHaveText("50 bytes left");
  await composer(writer).fill("y".repeat(4010));
  await expect(writer.getByTestId("byte-counter")).toHaveText("10 bytes too long");
  await composer(writer).press("Enter");
  await expect(composer(writer)).toHaveValue("y".repeat(4010));
  await expect(writer.locator(".line.failed")).toHaveCount(0);
  await expect(listener.locator(".line.message", { hasText: "yyyy" })).toHaveCount(0);
});

test("with 30 channels, the reconnect after a restart rejoins every one without being thrown out for flooding", async ({
  browser,
}) => {
  test.setTimeout(120_000);
  // The default flood control (the suite's own lets tests type faster than people): the UI
  // paces what it sends by the limits `welcome` announces.
  const server = new Server(3450 + Math.floor(Math.random() * 50), DEFAULT_FLOOD);
  const metric = (name: string) => server.metric(name);
  let page: Page | undefined;
  try {
    page = await inThirtyChannels(browser, server, "roamer");
    expect(await metric("channels")).toBe(30);
    expect(await metric("flood_refusals_total")).toBe(0);

    // The restart ends the session: the UI logs in again and rejoins all 30 at once, which is
    // past the server's burst of 10.
    await server.stop();
    await expect(page.getByTestId("connection-banner")).toBeVisible();
    await server.start();
    // (The UI retries by itself, a few seconds apart at most by now.)
    await expect.poll(() => metric("channels"), { timeout: 60_000 }).toBe(30);
    expect(await metric("flood_refusals_total")).toBe(0);
    expect(await metric("flood_disconnects_total")).toBe(0);
    await expect(page.getByTestId("status")).toHaveText("Connected");
    await expect(page.locator(".line.error")).toHaveCount(0);
  } finally {
    await page?.context().close();
    await server.dispose();
  }
});

for (const how of ["drops", "reloads"] as const)
test(`a page that ${how === "drops" ? "loses its connection" : "is reloaded"} while those rejoins go out resumes, rejoins the rest and is refused nothing`, async ({
  browser,
}) => {
  test.setTimeout(120_000);
  const server = new Server(3400 + Math.floor(Math.random() * 50), DEFAULT_FLOOD);
  const metric = (name: string) => server.metric(name);
  let page: Page | undefined;
  try {
    page = await inThirtyChannels(browser, server, "midway");

    // The restart ends the session: the UI logs in afresh and rejoins all 30, paced. On the
    // first connection that gets that far, after its 5th join a cluster's unasked `welcome`
    // comes (resumed, no secret, no allowance: the rejoins go on at their pace); after its
    // 12th join it is cut, both ways (or nothing more goes through, and the page reloads), so
    // the session it resumes next is in 12 channels, with its flood allowance spent.
    let cut = false;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const upstream = ws.connectToServer();
      let joins = 0;
      let closed = false;
      let welcome: Record<string, unknown> = {};
      ws.onMessage((m) => {
        if (closed) return;
        upstream.send(m);
        if (cut || typeof m !== "string" || JSON.parse(m).command?.command !== "join") return;
        joins += 1;
        if (joins === 5) {
          const channels = ["#room0", "#room1", "#room2", "#room3", "#room4"];
          const { resume: _, limits, ...rest } = welcome as { resume: string; limits: object };
          ws.send(JSON.stringify({ ...rest, limits: { ...limits, allowance: undefined }, resumed: true, channels }));
        }
        if (joins === 12) {
          cut = closed = true;
          if (how === "drops") {
            upstream.close();
            ws.close();
          }
        }
      });
      upstream.onMessage((m) => {
        if (String(m).startsWith('{"type":"welcome"')) welcome = JSON.parse(String(m));
        ws.send(m);
      });
    });
    await server.stop();
    await expect(page.getByTestId("connection-banner")).toBeVisible();
    await server.start();
    await expect.poll(() => cut, { timeout: 60_000 }).toBe(true);
    if (how === "reloads") {
      await page.reload();
      await page.waitForSelector("body[data-hydrated]");
    }

    // Resumed (one session, not two), with every channel back: the 18 that never went out are
    // joined now, at the pace the resumed session's allowance allows.
    await expect.poll(() => metric("channels"), { timeout: 60_000 }).toBe(30);
    expect(await metric("sessions")).toBe(1);
    expect(await metric("flood_refusals_total")).toBe(0);
    await expect(page.getByTestId("status")).toHaveText("Connected");
    await expect(page.locator(".line", { hasText: "you are no longer in" })).toHaveCount(0);
    await expect(page.locator(".line.error")).toHaveCount(0);
  } finally {
    await page?.context().close();
    await server.dispose();
  }
});

test("a logout while rejoins wait their turn quits at once, not after them", async ({ browser }) => {
  test.setTimeout(120_000);
  const server = new Server(3500 + Math.floor(Math.random() * 50), DEFAULT_FLOOD);
  let page: Page | undefined;
  try {
    page = await inThirtyChannels(browser, server, "leaver");
    // After the restart the UI rejoins all 30, paced (about two a second past the burst).
    const sent: string[] = [];
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const upstream = ws.connectToServer();
      ws.onMessage((m) => {
        const frame = JSON.parse(String(m));
        sent.push(frame.command?.command ?? frame.type);
        upstream.send(m);
      });
      upstream.onMessage((m) => ws.send(m));
    });
    await server.stop();
    await expect(page.getByTestId("connection-banner")).toBeVisible();
    await server.start();
    await expect.poll(() => sent.filter((f) => f === "join").length, { timeout: 60_000 }).toBeGreaterThanOrEqual(10);

    const before = sent.length;
    await page.getByRole("button", { name: "Log out" }).click();
    await expect.poll(() => sent.includes("quit")).toBe(true);
    // At most the frame already waiting for its token went ahead of it; the rest never went.
    expect(sent.indexOf("quit") - before).toBeLessThanOrEqual(1);
    await expect.poll(() => server.metric("sessions")).toBe(0);
    expect(sent.filter((f) => f === "join").length).toBeLessThan(30);
  } finally {
    await page?.context().close();
    await server.dispose();
  }
});

test("after a cluster's unasked welcome, which carries no resume secret, a dropped connection still resumes", async ({
  browser,
}) => {
  const page = await login(browser, "drifter");
  await join(page, "#drift");
  const auths: { resume?: string }[] = [];
  const welcomes: { resume?: string; resumed?: boolean }[] = [];
  const routes: { page: WebSocketRoute; server: WebSocketRoute }[] = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const frame = JSON.parse(String(m));
      if (frame.type === "auth") auths.push(frame);
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(String(m));
      if (frame.type === "welcome") welcomes.push(frame);
      ws.send(m);
    });
    routes.push({ page: ws, server });
  });
  await page.reload();
  await page.waitForSelector("body[data-hydrated]");
  await expect(page.getByTestId("status")).toHaveText("Connected");
  expect(welcomes[0].resumed).toBe(true);
  const secret = welcomes[0].resume;
  expect(secret).toBeTruthy();

  // What a cluster sends every session after a node rejoined it (docs/protocol.md): `welcome`
  // again, resumed, without `resume`. Then the connection drops.
  const { resume: _, limits, ...unasked } = welcomes[0] as { resume: string; limits: object };
  routes[0].page.send(JSON.stringify({ ...unasked, limits: { ...limits, allowance: undefined } }));
  routes[0].server.close();
  routes[0].page.close();

  await expect.poll(() => welcomes.length, { timeout: 30_000 }).toBe(2);
  expect(auths[1].resume, "the session's secret, kept").toBe(secret);
  expect(welcomes[1].resumed).toBe(true);
  await expect(page.getByTestId("status")).toHaveText("Connected");
  await expect(page.getByTestId("me")).toHaveText("drifter");
  await expect(page.locator(".topic-bar .title")).toHaveText("#drift");
});
