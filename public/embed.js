/*
 * Chattr on your page. Served by chattrd at /embed.js; the chat comes from the server this
 * script was loaded from.
 *
 *   <script src="https://chat.example/embed.js" data-channel="#support" data-mode="widget"></script>
 *
 * data-mode     "widget" (default): a launcher button in a corner, with an unread badge, that
 *               opens the chat in a small panel; "inline": the chat fills data-target.
 * data-target   inline mode: a CSS selector for the element the chat fills.
 * data-channel  the channel to join and show once the person is logged in.
 * data-theme    "light", "dark" or "system" (default: the person's own choice).
 * data-accent   the launcher's colour (#rgb or #rrggbb).
 * data-label    the launcher's label (default "Chat").
 *
 * window.Chattr: login(token), open("#channel" | "nick"), logout(), show(), hide(), toggle(),
 * setTheme(theme), on(event, fn), off(event, fn). Events: "ready", "unread" ({unread, mentions}),
 * "connection" ({state, nick}), "message" ({conversation, from, text, mention}).
 *
 * Messages cross between this page and the chat's frame by postMessage, each addressed to the
 * other side's exact origin; each side takes messages only from the other's window and origin.
 * The chat serves only pages on its CHATTR_ALLOWED_ORIGINS (frame-ancestors).
 */
