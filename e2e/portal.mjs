// The portal in a real browser (scripts/browser-test starts the service and sets the env).
// Debian's Chromium, headless, driven by playwright-core: sign in, the fleet page, a target
// page, a wake of a sleeping demo component seen warm on its timeline, a read-only token
// without write buttons, keyboard focus, the phone layout and the API docs. Every request the
// browser makes must stay on the service's origin, and no CSP violation may be reported.
// Screenshots are saved under $ZS_OUT for inspection.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.ZS_URL;
const sandbox = process.env.ZS_SANDBOX;
const out = process.env.ZS_OUT || "target/e2e";
mkdirSync(out, { recursive: true });
const origin = new URL(base).origin;

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

/** A context that records every request's origin and every console error. */
async function watched(viewport) {
  const context = await browser.newContext({ viewport, timezoneId: "Europe/Berlin", locale: "en-GB" });
  const page = await context.newPage();
  const stray = [];
  const consoleErrors = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin !== origin) stray.push(r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() === 404) consoleErrors.push(`404 ${r.url()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  return { context, page, stray, consoleErrors };
}

async function signIn(page, token) {
  await page.goto(`${base}/ui`);
  check(page.url().startsWith(`${base}/ui/login`), "an anonymous visit to /ui lands on the sign-in page");
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/ui`);
}

async function sandboxSettings(patch) {
  const current = await (await fetch(`${sandbox}/_sandbox/settings`)).json();
  const r = await fetch(`${sandbox}/_sandbox/settings`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...current, ...patch }),
  });
  if (!r.ok) throw new Error(`sandbox settings: ${r.status}`);
}

