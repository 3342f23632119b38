import { test, expect, type Browser, type BrowserContextOptions, type Page, type WebSocketRoute } from "@playwright/test";
import { join, login, open, send } from "./helpers";

const DAY = 24 * 60 * 60 * 1000;

/** Logs in as a guest in a context whose clock runs `ahead` ms ahead of the server's (so the
 * server's timestamps are from earlier days), in a time zone of its own. */
async function loginAhead(browser: Browser, nick: string, ahead: number, options: BrowserContextOptions = {}) {
  const context = await browser.newContext(options);
  await context.clock.install({ time: Date.now() + ahead });
  const page = await context.newPage();
  await page.goto("/");
  await page.waitForSelector("body[data-hydrated]");
  await page.getByLabel("Nick").fill(nick);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText(nick);
  return page;
}

/** What the page should say for the instant in a `<time datetime>`, by the page's own clock
 * and time zone: its date in words and its full date and time. */
function expectedDates(page: Page, datetime: string) {
  return page.evaluate((iso) => {
    const d = new Date(iso);
    const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    const two = (n: number) => String(n).padStart(2, "0");
    const date = `${days[d.getDay()]} ${d.getDate()} ${months[d.getMonth()]} ${d.getFullYear()}`;
    const clock = `${two(d.getHours())}:${two(d.getMinutes())}`;
    return { date, clock, full: `${date} at ${clock}:${two(d.getSeconds())}` };
  }, datetime);
}

/** Posts `count` messages ("entry 1"…) to `channel` as `nick`, straight over a WebSocket of
 * the page's own, each acknowledged before the next. */
async function post(page: Page, nick: string, channel: string, count: number) {
  await page.evaluate(
    async ({ nick, channel, count }) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((ready) => (ws.onopen = ready));
      const next = () => new Promise<any>((got) => (ws.onmessage = (e) => got(JSON.parse(e.data))));
      ws.send(JSON.stringify({ type: "auth", nick }));
      await next();
      ws.send(JSON.stringify({ type: "command", line: `/join ${channel}` }));
      for (let e = await next(); e.type !== "history"; e = await next()) {}
      for (let i = 1; i <= count; i++) {
        ws.send(JSON.stringify({ type: "message", target: channel, text: `entry ${i}` }));
        for (let e = await next(); !(e.type === "message" && e.text === `entry ${i}`); e = await next()) {}
      }
      ws.close();
    },
    { nick, channel, count },
  );
}

