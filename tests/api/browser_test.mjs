// Headless Chromium (Debian's) driven by playwright-core from web/node_modules: opens the dashboard, sees a live
// value change, opens a device's history (aggregate endpoint) and saves a screenshot. With TOKEN, the API needs one:
// the dashboard must ask for it, refuse a wrong one and ask again, then work with the right one (its live stream
// too, which carries the token as access_token). An https BASE is the API's self-signed certificate: accepted.
//   node tests/api/browser_test.mjs http(s)://127.0.0.1:PORT DEVICE SCREENSHOT.png USER_DATA_DIR [TOKEN]
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "package.json"));
const { chromium } = require("playwright-core");
const [base, device, shot, userDir, token] = process.argv.slice(2);

const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  ignoreHTTPSErrors: base.startsWith("https:"),
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/", { waitUntil: "load" });
  if (token) {
    await page.waitForSelector("#login:not([hidden])", { timeout: 15000 });
    await page.fill("#token", "not-" + token);
    await page.click("#token-use");
    await page.waitForFunction(() => !document.querySelector("#login").hidden &&
                               /refused/.test(document.querySelector("#login-msg").textContent), null, { timeout: 15000 });
    await page.fill("#token", token);
    await page.click("#token-use");
  }
  await page.waitForSelector(`tr[data-device="${device}"]`, { timeout: 15000 });
  await page.click(`tr[data-device="${device}"]`);
  await page.waitForSelector("#live-values[data-ts]", { timeout: 15000 });
  const first = await page.getAttribute("#live-values", "data-ts");
  // the test inserts newer readings meanwhile: the live value must change
  await page.waitForFunction((t) => document.querySelector("#live-values").getAttribute("data-ts") !== t, first,
                             { timeout: 20000 });
  await page.selectOption("#h-interval", "1m");
  await page.selectOption("#h-agg", "max");
  await page.click("#h-load");
  await page.waitForFunction(() => Number(document.querySelector("#history-chart").getAttribute("data-buckets")) > 0,
                             null, { timeout: 15000 });
  await page.waitForSelector("#history-chart canvas", { timeout: 5000 });
  await page.screenshot({ path: shot, fullPage: true });
  // over TLS the browser negotiates HTTP/2 by ALPN; in clear text it speaks HTTP/1.1
  const proto = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  if (proto !== (base.startsWith("https:") ? "h2" : "http/1.1")) throw new Error("page loaded over " + proto);
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  console.log("browser ok", first, "->", await page.getAttribute("#live-values", "data-ts"));
} finally {
  await ctx.close();
}
