import { test, expect, type Page } from "@playwright/test";
import { findings, join, login, open, send } from "./helpers";

async function inBothThemes(page: Page, check: () => Promise<void>) {
  for (const theme of ["light", "dark"]) {
    await page.evaluate((t) => document.documentElement.setAttribute("data-theme", t), theme);
    await check();
  }
}

test("the login form has no serious accessibility findings, in either theme", async ({ browser }) => {
  const page = await open(browser);
  await inBothThemes(page, async () => expect(await findings(page)).toEqual([]));
  await page.getByRole("tab", { name: "Register" }).click();
  expect(await findings(page)).toEqual([]);
});

test("the chat, its welcome and its dialogs have no serious accessibility findings, in either theme", async ({ browser }) => {
  const page = await login(browser, "a11y");
  await inBothThemes(page, async () => expect(await findings(page)).toEqual([]));
  const other = await login(browser, "a11y-friend");
  await join(page, "#a11y");
  await join(other, "#a11y");
  await send(other, "hello, a11y");
  await send(page, "hi there https://example.com");
  await expect(page.locator(".line.message")).toHaveCount(2);
  // The command suggestions are open while a command is typed.
  await page.getByLabel("Message", { exact: true }).fill("/j");
  await expect(page.getByRole("listbox", { name: "Commands" })).toBeVisible();
  await inBothThemes(page, async () => expect(await findings(page)).toEqual([]));
  await page.getByLabel("Message", { exact: true }).fill("");
  // A member's menu.
  await page.locator(".members .member-name", { hasText: "a11y-friend" }).click();
  expect(await findings(page)).toEqual([]);
  await page.keyboard.press("Escape");
  // The channel panel, with a ban in its list (the op sees Unban).
  await send(page, "/ban #a11y nobody!*@*");
  await page.getByRole("button", { name: "Channel settings" }).click();
  await expect(page.getByTestId("ban-list").locator(".ban")).toHaveCount(1);
  await inBothThemes(page, async () => expect(await findings(page)).toEqual([]));
  await page.getByRole("button", { name: "Channel settings" }).click();
  for (const [button, dialog] of [["Browse channels", "Channels"], ["Account", "Your nick"]]) {
    await page.getByRole("button", { name: button }).click();
    await expect(page.getByRole("dialog", { name: dialog })).toBeVisible();
    await inBothThemes(page, async () => expect(await findings(page)).toEqual([]));
    await page.keyboard.press("Escape");
  }
});

test("keyboard: focus goes where typing goes, tabs and menus take arrow keys, Escape backs out", async ({ browser }) => {
  const page = await open(browser);
  await expect(page.getByLabel("Nick")).toBeFocused();
  await page.getByRole("tab", { name: "Guest" }).focus();
  await page.keyboard.press("ArrowRight");
  const signIn = page.getByRole("tab", { name: "Sign in" });
  await expect(signIn).toBeFocused();
  await expect(signIn).toHaveAttribute("aria-selected", "true");
  await expect(page.getByRole("tabpanel", { name: "Sign in" })).toBeVisible();
  await page.keyboard.press("ArrowLeft");
  await expect(page.getByRole("tab", { name: "Guest" })).toHaveAttribute("aria-selected", "true");
  await page.getByLabel("Nick").fill("keyboarder");
  await page.getByLabel("Nick").press("Enter");
  const composer = page.getByLabel("Message", { exact: true });
  await expect(composer).toBeFocused();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Chattr");

  const friend = await login(browser, "keyfriend");
  await join(friend, "#keys-a11y");
  await send(friend, "said before you came");
  await join(page, "#keys-a11y");
  await expect(composer).toBeFocused();
  // History is not read out; what comes live is, with its author, even when grouped.
  await expect(page.locator(".line.message", { hasText: "said before you came" })).toBeVisible();
  await expect(page.getByTestId("announcer")).toHaveText("");
  await send(friend, "first live line");
  await expect(page.getByTestId("announcer")).toHaveText("keyfriend: first live line");
  await send(friend, "second live line");
  const grouped = page.locator(".line.grouped", { hasText: "second live line" });
  await expect(grouped.locator(".from")).toHaveText("keyfriend");
  expect(await grouped.locator(".from").evaluate((e) => getComputedStyle(e).visibility)).toBe("visible");
  expect(await grouped.locator(".from").getAttribute("aria-hidden")).toBeNull();

  // The member menu: opened from the keyboard it takes focus, arrows move, Escape goes back.
  const trigger = page.locator(".members .member-name", { hasText: "keyfriend" });
  await trigger.focus();
  await page.keyboard.press("Enter");
  const items = page.getByRole("menu", { name: "Actions for keyfriend" }).getByRole("menuitem");
  await expect(items.first()).toBeFocused();
  await page.keyboard.press("ArrowDown");
  await expect(items.nth(1)).toBeFocused();
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("ArrowUp");
  await expect(items.last()).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("menu")).toHaveCount(0);
  await expect(trigger).toBeFocused();
  // A click elsewhere closes it too.
  await trigger.click();
  await expect(page.getByRole("menu")).toBeVisible();
  await page.locator(".lines").click();
  await expect(page.getByRole("menu")).toHaveCount(0);

  // The topic editor (for the channel's op) takes focus and Escape cancels it.
  await friend.getByRole("button", { name: "Edit topic" }).click();
  await expect(friend.getByLabel("Topic")).toBeFocused();
  // A wide editor: the field takes most of the conversation's width.
  const field = await friend.getByLabel("Topic").boundingBox();
  const bar = await friend.locator(".topic-bar").boundingBox();
  expect(field!.width).toBeGreaterThan(bar!.width * 0.6);
  await friend.getByLabel("Topic").fill("never saved");
  await friend.keyboard.press("Escape");
  await expect(friend.getByLabel("Topic")).toHaveCount(0);
  await expect(friend.getByTestId("topic")).not.toHaveText("never saved");
  // Links in a topic can be followed.
  await friend.getByRole("button", { name: "Edit topic" }).click();
  await friend.getByLabel("Topic").fill("rules at https://example.com/rules");
  await friend.getByLabel("Topic").press("Enter");
  const link = friend.getByTestId("topic").getByRole("link", { name: "https://example.com/rules" });
  await expect(link).toHaveAttribute("href", "https://example.com/rules");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer");
});
