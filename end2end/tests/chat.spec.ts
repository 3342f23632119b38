import { test, expect, type Browser, type Page } from "@playwright/test";

/** Opens the page in a fresh browser context and logs in as `nick`. */
async function login(browser: Browser, nick: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/");
  await page.waitForSelector("body[data-hydrated]");
  await page.getByLabel("Nick").fill(nick);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.locator(".me")).toHaveText(nick);
  return page;
}

async function join(page: Page, channel: string) {
  await page.getByLabel("Join a channel").fill(channel);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await expect(page.locator(".topic-bar .title")).toHaveText(channel);
}

async function send(page: Page, text: string) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

test("two people chat in a channel through the page", async ({ browser }) => {
  const alice = await login(browser, "alice");
  const bob = await login(browser, "bob");
  await join(alice, "#lobby");
  await join(bob, "#lobby");
  await expect(alice.locator(".members")).toContainText("bob");

  await send(alice, "hello bob");
  await expect(bob.locator(".line.message").last()).toContainText("hello bob");
  await expect(bob.locator(".line.message").last().locator(".from")).toHaveText("alice");

  await send(bob, "hi alice");
  await expect(alice.locator(".line.message").last()).toContainText("hi alice");
  await alice.screenshot({ path: "../docs/screenshots/chat.png" });
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
  const payload = `<img src=x onerror="alert(1)">`;
  await send(alice, payload);
  await expect(bob.locator(".line.message .text").last()).toHaveText(payload);
  expect(await bob.locator(".lines img").count()).toBe(0);
  expect(fired).toBe(false);
});
