// What the browser tests share: Debian's Chromium through playwright-core, fresh pages with the
// stand-in wallet, screenshots at two widths, and checks of what a person sees.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { devPair, installStandIn } from "./wallet-stand-in.mjs";

export { devPair };

const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
export const WIDTHS = { desktop: { width: 1280, height: 860 }, phone: { width: 390, height: 844 } };

/** Starts Chromium; `open` gives fresh pages of Studio at STUDIO_URL. */
export async function browserSession() {
  const base = process.env.STUDIO_URL;
  assert.ok(base && process.env.PROVENANT_URL, "run through the Rust harness, which sets STUDIO_URL and PROVENANT_URL");
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // The flags keep Chromium off the network this machine does not have.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });

  /**
   * A fresh page (no stored state) at `width`, with the stand-in wallet holding `accounts`.
   * `path` is Studio's page, or a whole URL for Studio served elsewhere.
   */
  async function open(path, { width = "desktop", accounts = [] } = {}) {
    const context = await browser.newContext({ viewport: WIDTHS[width] });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e));
    // `see` reports them when what it waits for never comes.
    page.pageErrors = errors;
    const signed = await installStandIn(page, accounts);
    await page.goto(new URL(path, base).href);
    return { page, signed, errors };
  }

  /** Screenshots of the whole page at each width, into tests/screenshots/. */
  async function shoot(page, name) {
    for (const [width, viewport] of Object.entries(WIDTHS)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: `${SHOTS}${name}-${width}.png`, fullPage: true });
    }
    await page.setViewportSize(WIDTHS.desktop);
  }

  /** Every control a keyboard reaches has a name a screen reader can read. */
  async function assertLabelled(page) {
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button, a[href]")]
        .filter((el) => {
          const named =
            el.getAttribute("aria-label") ||
            (el.labels && el.labels.length > 0) ||
            el.closest("label") ||
            el.textContent.trim();
          return !named;
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unnamed, [], "controls without a label");
  }

  /** Waits for `text` on the page; on a timeout, says what the page's alerts and statuses said. */
  async function see(page, text, timeout = 30_000) {
    try {
      await page.getByText(text).first().waitFor({ timeout });
    } catch (error) {
      const said = await page.locator("[role=alert], [role=status]").allTextContents();
      const crashed = (page.pageErrors ?? []).map(String);
      throw new Error(`${text} never appeared; the page said: ${JSON.stringify(said)}; errors: ${JSON.stringify(crashed)}`, {
        cause: error,
      });
    }
  }

  return { open, shoot, assertLabelled, see, close: () => browser.close() };
}
