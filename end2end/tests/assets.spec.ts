import { expect, test } from "@playwright/test";
import { request as httpRequest } from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";

// The UI's page weight and cache policy, on the bundle the suite runs (scripts/test.sh builds it
// as a release: `cargo leptos build --release --precompress`, hashed names).

/** What the browser downloads before the page is interactive: compressed wasm + js, in bytes. */
const BUDGET = 300_000;

const baseURL = () => test.info().project.use.baseURL as string;

type Raw = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/** A GET over plain HTTP that leaves the body as it came over the wire (no decompression). */
function get(path: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, baseURL()), { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The hashed js, wasm and css the page refers to. */
async function bundle() {
  const page = await get("/", { "accept-encoding": "br, gzip" });
  const html = page.body.toString();
  const find = (ext: string) => {
    const name = html.match(new RegExp(`href="(/pkg/chattr\\.[A-Za-z0-9_-]{22}\\.${ext})"`))?.[1];
    expect(name, `a content-hashed .${ext} in the page (build the UI with \`cargo leptos build --release\`)`).toBeTruthy();
    return name as string;
  };
  return { page, js: find("js"), wasm: find("wasm"), css: find("css") };
}

const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`;

test("the wasm and js stay under their ceiling on the wire, brotli-compressed as served", async () => {
  const { js, wasm, css } = await bundle();
  const rows: string[] = [];
  let total = 0;
  for (const path of [wasm, js, css]) {
    const plain = await get(path);
    const br = await get(path, { "accept-encoding": "gzip, deflate, br, zstd" });
    const gz = await get(path, { "accept-encoding": "gzip" });
    expect(br.headers["content-encoding"], `${path} precompressed (build with --precompress)`).toBe("br");
    expect(brotliDecompressSync(br.body).equals(plain.body), `${path}.br is ${path}`).toBe(true);
    expect(gunzipSync(gz.body).equals(plain.body), `${path}.gz is ${path}`).toBe(true);
    if (path !== css) total += br.body.length;
    rows.push(`${path.padEnd(42)} ${kB(plain.body.length).padStart(10)} ${kB(gz.body.length).padStart(10)} ${kB(br.body.length).padStart(10)}`);
  }
  console.log(
    [`${"file".padEnd(42)} ${"raw".padStart(10)} ${"gzip".padStart(10)} ${"brotli".padStart(10)}`, ...rows, `wasm + js, brotli: ${kB(total)} (budget ${kB(BUDGET)})`].join("\n"),
  );
  expect(total, "compressed wasm + js").toBeLessThanOrEqual(BUDGET);
});

test("each request gets the encoding it accepts; hashed files are cached for good, pages revalidated", async () => {
  const { page, js, wasm, css } = await bundle();
  expect(page.headers["cache-control"]).toBe("no-cache");
  expect(page.headers["content-type"]).toContain("text/html");
  const types: Record<string, string> = { [wasm]: "application/wasm", [js]: "text/javascript", [css]: "text/css" };
  for (const path of [wasm, js, css]) {
    for (const [accept, encoding] of [
      ["br", "br"],
      ["gzip, br", "br"],
      ["gzip", "gzip"],
      ["br;q=0, gzip", "gzip"],
      ["identity", undefined],
      [undefined, undefined],
    ] as const) {
      const res = await get(path, accept ? { "accept-encoding": accept } : {});
      const what = `${path} with Accept-Encoding: ${accept ?? "(none)"}`;
      expect(res.status, what).toBe(200);
      expect(res.headers["content-encoding"], what).toBe(encoding);
      expect(res.headers["content-type"], what).toBe(types[path]);
      expect(res.headers["content-length"], what).toBe(String(res.body.length));
      expect(res.headers["vary"], what).toBe("accept-encoding");
      expect(res.headers["cache-control"], what).toBe("public, max-age=31536000, immutable");
    }
  }
  const favicon = await get("/favicon.svg", { "accept-encoding": "br" });
  expect(favicon.headers["cache-control"]).toBe("public, max-age=3600");
  expect(favicon.headers["content-encoding"]).toBe("br");
  const missing = await get("/no/such/page");
  expect([missing.status, missing.headers["cache-control"]]).toEqual([404, "no-cache"]);
});

test("a second visit takes the wasm and js from the browser's cache", async ({ browser }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto("/");
  await page.waitForSelector("body[data-hydrated]");
  await page.goto("/");
  await page.waitForSelector("body[data-hydrated]");
  const fetched = await page.evaluate(() =>
    performance
      .getEntriesByType("resource")
      .map((e) => e as PerformanceResourceTiming)
      .filter((e) => /\/pkg\/.*\.(wasm|js|css)$/.test(e.name))
      .map((e) => ({ name: new URL(e.name).pathname, transferSize: e.transferSize })),
  );
  expect(fetched.length).toBeGreaterThanOrEqual(3);
  for (const f of fetched) expect(f.transferSize, `${f.name} from the cache, not asked for again`).toBe(0);
});

// Measured, not judged: how long a phone on a slow mobile network takes from navigation to an
// interactive page (Lighthouse's mobile profile: 150 ms round trips, 1.6 Mbit/s down, 750 kbit/s
// up, a CPU 4× slower than this one). The README's performance section quotes these figures.
test("time to hydrate on a throttled phone profile (printed)", async ({ browser }) => {
  test.setTimeout(120_000);
  const runs: { hydrated: number; bytes: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 150,
      downloadThroughput: (1.6 * 1000 * 1000) / 8,
      uploadThroughput: (750 * 1000) / 8,
    });
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    await page.addInitScript(() => {
      new MutationObserver((_, observer) => {
        if (document.body?.hasAttribute("data-hydrated")) {
          (window as unknown as { hydratedAt: number }).hydratedAt = performance.now();
          observer.disconnect();
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-hydrated"] });
    });
    await page.goto("/");
    await page.waitForSelector("body[data-hydrated]", { timeout: 60_000 });
    await expect(page.getByRole("button", { name: "Start chatting" })).toBeEnabled();
    runs.push(
      await page.evaluate(() => {
        const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
        const bytes = entries.reduce((sum, e) => sum + (e as PerformanceResourceTiming).transferSize, 0);
        return { hydrated: (window as unknown as { hydratedAt: number }).hydratedAt, bytes };
      }),
    );
    await context.close();
  }
  const times = runs.map((r) => r.hydrated).sort((a, b) => a - b);
  console.log(
    `throttled cold visit (150 ms RTT, 1.6 Mbit/s, CPU ×4): hydrated after ${(times[1] / 1000).toFixed(2)} s ` +
      `(median of ${runs.map((r) => (r.hydrated / 1000).toFixed(2)).join(", ")} s); ` +
      `${kB(runs[0].bytes)} transferred, headers included`,
  );
});
