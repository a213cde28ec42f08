// A headless Chromium that the Python UI tests drive line by line: each stdin line is a JSON
// command, each stdout line the JSON answer ({"ok": true, "value": ...} or {"ok": false,
// "error": "..."}). This lets a pytest test interleave real MCP traffic with what the page shows.
//
// Commands: goto {url}, wait {selector, text?, state?, timeout?}, click {selector},
// fill {selector, value}, press {selector, key}, text {selector}, texts {selector},
// count {selector}, eval {expression}, screenshot {path, full_page?}, color_scheme {scheme},
// console {} (messages and page errors seen so far), route {answers: [{path, status, body}]}
// (answers same-origin requests to exactly these paths, query ignored, with JSON: the UI
// fixture tests), axe {} (axe-core's WCAG 2 A/AA rules on the page as it is now: the
// violations, each with its impact and the elements), close {}. Dialogs (window.confirm) are accepted.
"use strict";

const path = require("path");
const readline = require("readline");

const peers = process.env.MSM_PEERS_NODE_MODULES || path.resolve(__dirname, "..", "..", "peers", "node_modules");
const { chromium } = require(path.join(peers, "playwright-core"));

const LAUNCH_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.MSM_CHROMIUM || "/usr/bin/chromium",
    args: LAUNCH_ARGS,
    headless: true,
  });
  const context = await browser.newContext({
    viewport: { width: Number(process.env.MSM_VIEWPORT_WIDTH || 1280), height: Number(process.env.MSM_VIEWPORT_HEIGHT || 900) },
    colorScheme: process.env.MSM_COLOR_SCHEME || "light",
  });
  const page = await context.newPage();
  const consoleMessages = [];
  page.on("console", (msg) => consoleMessages.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => consoleMessages.push(`pageerror: ${err.message}`));
  page.on("dialog", (dialog) => dialog.accept().catch(() => {}));

  const commands = {
    async goto({ url }) {
      const response = await page.goto(url, { waitUntil: "domcontentloaded" });
      return response ? response.status() : null;
    },
    async wait({ selector, text, state, timeout }) {
      const locator = text === undefined ? page.locator(selector).first() : page.locator(selector, { hasText: text }).first();
      await locator.waitFor({ state: state || "visible", timeout: timeout || 15000 });
      return true;
    },
    async click({ selector }) {
      await page.locator(selector).first().click({ timeout: 10000 });
      return true;
    },
    async fill({ selector, value }) {
      await page.locator(selector).first().fill(value, { timeout: 10000 });
      return true;
    },
    async select({ selector, value }) {
      await page.locator(selector).first().selectOption(value, { timeout: 10000 });
      return true;
    },
    async press({ selector, key }) {
      await page.locator(selector).first().press(key, { timeout: 10000 });
      return true;
    },
    async text({ selector }) {
      return (await page.locator(selector).first().textContent({ timeout: 10000 })).trim();
    },
    async texts({ selector }) {
      return (await page.locator(selector).allTextContents()).map((t) => t.trim());
    },
    async count({ selector }) {
      return await page.locator(selector).count();
    },
    async eval({ expression }) {
      return await page.evaluate(expression);
    },
    async screenshot({ path: file, full_page }) {
      await page.screenshot({ path: file, fullPage: full_page !== false });
      return file;
    },
    async color_scheme({ scheme }) {
      await page.emulateMedia({ colorScheme: scheme });
      return scheme;
    },
    async route({ answers }) {
      const byPath = new Map(answers.map((a) => [a.path, a]));
      await page.route((url) => byPath.has(url.pathname), (route) => {
        const answer = byPath.get(new URL(route.request().url()).pathname);
        return route.fulfill({ status: answer.status, contentType: "application/json", body: JSON.stringify(answer.body) });
      });
      return answers.length;
    },
    async axe() {
      if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) {
        // Evaluated over the DevTools protocol: the page's CSP (rightly) refuses a script tag.
        const source = require("fs").readFileSync(path.join(peers, "axe-core", "axe.min.js"), "utf8");
        await page.evaluate(`${source}\n;true`);
      }
      const result = await page.evaluate(() => window.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      }));
      return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
      }));
    },
    async console() {
      return consoleMessages.slice();
    },
    async close() {
      await browser.close();
      return true;
    },
  };

  const lines = readline.createInterface({ input: process.stdin });
  const reply = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  reply({ ok: true, value: "ready" });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      reply({ ok: false, error: `bad command line: ${err.message}` });
      continue;
    }
    const handler = commands[command.cmd];
    if (!handler) {
      reply({ ok: false, error: `unknown command ${command.cmd}` });
      continue;
    }
    try {
      reply({ ok: true, value: await handler(command) });
    } catch (err) {
      reply({ ok: false, error: String(err && err.message ? err.message : err) });
    }
    if (command.cmd === "close") break;
  }
  await browser.close().catch(() => {});
  process.exit(0);
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `browser failed to start: ${err.message}` })}\n`);
  process.exit(1);
});
