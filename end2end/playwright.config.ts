import { defineConfig } from "@playwright/test";

// The server under test: the chattrd built by `cargo leptos build`, on its own port, with an
// in-memory store. Playwright waits for /healthz before any test runs.
const port = Number(process.env.CHATTR_E2E_PORT ?? 3210);
const bin = process.env.CHATTR_BIN ?? "../target/debug/chattrd";
const siteRoot = process.env.LEPTOS_SITE_ROOT ?? "../target/site";
// The origin of the host page in the embedding test, the one origin allowed to frame the UI.
const hostPort = Number(process.env.CHATTR_E2E_HOST_PORT ?? 3211);

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `${bin}`,
    env: {
      CHATTR_ADDR: `127.0.0.1:${port}`,
      CHATTR_DB: "mem://",
      CHATTR_SHARED_SECRET: "e2e-shared-secret",
      CHATTR_ALLOWED_ORIGINS: `http://127.0.0.1:${hostPort}`,
      // The tests type faster than people do.
      CHATTR_FLOOD_BURST: "1000",
      CHATTR_FLOOD_RATE: "1000",
      // Every browser context connects from 127.0.0.1, each with several connections per page
      // load, and contexts are opened faster than people open tabs.
      CHATTR_MAX_CONNS_PER_IP: "0",
      CHATTR_CONN_RATE_PER_IP: "0",
      LEPTOS_SITE_ROOT: siteRoot,
      CHATTR_LOG: "warn",
      // The host app's user e2e-admin is a server operator (opers.spec.ts).
      CHATTR_OPERS: "app:e2e-admin",
      // Each browser context may name the address it comes from with X-Forwarded-For, as if
      // through a proxy on this machine: server bans by address need people on several.
      CHATTR_TRUSTED_PROXIES: "127.0.0.1",
    },
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
