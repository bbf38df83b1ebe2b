// Drives Debian's chromium (headless, through playwright-core) over qcal-server's dashboard, for
// tests/e2e/test_dashboard_browser.py. Reads one JSON argument:
//   {url, token, model, histogram, weight, channels, amax: {method: value}, screenshot,
//    weight_screenshot (optional)}
// opens URL/ (which must redirect to /dashboard), chooses the histogram quantizer, waits for the
// histogram and the four amax lines, then the weight quantizer's per-channel bars. Prints what it
// read as JSON; the Python side asserts on it. Exits 1, with the reason, when the page never
// shows what it waits for.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

// As the machines' notes say: without the background-networking flags chromium keeps dialling
// out, and this machine refuses every connection.
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const WAIT_MS = 15000;

async function main() {
  const args = JSON.parse(process.argv[2]);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "qcal-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 640 },
    extraHTTPHeaders: args.token ? { Authorization: `Bearer ${args.token}` } : {},
  });
  const errors = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.setDefaultTimeout(WAIT_MS);
    const response = await page.goto(args.url + "/");
    const out = { landed: new URL(page.url()).pathname, status: response.status() };

    const row = (q) => `tr.quantizer[data-model="${args.model}"][data-quantizer="${q}"]`;
    await page.click(row(args.histogram));
    // Chosen: the table, the histogram's bars and one label per method.
    await page.waitForSelector("#amax-table tr[data-method=percentile] td.amax");
    await page.waitForFunction(() => document.querySelectorAll(".method-label").length === 4);
    out.models = await page.$$eval(".model-name", (n) => n.map((e) => e.firstChild.textContent));
    out.quantizers = await page.$$eval("tr.quantizer", (n) => n.map((e) => e.dataset.quantizer));
    out.batches = await page.$eval(`${row(args.histogram)} td.batches`, (e) => e.textContent);
    out.title = await page.textContent("#detail-title");
    out.bars = await page.$eval(".chart path.bars", 
      (e) => e.getAttribute("d").split("M").length - 1);
    out.table = await page.$$eval("#amax-table tr[data-method]", (rows) =>
      Object.fromEntries(rows.map((r) => [r.dataset.method, {
        amax: r.querySelector("td.amax").textContent,
        clipped: r.querySelector("td.clipped").textContent,
      }])));
    out.labels = await page.$$eval(".method-label", (n) => n.map((e) => e.textContent));
    // The values as the page formats them (4 significant digits), for the expected amax.
    out.expected = await page.evaluate((amax) =>
      Object.fromEntries(Object.entries(amax).map(([m, v]) => [m, formatAmax(v)])), args.amax);
    // The rate needs two polls with batches between them (the test records meanwhile).
    await page.waitForFunction(() => {
      const text = document.getElementById("ingest-batches").textContent;
      return text.endsWith("batches/s") && parseFloat(text) > 0;
    });
    out.ingest = await page.textContent("#ingest");
    await page.screenshot({ path: args.screenshot });

    await page.click(row(args.weight));
    await page.waitForFunction((n) => document.querySelectorAll("rect.channel").length === n,
                               args.channels);
    out.channels = await page.$$eval("rect.channel", (n) => n.length);
    out.weight_title = await page.textContent("#detail-title");
    if (args.weight_screenshot) await page.screenshot({ path: args.weight_screenshot });

    await page.click(row(args.big_weight));
    await page.waitForFunction((n) => document.querySelectorAll("rect.channel").length === n,
                               args.big_bars);
    out.big_bars = await page.$$eval("rect.channel", (n) => n.length);
    out.big_meta = await page.textContent("#amax");
    out.big_status = await page.textContent("#status");
    out.errors = errors;
    console.log(JSON.stringify(out));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`dashboard_browser.js: ${error.stack || error}`);
  process.exit(1);
});