test("every line has its time, with the full date and time on hover, and each day its separator", async ({ browser }) => {
  const writer = await login(browser, "daywriter");
  await join(writer, "#days");
  await send(writer, "said before the readers came");
  await expect(writer.locator(".line.message")).toHaveCount(1);

  // A reader a day ahead, far from UTC: the message is from yesterday, their join from today.
  const reader = await loginAhead(browser, "dayreader", DAY, { timezoneId: "Pacific/Auckland" });
  await join(reader, "#days");
  const message = reader.locator(".line.message", { hasText: "said before the readers came" });
  await expect(message).toBeVisible();
  await expect(reader.locator(".line.system", { hasText: "dayreader joined #days" })).toBeVisible();
  await expect(reader.getByTestId("day")).toHaveText(["Yesterday", "Today"]);
  // The separator sits right above the first line of its day.
  const above = (l: typeof message) => l.evaluate((e) => e.previousElementSibling?.textContent);
  expect(await above(message)).toBe("Yesterday");
  expect(await above(reader.locator(".line.system", { hasText: "dayreader joined" }))).toBe("Today");

  // Every line shows its time, joins included; hovering shows the full date and time.
  const clocks = await reader.locator(".line").evaluateAll((lines) => lines.map((l) => l.querySelector("time.ts")?.textContent ?? ""));
  expect(clocks.length).toBeGreaterThanOrEqual(2);
  for (const clock of clocks) expect(clock).toMatch(/^\d\d:\d\d$/);
  const time = message.locator("time.ts");
  const datetime = (await time.getAttribute("datetime")) ?? "";
  expect(datetime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(Math.abs(Date.parse(datetime) - Date.now())).toBeLessThan(10 * 60 * 1000);
  const want = await expectedDates(reader, datetime);
  await expect(time).toHaveText(want.clock);
  await expect(time).toHaveAttribute("title", want.full);
  const joinTime = reader.locator(".line.system", { hasText: "dayreader joined" }).locator("time.ts");
  const joinWant = await expectedDates(reader, (await joinTime.getAttribute("datetime")) ?? "");
  await expect(joinTime).toHaveAttribute("title", joinWant.full);

  // Further back than yesterday, the separator gives the date.
  const later = await loginAhead(browser, "dayafter", 3 * DAY, { timezoneId: "America/New_York" });
  await join(later, "#days");
  const old = later.locator(".line.message", { hasText: "said before the readers came" });
  await expect(old).toBeVisible();
  const when = await expectedDates(later, (await old.locator("time.ts").getAttribute("datetime")) ?? "");
  await expect(later.getByTestId("day")).toHaveText([when.date, "Today"]);
  await expect(old.locator("time.ts")).toHaveAttribute("title", when.full);
});

test("after the New messages divider the first line names its author again", async ({ browser }) => {
  const alice = await login(browser, "grouper");
  const bob = await login(browser, "groupie");
  await join(alice, "#grouping");
  await join(bob, "#grouping");
  await join(bob, "#grouping-else");
  await bob.getByRole("button", { name: "#grouping", exact: true }).click();
  await send(alice, "one");
  await send(alice, "two, grouped under one");
  const line = (text: string) => bob.locator(".line.message", { hasText: text });
  await expect(line("two, grouped under one")).toHaveClass(/grouped/);
  // Bob looks away; alice goes on within the grouping window.
  await bob.getByRole("button", { name: "#grouping-else", exact: true }).click();
  await send(alice, "three, after the divider");
  await expect(bob.getByRole("button", { name: /^#grouping, 1 unread$/ })).toBeVisible();
  await bob.getByRole("button", { name: /^#grouping,/ }).click();
  const divider = bob.getByTestId("new-messages");
  await expect(divider).toBeVisible();
  expect(await line("three, after the divider").evaluate((e) => e.previousElementSibling?.getAttribute("data-testid"))).toBe("new-messages");
  await expect(line("three, after the divider")).not.toHaveClass(/grouped/);
  await expect(line("three, after the divider").locator(".from")).not.toHaveClass(/hidden/);
  await expect(line("three, after the divider").locator(".from")).toBeVisible();
  // Lines after it group under it as usual.
  await send(alice, "four");
  await expect(line("four")).toHaveClass(/grouped/);
});

/** The colour class of a nick: FNV-1a of the case-folded nick, over the palette's 8 colours. */
function nickColour(nick: string) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(nick.toLowerCase(), "utf8")) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return `nick-c${h % 8}`;
}

test("authors' names have a stable colour of their own, readable in both themes", async ({ browser }) => {
  const [one, two] = ["hue-one", "hue-two"];
  expect(nickColour(one), "the two nicks hash to different colours").not.toBe(nickColour(two));
  const first = await login(browser, one);
  const second = await login(browser, two);
  await join(first, "#hues");
  await join(second, "#hues");
  await send(first, "a line");
  await send(second, "an answer");
  await send(first, "/me waves");
  for (const page of [first, second]) {
    await expect(page.locator(".line.message .from", { hasText: one })).toHaveClass(new RegExp(`\\b${nickColour(one)}\\b`));
    await expect(page.locator(".line.message .from", { hasText: two })).toHaveClass(new RegExp(`\\b${nickColour(two)}\\b`));
    await expect(page.locator(".line.action .from")).toHaveClass(new RegExp(`\\b${nickColour(one)}\\b`));
  }
  const [c1, c2] = await Promise.all(
    [one, two].map((n) => second.locator(".line.message .from", { hasText: n }).evaluate((e) => getComputedStyle(e).color)),
  );
  expect(c1).not.toBe(c2);

  // Every colour of the palette, on a plain and on a mention line, in each theme: all
  // different, each at least 4.5:1 against what is behind it.
  for (const theme of ["light", "dark"]) {
    await second.evaluate((t) => document.documentElement.setAttribute("data-theme", t), theme);
    const palette = await second.evaluate(() => {
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
      const luminance = (c: string) => {
        const [r, g, b] = rgb(c).map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const contrast = (a: string, b: string) => {
        const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
        return (hi + 0.05) / (lo + 0.05);
      };
      const list = document.querySelector(".line-list")!;
      const page = getComputedStyle(document.body).backgroundColor;
      const found: { colour: string; worst: number }[] = [];
      for (let i = 0; i < 8; i++) {
        let worst = Infinity;
        let colour = "";
        for (const mention of [false, true]) {
          const li = document.createElement("li");
          li.className = `line message${mention ? " mention" : ""}`;
          const from = document.createElement("span");
          from.className = `from nick-c${i}`;
          from.textContent = "probe";
          li.append(from);
          list.append(li);
          colour = getComputedStyle(from).color;
          const behind = mention ? getComputedStyle(li).backgroundColor : page;
          worst = Math.min(worst, contrast(colour, behind));
          li.remove();
        }
        found.push({ colour, worst });
      }
      return found;
    });
    expect(new Set(palette.map((p) => p.colour)).size, `${theme}: eight different colours`).toBe(8);
    for (const [i, p] of palette.entries()) expect(p.worst, `${theme}: nick-c${i} (${p.colour})`).toBeGreaterThanOrEqual(4.5);
  }
});

test("the tab's icon carries the unread count, mentions first, and goes back once read", async ({ browser }) => {
  const reader = await login(browser, "iconreader");
  const writer = await login(browser, "iconwriter");
  await join(reader, "#icon-a");
  await join(writer, "#icon-a");
  await join(reader, "#icon-b");
  const icon = reader.locator('head link[rel="icon"]');
  await expect(icon).toHaveAttribute("href", "/favicon.svg");
  await send(writer, "something");
  await expect(reader).toHaveTitle("(1) Chattr");
  await expect(icon).toHaveAttribute("href", "/badges/unread-1.svg");
  await send(writer, "iconreader: look");
  await send(writer, "and more");
  await expect(reader).toHaveTitle("(1!) (3) Chattr");
  await expect(icon).toHaveAttribute("href", "/badges/mention-1.svg");
  // The icon is there to be shown, and within the page's Content-Security-Policy.
  const res = await reader.request.get("/badges/mention-1.svg");
  expect(res.status()).toBe(200);
  expect(res.headers()["content-type"]).toContain("image/svg+xml");
  expect(await res.text()).toContain(">1</text>");
  expect(await reader.evaluate(() => (window as unknown as { cspViolations?: string[] }).cspViolations ?? [])).toEqual([]);
  await reader.getByRole("button", { name: /^#icon-a,/ }).click();
  await expect(reader).toHaveTitle("Chattr");
  await expect(icon).toHaveAttribute("href", "/favicon.svg");
});

test("paging back shows that older messages are loading, and the beginning once there are no more", async ({ browser }) => {
  const writer = await login(browser, "pagewriter");
  await join(writer, "#pages");
  await post(writer, "pagebulk", "#pages", 60);

  // The reader's socket goes through the test, which can hold back the server's history pages.
  const reader = await open(browser);
  let holding = false;
  const held: string[] = [];
  let asked = 0;
  let client: WebSocketRoute | undefined;
  await reader.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    client = ws;
    ws.onMessage((m) => {
      if (typeof m === "string" && JSON.parse(m).type === "history") asked += 1;
      server.send(m);
    });
    server.onMessage((m) => {
      if (holding && typeof m === "string" && JSON.parse(m).type === "history") held.push(m);
      else ws.send(m);
    });
  });
  await reader.getByLabel("Nick").fill("pagereader");
  await reader.getByRole("button", { name: "Start chatting" }).click();
  await expect(reader.getByTestId("me")).toHaveText("pagereader");
  await join(reader, "#pages");
  await expect(reader.locator(".line.message")).toHaveCount(50);
  await expect(reader.locator(".line.message").last()).toContainText("entry 60");
  // Older messages exist: no beginning yet, and nothing loading.
  await expect(reader.getByTestId("beginning")).toHaveCount(0);
  await expect(reader.getByTestId("loading-older")).toHaveCount(0);

  holding = true;
  await reader.locator(".lines").evaluate((el) => (el.scrollTop = 0));
  const loading = reader.getByTestId("loading-older");
  await expect(loading).toHaveText("Loading older messages…");
  await expect(loading).toHaveAttribute("role", "status");
  await expect.poll(() => held.length).toBe(1);
  await expect(reader.locator(".line.message")).toHaveCount(50);
  // Scrolling on while it loads asks for nothing more (counted below).
  await reader.locator(".lines").evaluate((el) => el.dispatchEvent(new Event("scroll")));

  holding = false;
  for (const m of held.splice(0)) client?.send(m);
  await expect(reader.locator(".line.message")).toHaveCount(60);
  await expect(loading).toHaveCount(0);
  await expect(reader.locator(".line.message").first()).toContainText("entry 1");
  const beginning = reader.getByTestId("beginning");
  await expect(beginning).toHaveText("Beginning of #pages");
  // At the very top, above the first line.
  expect(await reader.locator(".lines").evaluate((el) => el.firstElementChild?.getAttribute("data-testid"))).toBe("beginning");
  expect(held).toEqual([]);
  expect(asked, "one page asked for").toBe(1);

  // A channel with few messages is whole from the start.
  await join(reader, "#pages-few");
  await expect(reader.getByTestId("beginning")).toHaveText("Beginning of #pages-few");
});