(() => {
  "use strict";
  // Loaded twice: the first one stays. (A string, which an element the page names `Chattr`
  // cannot fake.)
  if (window.Chattr && typeof window.Chattr.version === "string") return;

  const script = document.currentScript;
  const options = (script && script.dataset) || {};
  const chatOrigin = new URL(script ? script.src : location.href).origin;
  const mode = options.mode === "inline" ? "inline" : "widget";
  const accent = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(options.accent || "") ? options.accent : "#2563eb";

  const handlers = new Map();
  const emit = (name, detail) => {
    for (const fn of handlers.get(name) || []) {
      try {
        fn(detail);
      } catch (error) {
        console.error("Chattr: a handler of", name, "failed:", error);
      }
    }
  };

  // The chat's frame, with how it was mounted in its address.
  const src = new URL("/", chatOrigin);
  src.searchParams.set("embed", mode);
  src.searchParams.set("host", location.origin);
  if (options.channel) src.searchParams.set("channel", options.channel);
  if (options.theme) src.searchParams.set("theme", options.theme);
  const frame = document.createElement("iframe");
  frame.src = src.href;
  frame.title = "Chat";
  Object.assign(frame.style, { width: "100%", height: "100%", border: "0", display: "block" });

  // Requests wait until the frame says it listens.
  let ready = false;
  const queue = [];
  const post = (message) => {
    if (ready) frame.contentWindow.postMessage(message, chatOrigin);
    else queue.push(message);
  };

  // open() requests are paced. Opening a channel may make the chat join it, and the server
  // disconnects a client that sends commands faster than its flood control allows (by default
  // a burst of 10, then 2 a second): a page calling open() in a loop would get the person
  // thrown out. Channels go three at once, then one a second, which leaves the person room to
  // type; nicks (a private conversation opens without a word to the server) go as soon as
  // nothing waits before them. Meanwhile only the latest few wait (a target already waiting
  // moves to the end), so such a loop ends on its last target. A login or a logout drops what
  // waits: it was asked for the person before.
  const OPEN_BURST = 3;
  const OPEN_EVERY_MS = 1000;
  const OPENS_WAITING = 5;
  const opensWaiting = [];
  let openTokens = OPEN_BURST;
  let openCounted = performance.now();
  let openTimer = 0;
  const sendOpens = () => {
    clearTimeout(openTimer);
    openTimer = 0;
    // (performance.now() does not move back when the clock is set back.)
    const now = performance.now();
    openTokens = Math.min(OPEN_BURST, openTokens + Math.max(0, now - openCounted) / OPEN_EVERY_MS);
    openCounted = now;
    while (opensWaiting.length > 0) {
      if (opensWaiting[0].startsWith("#")) {
        if (openTokens < 1) break;
        openTokens -= 1;
      }
      post({ type: "chattr:open", target: opensWaiting.shift() });
    }
    if (opensWaiting.length > 0) {
      openTimer = setTimeout(sendOpens, Math.min(OPEN_EVERY_MS, (1 - openTokens) * OPEN_EVERY_MS));
    }
  };
  const requestOpen = (target) => {
    const folded = target.toLowerCase();
    const waiting = opensWaiting.findIndex((t) => t.toLowerCase() === folded);
    if (waiting >= 0) opensWaiting.splice(waiting, 1);
    opensWaiting.push(target);
    if (opensWaiting.length > OPENS_WAITING) opensWaiting.shift();
    if (!openTimer) sendOpens();
  };
  const dropOpens = () => {
    opensWaiting.length = 0;
    clearTimeout(openTimer);
    openTimer = 0;
  };

  // A widget stays open or closed as the person moves between the host's pages (this tab).
  const remembered = () => {
    try {
      return sessionStorage.getItem("chattr:open") === "1";
    } catch {
      return false; // storage blocked
    }
  };
  let open = mode === "inline" || remembered();
  let launcher = null;
  let badge = null;
  let panel = null;

  const setOpen = (value) => {
    open = Boolean(value);
    try {
      if (mode === "widget") sessionStorage.setItem("chattr:open", open ? "1" : "0");
    } catch {
      // storage blocked: the widget starts closed on the next page
    }
    if (panel) panel.style.display = open ? "block" : "none";
    if (launcher) launcher.setAttribute("aria-expanded", String(open));
    post({ type: "chattr:view", open });
    if (open) frame.focus();
  };

  const showUnread = ({ unread, mentions }) => {
    if (!launcher) return;
    const label = options.label || "Chat";
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.style.display = unread > 0 ? "block" : "none";
    badge.style.background = mentions > 0 ? "#d97706" : "#dc2626";
    launcher.setAttribute(
      "aria-label",
      unread > 0 ? `${label}, ${unread} unread${mentions > 0 ? `, ${mentions} mentioning you` : ""}` : label,
    );
  };

  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow || event.origin !== chatOrigin) return;
    const data = event.data;
    if (!data || typeof data.type !== "string") return;
    switch (data.type) {
      case "chattr:ready":
        // Also after the frame reloads: it hears the view again, and what waited.
        ready = true;
        frame.contentWindow.postMessage({ type: "chattr:view", open }, chatOrigin);
        for (const message of queue.splice(0)) frame.contentWindow.postMessage(message, chatOrigin);
        emit("ready", {});
        break;
      case "chattr:unread":
        showUnread(data);
        emit("unread", { unread: data.unread, mentions: data.mentions });
        break;
      case "chattr:connection":
        emit("connection", { state: data.state, nick: data.nick });
        break;
      case "chattr:message":
        emit("message", { conversation: data.conversation, from: data.from, text: data.text, mention: data.mention });
        break;
    }
  });

  const mount = () => {
    if (mode === "inline") {
      const target = options.target && document.querySelector(options.target);
      if (!target) {
        console.error("Chattr: data-mode=inline needs data-target, a selector of the element to fill");
        return;
      }
      target.appendChild(frame);
      return;
    }
    panel = document.createElement("div");
    panel.setAttribute("data-chattr", "panel");
    Object.assign(panel.style, {
      position: "fixed", right: "16px", bottom: "88px", width: "360px", height: "560px",
      maxWidth: "calc(100vw - 32px)", maxHeight: "calc(100vh - 104px)", display: open ? "block" : "none",
      borderRadius: "12px", overflow: "hidden", boxShadow: "0 8px 32px rgba(0, 0, 0, 0.3)",
      background: "#fff", zIndex: "2147483646",
    });
    panel.appendChild(frame);
    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.setAttribute("data-chattr", "launcher");
    launcher.setAttribute("aria-expanded", String(open));
    launcher.textContent = options.label || "Chat";
    Object.assign(launcher.style, {
      position: "fixed", right: "16px", bottom: "16px", minWidth: "56px", height: "56px", padding: "0 18px",
      borderRadius: "28px", border: "0", background: accent, color: "#fff", font: "600 15px system-ui, sans-serif",
      cursor: "pointer", boxShadow: "0 4px 16px rgba(0, 0, 0, 0.25)", zIndex: "2147483647",
    });
    badge = document.createElement("span");
    badge.setAttribute("data-chattr", "badge");
    badge.setAttribute("aria-hidden", "true");
    Object.assign(badge.style, {
      position: "absolute", top: "-4px", right: "-4px", minWidth: "20px", height: "20px", padding: "0 6px",
      borderRadius: "10px", color: "#fff", font: "600 12px/20px system-ui, sans-serif", display: "none",
    });
    launcher.appendChild(badge);
    launcher.addEventListener("click", () => setOpen(!open));
    document.body.append(panel, launcher);
    showUnread({ unread: 0, mentions: 0 });
  };

  window.Chattr = {
    version: "1",
    frame,
    /** Logs the person in with a token from POST /api/token, or a JWT the app signed. */
    login(token) {
      dropOpens();
      post({ type: "chattr:login", token: String(token) });
    },
    /** Shows a channel (joining it) or a private conversation with a nick, opening the widget.
     * Paced (above): channels after the first three one a second, the latest five waiting. A
     * target that is not a non-empty string is ignored. */
    open(target) {
      if (typeof target !== "string" || target === "") return;
      requestOpen(target);
      if (mode === "widget") setOpen(true);
    },
    logout() {
      dropOpens();
      post({ type: "chattr:logout" });
    },
    show() {
      setOpen(true);
    },
    hide() {
      if (mode === "widget") setOpen(false);
    },
    toggle() {
      if (mode === "widget") setOpen(!open);
    },
    setTheme(theme) {
      post({ type: "chattr:theme", theme: String(theme) });
    },
    on(name, fn) {
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
    },
    off(name, fn) {
      handlers.get(name)?.delete(fn);
    },
  };

  // Once the page is parsed: an inline target may come after this script.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
