import { test, expect, type Browser, type BrowserContextOptions, type Page } from "@playwright/test";
import { join, login, send } from "./helpers";

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