try {
  const w = await watched({ width: 1280, height: 900 });
  const { page } = w;
  await signIn(page, process.env.ZS_TOKEN);

  // The demo fleet is built in the background at start-up: wait until it shows every state.
  const states = ["asleep", "waking", "warm", "paused", "failed to wake"];
  let seen = [];
  for (let i = 0; i < 90; i++) {
    await page.goto(`${base}/ui`);
    const badges = await page.locator("table.fleet .badge").allInnerTexts();
    seen = states.filter((s) => badges.includes(s));
    if (seen.length === states.length) break;
    await page.waitForTimeout(1000);
  }
  check(seen.length === states.length, `the demo fleet shows every state (saw: ${seen.join(", ")})`);
  check(await page.locator("section.summary").isVisible(), "the fleet summary is shown");
  check((await page.locator("table.fleet svg.spark").count()) >= 6, "each row has a sparkline");
  await page.screenshot({ path: `${out}/fleet.png`, fullPage: true });

  // Keyboard: the first Tab reaches the skip link, and focus is visible.
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  check(focused === "Skip to content", `the first Tab focuses the skip link (got ${focused})`);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== "none", "the focused control shows an outline");

  // Local time on hover (app.js).
  const title = await page.locator("time[datetime]").first().getAttribute("title");
  check(!!title && title.includes("your time"), `times carry the local time on hover (${title})`);

  // Filters: by state.
  await page.getByLabel("State").selectOption("asleep");
  await page.getByRole("button", { name: "Filter" }).click();
  const filtered = await page.locator("table.fleet tbody tr .badge").allInnerTexts();
  check(filtered.length > 0 && filtered.every((b) => b === "asleep"), `the state filter keeps asleep rows only (${filtered})`);

  // A sleeping demo component: wake it and watch it become warm on its timeline.
  await sandboxSettings({ provisioning_delay_seconds: 5 });
  await page.goto(`${base}/ui/components/chat-large`);
  check((await page.locator(".status-line .badge").innerText()) === "asleep", "chat-large is asleep");
  check(await page.locator("svg.chart").isVisible(), "the target page draws the capacity chart");
  await page.screenshot({ path: `${out}/target-before.png`, fullPage: true });
  await page.getByLabel("Keep warm for").fill("30m");
  await page.getByRole("button", { name: "Wake now" }).click();
  await page.waitForURL(/\/ui\/components\/chat-large\?done=wake/);
  check((await page.locator(".notice").innerText()).startsWith("Wake queued"), "the wake is queued");
  let warm = false;
  for (let i = 0; i < 120 && !warm; i++) {
    await page.waitForTimeout(1000);
    await page.goto(`${base}/ui/components/chat-large`);
    const badge = await page.locator(".status-line .badge").innerText();
    const events = await page.locator("#ev-h + .table-wrap").innerText().catch(() => "");
    warm = badge === "warm" && events.includes("capacity in service");
  }
  check(warm, "after the wake, chat-large is warm and its timeline has capacity in service");
  check((await page.locator("svg.chart .mark.in-service").count()) > 0, "the chart marks the capacity in service");
  const trail = await page.locator("#audit-h + .table-wrap").innerText();
  check(trail.includes("e2e-writer") && trail.includes("wake"), "the audit trail names the token that woke it");
  await page.screenshot({ path: `${out}/target.png`, fullPage: true });

  // The edit form's dry run lists the AWS calls before anything changes.
  await page.locator("#spec").fill(JSON.stringify({ max_capacity: 3, labels: { team: "chat", env: "demo" } }));
  await page.getByRole("button", { name: "Dry run" }).click();
  const dry = await page.locator(".dry-run").innerText();
  check(dry.includes("RegisterScalableTarget") || dry.includes("PutScalingPolicy") || dry.includes("No AWS call"), "the dry run shows the AWS calls");
  check(await page.getByRole("button", { name: /Confirm: apply as version/ }).isVisible(), "a confirm button follows the dry run");
  await page.screenshot({ path: `${out}/dry-run.png`, fullPage: true });

  // Phone width: the fleet page still reads (the table scrolls inside its box).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/ui`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no sideways scrolling of the page on a phone (overflow ${overflow}px)`);
  await page.screenshot({ path: `${out}/fleet-phone.png`, fullPage: true });

  // API docs: Swagger UI served by zeroscale, with an Authorize button for the bearer token.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${base}/docs/`);
  await page.locator(".swagger-ui .information-container").waitFor({ timeout: 20000 });
  check(await page.getByRole("button", { name: /Authorize/ }).first().isVisible(), "Swagger UI offers Authorize");
  // Try an operation from the page with the bearer token.
  await page.locator("button.authorize").first().click();
  await page.locator(".auth-container input").first().fill(process.env.ZS_TOKEN);
  await page.locator(".auth-btn-wrapper button.authorize").click();
  await page.locator(".auth-btn-wrapper button.btn-done").click();
  const op = page.locator("#operations-components-list_components");
  await op.locator(".opblock-summary").click();
  // `tryItOutEnabled` is on: Execute is there without pressing "Try it out".
  await op.getByRole("button", { name: "Execute" }).click();
  const status = await op.locator(".live-responses-table tr.response .response-col_status").first().innerText({ timeout: 15000 });
  check(status.trim().startsWith("200"), `Try it out with the token: GET /components answers 200 (${status.trim()})`);
  await page.screenshot({ path: `${out}/docs.png` });

  check(w.stray.length === 0, `no request left the origin (${w.stray.join(", ")})`);
  check(w.consoleErrors.length === 0, `no console errors or CSP violations (${w.consoleErrors.join(" | ")})`);

  // A read-only token: no write buttons.
  const r = await watched({ width: 1280, height: 900 });
  await signIn(r.page, process.env.ZS_READ_TOKEN);
  await r.page.goto(`${base}/ui/components/chat-large`);
  check((await r.page.locator("main form[method=post]").count()) === 0, "a read-only session sees no write forms");
  check((await r.page.getByRole("button", { name: "Wake now" }).count()) === 0, "a read-only session has no wake button");
  check(r.stray.length === 0, "the read-only session stayed on the origin");
} catch (e) {
  check(false, `the browser check ran to the end: ${e.stack || e}`);
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    await p.screenshot({ path: `${out}/failure-${Date.now()}.png`, fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}

if (failures.length) {
  console.error(`${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log(`browser checks passed; screenshots in ${out}/`);
