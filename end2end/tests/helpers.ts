import { expect, type Browser, type BrowserContextOptions, type Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";

export const SECRET = "e2e-shared-secret";

/** A fresh browser context (its own storage, like another person) on `baseURL`, hydrated,
 * with nothing refused by the page's Content-Security-Policy on the way. */
export async function open(browser: Browser, options: BrowserContextOptions = {}, path = "/"): Promise<Page> {
  const context = await browser.newContext(options);
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      const w = window as unknown as { cspViolations?: string[] };
      (w.cspViolations ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  await page.goto(path);
  await page.waitForSelector("body[data-hydrated]");
  const violations = await page.evaluate(() => (window as unknown as { cspViolations?: string[] }).cspViolations ?? []);
  expect(violations, "the page runs within its Content-Security-Policy").toEqual([]);
  return page;
}

/** The serious and critical accessibility findings of axe-core on the page as it is now. */
export async function findings(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** Opens the page and logs in as a guest. */
export async function login(browser: Browser, nick: string, options: BrowserContextOptions = {}): Promise<Page> {
  const page = await open(browser, options);
  await page.getByLabel("Nick").fill(nick);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await expect(page.getByTestId("me")).toHaveText(nick);
  return page;
}

export async function join(page: Page, channel: string) {
  await page.getByLabel("Join a channel").fill(channel);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await expect(page.locator(".topic-bar .title")).toHaveText(channel);
}

export async function send(page: Page, text: string) {
  const input = page.getByLabel("Message", { exact: true });
  await input.fill(text);
  await input.press("Enter");
}

export function member(page: Page, nick: string) {
  return page.locator(".members .member").filter({ has: page.locator(".member-name", { hasText: new RegExp(`^[@+]?${nick}$`) }) });
}

/** Opens a member's menu and clicks one of its actions. */
export async function memberAction(page: Page, nick: string, action: string) {
  await member(page, nick).locator(".member-name").click();
  await member(page, nick).getByRole("menuitem", { name: action, exact: true }).click();
}

/** The server's own flood control (the suite's servers raise it: tests type faster than
 * people), for a `Server` whose test is about staying within it. */
export const DEFAULT_FLOOD = { CHATTR_FLOOD_BURST: "10", CHATTR_FLOOD_RATE: "2" };

/** The bearer token that reads a `Server`'s /metrics. */
const METRICS_TOKEN = "e2e-metrics";

/** A chattrd process of the test's own, on a real data directory, that the test can restart. */
export class Server {
  private child?: ChildProcess;
  readonly dataDir = mkdtempSync(joinPath(tmpdir(), "chattr-e2e-"));
  /** `env` adds to or overrides its settings. */
  constructor(
    readonly port: number,
    private readonly env: Record<string, string> = {},
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const bin = process.env.CHATTR_BIN ?? "../target/debug/chattrd";
    this.child = spawn(bin, [], {
      env: {
        ...process.env,
        CHATTR_ADDR: `127.0.0.1:${this.port}`,
        CHATTR_DB: `surrealkv://${this.dataDir}`,
        CHATTR_LOG: "warn",
        LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? "../target/site",
        CHATTR_FLOOD_BURST: "1000",
        CHATTR_FLOOD_RATE: "1000",
        CHATTR_METRICS_TOKEN: METRICS_TOKEN,
        ...this.env,
      },
      stdio: "ignore",
    });
    // Ready when /healthz answers.
    await expect
      .poll(async () => (await fetch(`${this.url}/healthz`).catch(() => null))?.status, { timeout: 20_000 })
      .toBe(200);
  }

  /** One figure of its /metrics (`chattr_<name>`), as a number (NaN when it has none). */
  async metric(name: string): Promise<number> {
    const res = await fetch(`${this.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    return Number((await res.text()).match(new RegExp(`^chattr_${name} (\\d+)$`, "m"))?.[1]);
  }

  /** SIGTERM, and wait until it has exited. */
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
