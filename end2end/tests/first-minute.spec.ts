import { test, expect } from "@playwright/test";
import { join, login, open, send } from "./helpers";

test("after login: a welcome with the server's channels, a channel browser, /help and invitations", async ({ browser }) => {
  const host = await login(browser, "host");
  await join(host, "#browse-me");
  await send(host, "/topic a topic to find");
  await expect(host.getByTestId("topic")).toHaveText("a topic to find");

  const newbie = await login(browser, "newbie");
  const welcome = newbie.getByTestId("welcome");
  await expect(welcome.getByRole("heading", { name: "Welcome, newbie!" })).toBeVisible();
  await welcome.getByRole("button", { name: "Join #lobby" }).click();
  await expect(newbie.locator(".topic-bar .title")).toHaveText("#lobby");
  await expect(welcome).toHaveCount(0);

  // The channel browser: found by topic, joined with one click.
  const browse = newbie.getByRole("button", { name: "Browse channels" });
  await browse.click();
  const dialog = newbie.getByRole("dialog", { name: "Channels" });
  await expect(dialog).toBeVisible();
  await expect(newbie.getByLabel("Find a channel")).toBeFocused();
  await newbie.getByLabel("Find a channel").fill("TOPIC TO");
  const row = dialog.locator(".channel-row");
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("#browse-me");
  await expect(row).toContainText("1 person");
  await expect(row).toContainText("a topic to find");
  await row.getByRole("button", { name: "Join #browse-me" }).click();
  await expect(dialog).toHaveCount(0);
  await expect(newbie.locator(".topic-bar .title")).toHaveText("#browse-me");

  // A dialog closes on Escape and gives focus back; Tab stays inside it.
  await browse.click();
  await expect(dialog).toBeVisible();
  for (let i = 0; i < 12; i++) await newbie.keyboard.press("Tab");
  expect(await dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
  await newbie.keyboard.press("Escape");
  await expect(dialog).toHaveCount(0);
  await expect(browse).toBeFocused();

  // /help lists the commands.
  await send(newbie, "/help");
  const help = newbie.getByRole("dialog", { name: "Commands" });
  await expect(help).toContainText("/invite <nick> [#channel]");
  await newbie.keyboard.press("Escape");
  await expect(help).toHaveCount(0);

  // An invitation shows wherever you are, with Join.
  await join(host, "#club");
  await send(host, "/mode +i");
  await send(host, "/invite newbie #club");
  const invitation = newbie.getByTestId("invitation");
  await expect(invitation).toHaveText(/host invited you to #club/);
  await expect(newbie.locator(".topic-bar .title")).toHaveText("#browse-me");
  await invitation.getByRole("button", { name: "Join" }).click();
  await expect(newbie.locator(".topic-bar .title")).toHaveText("#club");
  await expect(invitation).toHaveCount(0);
  await expect(host.locator(".line.system").last()).toContainText("newbie joined #club");
});

test("a taken nick offers free ones to pick from", async ({ browser }) => {
  await login(browser, "popular");
  const page = await open(browser);
  await page.getByLabel("Nick").fill("popular");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.locator(".login-errors")).toContainText("someone is using that nick");
  const offers = page.getByTestId("free-nicks");
  await expect(offers.getByRole("button")).toHaveCount(3);
  await offers.getByRole("button", { name: "popular_" }).click();
  await expect(page.getByLabel("Nick")).toHaveValue("popular_");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText("popular_");
});
