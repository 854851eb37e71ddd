// Drives the dashboard in headless Chromium (Debian's, via playwright-core) and prints what
// it saw as one JSON line. Usage: node dashboard.mjs <dashboard-url> <screenshot.png>
// Exits non-zero when the page cannot be driven; the Rust test judges the findings.
// playwright-core is installed by scripts/test-tools.sh under .penstock/tools/node.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const tools = process.env.PENSTOCK_NODE_TOOLS ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "../../.penstock/tools/node");
const { chromium } = createRequire(path.join(tools, "package.json"))("playwright-core");

const [url, screenshot] = process.argv.slice(2);
const origin = new URL(url).origin;
const findings = { console_errors: [], page_errors: [], failed_requests: [], foreign_requests: [] };

const browser = await chromium.launch({
  executablePath: process.env.PENSTOCK_CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  page.on("console", (message) => {
    if (message.type() === "error") findings.console_errors.push(message.text());
  });
  page.on("pageerror", (error) => findings.page_errors.push(String(error)));
  page.on("requestfailed", (request) => findings.failed_requests.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on("request", (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith("data:")) findings.foreign_requests.push(request.url());
  });
  page.setDefaultTimeout(20000);

  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("#chart svg rect.bar");
  await page.waitForFunction(() => document.querySelector('[data-stat="plants"]').textContent !== "–");
  await page.waitForSelector("#top tbody tr");
  findings.title = await page.title();
  findings.bars = await page.$$eval("#chart rect.bar", (bars) => bars.map((b) => [b.dataset.label, Number(b.getAttribute("height"))]));
  findings.stat_plants = await page.textContent('[data-stat="plants"]');
  findings.top_rows = await page.$$eval("#top tbody tr", (rows) => rows.map((r) => r.children[1].textContent));

  // Top plants for one state.
  await page.selectOption("#top-state", "TX");
  await page.waitForFunction(() => [...document.querySelectorAll("#top tbody tr")].every((r) => r.children[2].textContent === "TX"));
  findings.top_tx = await page.$$eval("#top tbody tr", (rows) => rows.map((r) => r.children[1].textContent));

  // A search returns rows; a plant opens with its generators.
  await page.fill("#search-q", "solar");
  await page.click("#search-form button[type=submit]");
  await page.waitForSelector("#search-results tbody tr");
  findings.search_rows = await page.$$eval("#search-results tbody tr", (rows) => rows.map((r) => r.children[0].textContent));
  findings.search_summary = await page.textContent("#search-summary");
  await page.click("#search-results tbody tr:first-child button");
  await page.waitForSelector("#plant-generators tbody tr");
  findings.plant_title = await page.textContent("#plant-title");
  findings.plant_generators = await page.$$eval("#plant-generators tbody tr", (rows) => rows.length);

  // The files list, and a file's quarantined rows.
  await page.waitForSelector("#files tbody tr");
  findings.files = await page.$$eval("#files tbody tr", (rows) => rows.map((r) => [r.children[1].textContent, r.children[2].textContent]));
  // By selector, not by element handle: the list re-renders when new data arrives.
  if (await page.$("#files tbody button.link")) {
    await page.click("#files tbody button.link");
    await page.waitForSelector("#quarantine-rows tbody tr");
    findings.quarantine_rows = await page.$$eval("#quarantine-rows tbody tr", (rows) => rows.map((r) => [Number(r.children[0].textContent), r.children[2].textContent]));
  }
  findings.alerts = await page.$$eval("#alerts li", (items) => items.map((i) => i.firstChild.textContent));

  await page.screenshot({ path: screenshot, fullPage: true });

  // The interactive API docs render offline: every asset from this server, nothing else.
  await page.goto(`${origin}/docs/`, { waitUntil: "load" });
  await page.waitForSelector(".swagger-ui .opblock");
  findings.docs_operations = await page.$$eval(".swagger-ui .opblock", (ops) => ops.length);
  findings.docs_title = await page.textContent(".swagger-ui .info .title");
} finally {
  await browser.close();
}
console.log(JSON.stringify(findings));
