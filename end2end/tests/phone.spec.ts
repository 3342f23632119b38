import { test, expect } from "@playwright/test";
import { join, login, send } from "./helpers";

const phone = { viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true };

test("on a phone: a badge on ☰ for what waits elsewhere, a scrim that closes panels, no zoom, big targets", async ({ browser }) => {
  const page = await login(browser, "thumb", phone);
  const other = await login(browser, "poker");
  await join(other, "#p-one");
  await page.getByRole("button", { name: /^Conversations/ }).click();
  await join(page, "#p-one");
  await page.getByRole("button", { name: /^Conversations/ }).click();
  await join(page, "#p-two");
  await expect(page.locator(".sidebar")).toBeHidden();
  await send(other, "over here");
  const badge = page.getByTestId("menu-badge");
  await expect(badge).toHaveText("1");
  await expect(page.getByRole("button", { name: "Conversations, 1 unread elsewhere" })).toBeVisible();
  await expect(page).toHaveTitle("(1) Chattr");
  await send(other, "thumb: look");
  await expect(badge).toHaveText("1");
  await expect(badge).toHaveClass(/mention/);
  // The tab's title says so too, mentions first.
  await expect(page).toHaveTitle("(1!) (2) Chattr");

  // A panel opens over a scrim; a tap on the scrim closes it.
  await page.getByRole("button", { name: /^Conversations/ }).click();
  await expect(page.locator(".sidebar")).toBeVisible();
  await page.getByTestId("scrim").click({ position: { x: 370, y: 400 } });
  await expect(page.locator(".sidebar")).toBeHidden();
  await page.getByRole("button", { name: "Members" }).click();
  await expect(page.locator(".members")).toBeVisible();
  await page.getByTestId("scrim").click({ position: { x: 20, y: 400 } });
  await expect(page.locator(".members")).toBeHidden();

  // Fields at 16px (no zoom on focus), buttons a finger wide.
  const size = await page.getByLabel("Message", { exact: true }).evaluate((e) => getComputedStyle(e).fontSize);
  expect(size).toBe("16px");
  for (const name of [/^Conversations/, "Members", "Send"]) {
    const box = await page.getByRole("button", { name }).boundingBox();
    expect(box?.height ?? 0).toBeGreaterThanOrEqual(44);
  }
});

test("at tablet width the member list folds away behind a button", async ({ browser }) => {
  const page = await login(browser, "tablet", { viewport: { width: 900, height: 700 } });
  await join(page, "#wide");
  await expect(page.locator(".members")).toBeHidden();
  await expect(page.locator(".sidebar")).toBeVisible();
  await page.getByRole("button", { name: "Members" }).click();
  await expect(page.locator(".members")).toBeVisible();
  await page.getByTestId("scrim").click({ position: { x: 300, y: 300 } });
  await expect(page.locator(".members")).toBeHidden();
});
