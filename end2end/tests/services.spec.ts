import { test, expect, Browser, Page } from "@playwright/test";
import { join, login, member, open, send, Server } from "./helpers";

/** Spaces, quotes and letters beyond ASCII: forms send commands as data, so it goes as typed. */
const PASSWORD = 'correct horse "battery" stäple';

/** Registers `nick` with Potato through the login form; the page is then chatting as it. */
async function signUp(browser: Browser, nick: string, baseURL?: string): Promise<Page> {
  const page = await open(browser, baseURL ? { baseURL } : {});
  await page.getByRole("tab", { name: "Register" }).click();
  await page.getByLabel("Nick").fill(nick);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Email").fill(`${nick}@mail.example`);
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".identity .account")).toHaveText(`potato:${nick}`);
  return page;
}

test("register a nick through the form, then sign in to it from another browser", async ({ browser }) => {
  const first = await open(browser);
  await first.getByRole("tab", { name: "Register" }).click();
  await first.getByLabel("Nick").fill("regina");
  await first.getByLabel("Password").fill(PASSWORD);
  await first.getByLabel("Email").fill("regina@mail.example");
  await first.getByRole("button", { name: "Register" }).click();
  await expect(first.locator(".identity .account")).toHaveText("potato:regina");
  await first.getByLabel("Message", { exact: true }).fill("/quit");
  await first.getByLabel("Message", { exact: true }).press("Enter");
  await expect(first.getByTestId("status")).toContainText("Disconnected");

  // A guest who takes the registered nick gets Potato's warning, which leads to the forms.
  const squatter = await login(browser, "regina");
  const warning = squatter.locator(".line.notice").filter({ hasText: "is a registered nick" });
  await warning.getByRole("button", { name: "Sign in or register" }).click();
  await expect(squatter.getByRole("dialog", { name: "Your nick" })).toBeVisible();
  await squatter.keyboard.press("Escape");
  await send(squatter, "/quit");
  await expect(squatter.getByTestId("status")).toContainText("Disconnected");

  const second = await open(browser);
  await second.getByRole("tab", { name: "Sign in" }).click();
  await second.getByLabel("Nick").fill("regina");
  await second.getByLabel("Password").fill("wrong-password-here");
  await second.getByRole("button", { name: "Sign in" }).click();
  // A refused sign-in stays on the form, with the reason and the nick as typed.
  await expect(second.locator(".login-errors")).toContainText(/unknown nick or wrong password/i);
  await expect(second.getByRole("tab", { name: "Sign in" })).toHaveAttribute("aria-selected", "true");
  await expect(second.getByLabel("Nick")).toHaveValue("regina");
  await expect(second.getByTestId("me")).toHaveCount(0);
  // In as a guest, the account panel signs in from the chat.
  await second.getByRole("tab", { name: "Guest" }).click();
  await second.getByLabel("Nick").fill("visitor");
  await second.getByRole("button", { name: "Start chatting" }).click();
  await expect(second.getByTestId("me")).toHaveText("visitor");
  await second.getByRole("button", { name: "Account" }).click();
  // Two forms: registering the nick in use, checked before anything is sent…
  const panel = second.getByRole("dialog", { name: "Your nick" });
  await expect(panel.getByRole("heading", { name: "Register visitor, the nick you are using" })).toBeVisible();
  await panel.getByLabel("New password (8 characters or more)").fill("short");
  await panel.getByLabel("Email").fill("visitor@mail.example");
  await panel.getByRole("button", { name: "Register", exact: true }).click();
  await expect(panel.getByTestId("account-problem")).toHaveText("A password has 8 to 128 characters.");
  await expect(second.locator(".identity .account")).toHaveText("guest");
  // …and signing in to a registered one.
  await panel.getByLabel("Nick", { exact: true }).fill("regina");
  await panel.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await panel.getByRole("button", { name: "Sign in" }).click();
  await expect(second.getByTestId("me")).toHaveText("regina");
  await expect(second.locator(".identity .account")).toHaveText("potato:regina");
});

