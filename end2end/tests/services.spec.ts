import { test, expect } from "@playwright/test";
import { join, login, member, open, send, Server } from "./helpers";

const PASSWORD = "correct-horse-battery";

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
  await second.getByLabel("Nick", { exact: true }).fill("regina");
  await second.getByLabel("Password").fill(PASSWORD);
  await second.getByRole("button", { name: "Sign in" }).click();
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
    const signUp = async (nick: string) => {
      const page = await open(browser, { baseURL: server.url });
      await page.getByRole("tab", { name: "Register" }).click();
      await page.getByLabel("Nick").fill(nick);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByLabel("Email").fill(`${nick}@mail.example`);
      await page.getByRole("button", { name: "Register" }).click();
      await expect(page.locator(".identity .account")).toHaveText(`potato:${nick}`);
      return page;
    };
    const founder = await signUp("founder");
    const helper = await signUp("helper");
    await join(founder, "#kept");
    await join(helper, "#kept");
    await founder.getByRole("button", { name: "Channel settings" }).click();
    await founder.getByRole("button", { name: "Register channel" }).click();
    await expect(founder.locator(".line.notice").last()).toContainText("#kept is registered to you");
    await founder.getByLabel("Account on the op list").fill("helper");
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
    // History was not repeated by the rejoin.
    await expect(helper.locator(".line.message", { hasText: "said before the restart" })).toHaveCount(1);
    await send(helper, "back again");
    await expect(founder.locator(".line.message").last()).toContainText("back again");
  } finally {
    await server.dispose();
  }
});
