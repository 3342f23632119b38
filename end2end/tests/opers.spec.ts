import { expect, test, type Browser } from "@playwright/test";
import { SECRET, findings, join, login, member, memberAction, open, send } from "./helpers";

/** Comes from `address`, as the trusted proxy on this machine would say (X-Forwarded-For). */
const from = (address: string) => ({ extraHTTPHeaders: { "X-Forwarded-For": address } });

/** The host app's operator, e2e-admin (CHATTR_OPERS), logged in with a token. */
async function operator(browser: Browser, baseURL: string) {
  const res = await fetch(`${baseURL}/api/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${SECRET}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user: "e2e-admin" }),
  });
  const { token } = await res.json();
  const page = await open(browser, from("203.0.113.1"), `/#token=${encodeURIComponent(token)}`);
  await expect(page.getByTestId("me")).toHaveText("e2e-admin");
  await expect(page.locator(".line.system", { hasText: "you are a server operator" })).toHaveCount(1);
  return page;
}

test("a server operator disconnects and bans from the member list, and lifts the ban on the operator page", async ({ browser, baseURL }) => {
  const admin = await operator(browser, baseURL!);
  const pest = await login(browser, "pest", from("203.0.113.66"));
  const troll = await login(browser, "troll", from("203.0.113.77"));
  const bystander = await login(browser, "bystander", from("203.0.113.9"));
  for (const page of [admin, pest, troll, bystander]) await join(page, "#opers");
  await expect(member(admin, "bystander")).toBeVisible();

  // Only an operator sees the server-wide actions and the operator page.
  await bystander.locator(".members .member-name", { hasText: "pest" }).click();
  await expect(bystander.getByRole("menuitem", { name: "Ban from server…" })).toHaveCount(0);
  await expect(bystander.getByRole("button", { name: "Server", exact: true })).toHaveCount(0);
  await admin.locator(".members .member-name", { hasText: "e2e-admin" }).click();
  await expect(admin.getByRole("menuitem", { name: "Ban from server…" })).toHaveCount(0);
  await admin.keyboard.press("Escape");

  // Disconnect: the session ends, for good on that page.
  await memberAction(admin, "troll", "Disconnect from server…");
  const kill = admin.getByRole("dialog", { name: "Disconnect troll from the server" });
  await admin.getByLabel("Reason (shown to them and in the audit log)").fill("calm down");
  await kill.getByRole("button", { name: "Disconnect troll" }).click();
  await expect(member(admin, "troll")).toHaveCount(0);
  await expect(troll.getByTestId("connection-banner")).toContainText("a server operator disconnected you");

  // Ban from the server, for a day: their session ends and their address cannot log in.
  await memberAction(admin, "pest", "Ban from server…");
  const ban = admin.getByRole("dialog", { name: "Ban pest from the server" });
  await admin.getByLabel("Reason (shown to them and in the audit log)").fill("spam links");
  await expect(admin.getByLabel("For")).toHaveValue("86400");
  expect(await findings(admin)).toEqual([]);
  await ban.getByRole("button", { name: "Ban pest from the server" }).click();
  await expect(member(admin, "pest")).toHaveCount(0);
  await expect(pest.getByTestId("connection-banner")).toContainText("banned");
  const again = await open(browser, from("203.0.113.66"));
  await again.getByLabel("Nick").fill("pest2");
  await again.getByRole("button", { name: "Start chatting" }).click();
  await expect(again.locator(".login-errors")).toHaveText("you are banned from this server: spam links");
  // Someone elsewhere is not touched.
  await expect(member(admin, "bystander")).toBeVisible();

  // The operator page: the ban (by address) with its reason, and the audit log.
  await admin.getByRole("button", { name: "Server", exact: true }).click();
  const page = admin.getByRole("dialog", { name: "Server administration" });
  const klines = page.getByTestId("klines");
  await expect(klines).toContainText("203.0.113.66/32 (spam links), by e2e-admin, 24h left");
  const audit = page.getByTestId("audit-log");
  await expect(audit.locator("li").first()).toContainText("e2e-admin (app:e2e-admin, from 203.0.113.1) kline 1day 203.0.113.66/32 (pest): spam links");
  await expect(audit).toContainText("kill troll: calm down");
  await admin.screenshot({ path: "../docs/screenshots/operator-page.png" });
  for (const theme of ["light", "dark"]) {
    await admin.evaluate((t) => document.documentElement.setAttribute("data-theme", t), theme);
    expect(await findings(admin)).toEqual([]);
  }
  // Lifted: gone from the list, in the log, and the address may log in again.
  await page.getByRole("button", { name: "Lift the ban on 203.0.113.66/32" }).click();
  await expect(klines).toHaveText("No server bans.");
  await expect(audit.locator("li").first()).toContainText("unkline 203.0.113.66/32");
  await page.getByRole("button", { name: "Close" }).click();
  await expect(page).toHaveCount(0);

  // A confirmation asked for someone who then leaves closes: the nick could be someone else's
  // by the time it is confirmed.
  await memberAction(admin, "bystander", "Disconnect from server…");
  const pending = admin.getByRole("dialog", { name: "Disconnect bystander from the server" });
  await expect(pending).toBeVisible();
  await send(bystander, "/part");
  await expect(pending).toHaveCount(0);
  await expect(member(admin, "bystander")).toHaveCount(0);
  const back = await login(browser, "pest3", from("203.0.113.66"));
  await expect(back.getByTestId("me")).toHaveText("pest3");
});

test("operators' commands are suggested to operators only", async ({ browser, baseURL }) => {
  const admin = await operator(browser, baseURL!);
  const guest = await login(browser, "plainguest");
  for (const [page, shown] of [[admin, 2], [guest, 0]] as const) {
    const input = page.getByLabel("Message", { exact: true });
    await input.fill("/klin");
    await expect(page.locator(".suggestion", { hasText: "/kline" })).toHaveCount(shown);
    await input.fill("/kic");
    await expect(page.locator(".suggestion", { hasText: "/kick" })).toHaveCount(1);
  }
  // A typed answer with the operator page closed is shown as a line.
  await admin.getByLabel("Message", { exact: true }).fill("/stats");
  await admin.getByLabel("Message", { exact: true }).press("Enter");
  await expect(admin.locator(".line.system").last()).toContainText(/server: \d+ connected \(\d+ sessions\), \d+ channels, operators online: 1, messages: /);
});