test("a refused registration creates no session: the form says why and keeps what was typed", async ({ browser }) => {
  const page = await open(browser);
  await page.getByRole("tab", { name: "Register" }).click();
  await page.getByLabel("Nick").fill("rejected");
  // Too short: refused by the form itself, even past the browser's own `minlength`.
  await page.getByLabel("Password").evaluate((el: HTMLInputElement) => el.removeAttribute("minlength"));
  await page.getByLabel("Password").fill("short");
  await page.getByLabel("Email").fill("rejected@mail.example");
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".login-errors")).toContainText("8 to 128 characters");
  // Refused by the server (the nick is registered already): back on the form, no session.
  const owner = await open(browser);
  await owner.getByRole("tab", { name: "Register" }).click();
  await owner.getByLabel("Nick").fill("takenreg");
  await owner.getByLabel("Password").fill(PASSWORD);
  await owner.getByLabel("Email").fill("owner@mail.example");
  await owner.getByRole("button", { name: "Register" }).click();
  await expect(owner.locator(".identity .account")).toHaveText("potato:takenreg");
  await owner.getByLabel("Message", { exact: true }).fill("/quit");
  await owner.getByLabel("Message", { exact: true }).press("Enter");
  await expect(owner.getByTestId("status")).toContainText("Disconnected");
  await page.getByLabel("Nick").fill("takenreg");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".login-errors")).toContainText("registered already");
  await expect(page.getByLabel("Nick")).toHaveValue("takenreg");
  await expect(page.getByTestId("me")).toHaveCount(0);
  await expect(page.getByTestId("status")).not.toContainText(/reconnecting/i);
});

test("a registered channel and its op list survive a restart, and the UI reconnects by itself", async ({ browser }) => {
  // Two registrations (argon2), a restart of a real server and the reconnects take a while.
  test.setTimeout(120_000);
  const server = new Server(3290 + Math.floor(Math.random() * 50));
  await server.start();
  try {
    const founder = await signUp(browser, "founder", server.url);
    const helper = await signUp(browser, "helper", server.url);
    await join(founder, "#kept");
    await join(helper, "#kept");
    await founder.getByRole("button", { name: "Channel settings" }).click();
    await founder.getByRole("button", { name: "Register channel" }).click();
    await expect(founder.locator(".line.notice").last()).toContainText("#kept is registered to you");
    await founder.getByLabel("Account to add to the op list").fill("helper");
    await founder.getByRole("button", { name: "Add to op list" }).click();
    await expect(member(helper, "helper")).toContainText("@");
    await founder.getByRole("button", { name: "Edit topic" }).click();
    await founder.getByLabel("Topic").fill("kept across restarts");
    await founder.getByRole("button", { name: "Save topic" }).click();
    await expect(helper.getByTestId("topic")).toHaveText("kept across restarts");
    await send(founder, "said before the restart");
    // Acknowledged (no longer pending) before the server goes.
    await expect(founder.locator(".line.message", { hasText: "said before the restart" })).not.toHaveClass(/pending/);

    await server.stop();
    await expect(founder.getByTestId("connection-banner")).toContainText("Reconnecting in");
    await server.start();

    // Both pages come back by themselves: identified again, back in #kept, ops as listed.
    for (const [page, nick] of [[founder, "founder"], [helper, "helper"]] as const) {
      await expect(page.getByTestId("status")).toHaveText("Connected", { timeout: 30_000 });
      await expect(page.locator(".identity .account")).toHaveText(`potato:${nick}`);
      await expect(member(page, nick)).toContainText("@");
      await expect(page.getByTestId("topic")).toHaveText("kept across restarts");
    }
    // The panel still shows the registration (it came back with the channel's state).
    await expect(founder.getByTestId("op-list").locator(".chip > span:first-child")).toHaveText(["helper"]);
    // History was not repeated by the rejoin.
    await expect(helper.locator(".line.message", { hasText: "said before the restart" })).toHaveCount(1);
    await send(helper, "back again");
    await expect(founder.locator(".line.message").last()).toContainText("back again");
  } finally {
    await server.dispose();
  }
});

test("the channel panel: the registration with its op list as chips, the bans with Unban, and only what you may do", async ({ browser }) => {
  test.setTimeout(60_000);
  const founder = await signUp(browser, "panelfounder");
  const listed = await signUp(browser, "panellisted");
  const guest = await login(browser, "panelguest");
  for (const page of [founder, listed, guest]) await join(page, "#panel");
  const settings = async (page: Page) => {
    await page.getByRole("button", { name: "Channel settings" }).click();
    return page.getByTestId("channel-settings");
  };
  const g = await settings(guest);
  const f = await settings(founder);
  const l = await settings(listed);
  // Not registered: the op may register; a guest is told what it takes.
  await expect(g.getByTestId("registration")).toContainText("Not registered");
  await expect(g.getByRole("button", { name: "Register channel" })).toHaveCount(0);
  await expect(g).toContainText("sign in to a registered nick");
  // Typed anyway, the refusal leads to the account forms.
  await send(guest, "/celery register #panel");
  await guest.locator(".line.error").last().getByRole("button", { name: "Sign in or register" }).click();
  await expect(guest.getByRole("dialog", { name: "Your nick" })).toBeVisible();
  await guest.keyboard.press("Escape");
  await expect(guest.getByRole("dialog", { name: "Your nick" })).toHaveCount(0);
  await expect(l.getByRole("button", { name: "Register channel" })).toHaveCount(0);
  await f.getByRole("button", { name: "Register channel" }).click();
  // Everyone's panel follows at once, without asking.
  for (const panel of [f, l, g]) await expect(panel.getByTestId("registration")).toContainText("founder panelfounder");
  await f.getByLabel("Account to add to the op list").fill("panellisted");
  await f.getByRole("button", { name: "Add to op list" }).click();
  await expect(member(listed, "panellisted")).toContainText("@");
  for (const panel of [f, l, g]) await expect(panel.getByTestId("op-list").locator(".chip")).toHaveCount(1);
  await expect(f.getByTestId("op-list")).toContainText("panellisted");
  // Only the founder (and trusted ops) may change the list; only the founder trusts or drops.
  await expect(f.getByRole("button", { name: "Remove panellisted from the op list" })).toBeVisible();
  await expect(l.getByRole("button", { name: "Remove panellisted from the op list" })).toHaveCount(0);
  await expect(l.getByLabel("Account to add to the op list")).toHaveCount(0);
  await expect(g.getByRole("button", { name: /^Drop registration/ })).toHaveCount(0);
  await f.getByRole("button", { name: "Let panellisted edit the op list" }).click();
  await expect(l.getByRole("button", { name: "Remove panellisted from the op list" })).toBeVisible();
  await expect(l.getByTestId("op-list")).toContainText("may edit the list");
  await expect(l.getByRole("button", { name: /^Drop registration/ })).toHaveCount(0);

  // Bans: listed with who set them; ops may lift one, others only see them.
  await expect(g.getByTestId("ban-list")).toHaveText("Nobody is banned.");
  await founder.getByLabel("Message", { exact: true }).fill("/ban #panel spammer!*@*");
  await founder.getByLabel("Message", { exact: true }).press("Enter");
  await founder.getByLabel("Message", { exact: true }).fill("/ban #panel flooder!*@*");
  await founder.getByLabel("Message", { exact: true }).press("Enter");
  for (const panel of [f, g]) await expect(panel.getByTestId("ban-list").locator(".ban")).toHaveCount(2);
  await expect(g.getByTestId("ban-list").locator(".ban").first()).toContainText("spammer!*@* · set by panelfounder");
  await expect(g.getByRole("button", { name: /^Unban/ })).toHaveCount(0);
  // A button in the panel keeps the focus while messages arrive (the list is not rebuilt by
  // every event), and so does one in the op list.
  for (const name of ["Unban spammer!*@*", "Remove panellisted from the op list"]) {
    const button = f.getByRole("button", { name });
    await button.focus();
    await send(guest, `while ${name} has the focus`);
    await expect(founder.locator(".line.message").last()).toContainText(`while ${name} has the focus`);
    await expect(button).toBeFocused();
  }
  await f.getByRole("button", { name: "Unban spammer!*@*" }).click();
  for (const panel of [f, g]) await expect(panel.getByTestId("ban-list").locator(".ban")).toHaveText([/flooder!\*@\*/]);
  // A panel opened later asks for the list itself; the answer stays in the panel.
  const late = await login(browser, "panellate");
  await join(late, "#panel");
  const lines = await late.locator(".line").count();
  const p = await settings(late);
  await expect(p.getByTestId("ban-list").locator(".ban")).toHaveText([/flooder/]);
  await expect(late.locator(".line")).toHaveCount(lines);
  // Typed, /bans answers in the conversation.
  await late.getByLabel("Message", { exact: true }).fill("/bans");
  await late.getByLabel("Message", { exact: true }).press("Enter");
  await expect(late.locator(".line.system").last()).toContainText("bans in #panel: flooder!*@*, set by panelfounder");

  await founder.screenshot({ path: "../docs/screenshots/channel-panel.png" });

  // Removing a chip takes the account off the list (and its op status).
  await f.getByRole("button", { name: "Remove panellisted from the op list" }).click();
  await expect(l.getByTestId("op-list").locator(".chip")).toHaveCount(0);
  await expect(member(founder, "panellisted")).not.toContainText("@");
  // Dropping asks first.
  await f.getByRole("button", { name: "Drop registration…" }).click();
  await expect(f.getByRole("alert")).toContainText("Drop the registration of #panel?");
  await f.getByRole("button", { name: "Drop registration", exact: true }).click();
  for (const panel of [f, l, g]) await expect(panel.getByTestId("registration")).toContainText("Not registered");
});
