// picshelf's upload page in a real browser: Debian's headless Chromium driven
// by playwright-core (which never downloads a browser of its own).
//
//   PICSHELF_BASE_URL=http://127.0.0.1:8000 node --test upload.test.mjs
//
// The base URL is where the app is mounted: http://host:port for the app
// itself, or http://host:port/dev behind nginx. With PICSHELF_PREFIX_PROXY_CHECK=1
// (the app itself), one more test puts it behind a tiny proxy under /dev. Screenshots go to
// artifacts/screenshots/ (or PICSHELF_SCREENSHOT_DIR). Behind nginx, PICSHELF_CACHE_VALID_SECS
// is its download cache's validity (a deleted image may be served that long).
// scripts/browser-test starts an app and runs this file.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.PICSHELF_BASE_URL || "").replace(/\/+$/, "");
const PAGE_URL = `${BASE}/main/`;
const SCREENSHOTS = process.env.PICSHELF_SCREENSHOT_DIR || path.join(HERE, "..", "artifacts", "screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP = { timeout: 60_000 };
const WAIT = 20_000;
const GREETING = "welcome to CI/CD world 🌏";
const NOT_AN_IMAGE = /This is not an image picshelf accepts \(PNG, JPEG, GIF, WebP, AVIF, BMP, TIFF\)/;

if (!/^https?:\/\/[^/]+(\/.*)?$/.test(BASE)) {
  console.error("Set PICSHELF_BASE_URL to where picshelf runs: http://127.0.0.1:8000, http://127.0.0.1:18080/dev...");
  process.exit(2);
}

// ---- test files, made here -------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * An EXIF block (big-endian TIFF) as a phone writes one, cut down: IFD0 points
 * to a GPS IFD holding a latitude reference, which is enough to be a location.
 */
function gpsExif() {
  const tiff = Buffer.alloc(8 + 18 + 18);
  tiff.write("MM\0*", 0, "latin1");
  tiff.writeUInt32BE(8, 4); // IFD0
  tiff.writeUInt16BE(1, 8);
  tiff.set([0x88, 0x25, 0, 4, 0, 0, 0, 1], 10); // GPSInfo, LONG, 1
  tiff.writeUInt32BE(26, 18); // -> the GPS IFD
  tiff.writeUInt16BE(1, 26);
  tiff.set([0, 1, 0, 2, 0, 0, 0, 2, 0x4e, 0, 0, 0], 28); // GPSLatitudeRef = "N"
  return tiff;
}

/** A valid RGB PNG whose pixels come from `paint(x, y) -> [r, g, b]`, with `extra` chunks before its data. */
function png(width, height, paint, extra = []) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x += 1) raw.set(paint(x, y), row + 1 + x * 3);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    ...extra,
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/** A sunset: a sky gradient, a sun, a dark sea. */
function sunset(x, y, w = 480, h = 320) {
  const horizon = h * 0.68;
  if (y > horizon) return mix([30, 41, 89], [12, 18, 40], (y - horizon) / (h - horizon));
  const d = Math.hypot(x - w * 0.62, y - horizon * 0.82);
  if (d < 46) return [255, 214, 102];
  return mix([251, 146, 60], [88, 28, 135], 1 - y / horizon);
}

/** Hills under a blue sky. */
function hills(x, y, w = 320, h = 400) {
  const ridge = h * 0.55 + Math.sin(x / 38) * 26;
  const back = h * 0.45 + Math.cos(x / 55) * 20;
  if (y > ridge) return mix([34, 139, 84], [20, 83, 45], (y - ridge) / (h - ridge));
  if (y > back) return [110, 170, 120];
  return mix([125, 211, 252], [59, 130, 246], 1 - y / back);
}

// ---- a tiny reverse proxy that mounts the app under /dev, as nginx does -----------

function startPrefixProxy(target, prefix) {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(`${prefix}/`)) {
      res.writeHead(404).end("outside the prefix");
      return;
    }
    const headers = { ...req.headers, "x-forwarded-prefix": prefix };
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url.slice(prefix.length), headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.writeHead(502).end());
    req.pipe(forward);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// ---- the browser --------------------------------------------------------------------

let browser;
let context;
let page;
let files;
const problems = []; // console errors, page errors and CSP violations
const expectedFailures = []; // URLs the test makes fail on purpose
const uploaded = {}; // file name -> id

/** Records what goes wrong on a page: console errors, script errors, CSP
 * violations (logged as console errors), and any request outside `root`. */
function watch(target, root = PAGE_URL) {
  target.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(root) && !/^(data|blob):/.test(url)) problems.push(`request outside ${root}: ${url}`);
  });
  target.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // The one request the test means to fail on the server: a text file named .png.
    if (/status of 415/.test(text)) return;
    const url = message.location().url || "";
    if (expectedFailures.some((expected) => url.startsWith(expected))) return;
    problems.push(`console: ${text} (${message.location().url})`);
  });
  target.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return target;
}

async function shot(target, name, options = {}) {
  await target.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true, ...options });
}

async function newContext(options = {}) {
  const created = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  created.setDefaultTimeout(WAIT);
  return created;
}

/** Waits until the result for `name` reaches `state` (done, failed) and returns its locator. */
async function resultOf(target, name, state) {
  const item = target.locator(`#results .result.${state}`, { has: target.locator(".file-name", { hasText: name }) });
  await item.first().waitFor({ state: "visible" });
  return item.first();
}

async function thumbnailLoaded(img) {
  await img.evaluate(
    (node) =>
      new Promise((resolve, reject) => {
        const check = () => (node.naturalWidth > 0 ? resolve() : reject(new Error(`thumbnail ${node.src} is broken`)));
        if (node.complete) check();
        else {
          node.addEventListener("load", check, { once: true });
          node.addEventListener("error", check, { once: true });
        }
      }),
  );
}

async function statusOf(id) {
  return (await context.request.get(`${PAGE_URL}download/${id}`, { failOnStatusCode: false })).status();
}

/**
 * Waits until image `id` and its thumbnails answer 404. A proxy's download cache
 * (nginx: PICSHELF_CACHE_VALID_SECS) may serve them that much longer after a
 * delete: this fails when they outlive it.
 */
async function goneWithinCacheValidity(id) {
  const deadline = Date.now() + Number(process.env.PICSHELF_CACHE_VALID_SECS || 0) * 1000 + 2000;
  for (const query of ["", "?width=160", "?width=320", "?width=640", "?width=1280"]) {
    const url = `${PAGE_URL}download/${id}${query}`;
    let status;
    while ((status = (await context.request.get(url, { failOnStatusCode: false })).status()) !== 404) {
      assert.ok(Date.now() < deadline, `${url} still answers ${status} after the cache validity`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), "picshelf-browser-"));
  files = {
    dir,
    sunset: path.join(dir, "sunset.png"),
    hills: path.join(dir, "hills.png"),
    notes: path.join(dir, "notes.txt"),
    fake: path.join(dir, "not-really.png"),
  };
  // The sunset was taken with a phone that knew where it was.
  writeFileSync(files.sunset, png(480, 320, (x, y) => sunset(x, y), [chunk("eXIf", gpsExif())]));
  writeFileSync(files.hills, png(320, 400, (x, y) => hills(x, y)));
  writeFileSync(files.notes, "shopping list: milk, eggs\n");
  writeFileSync(files.fake, "this is text that pretends to be a PNG\n");

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
    timeout: 30_000,
  });
  context = await newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(BASE).origin });
  page = watch(await context.newPage());
});

after(async () => {
  await browser?.close();
  if (files) rmSync(files.dir, { recursive: true, force: true });
});

describe(`the upload page at ${PAGE_URL}`, () => {
  it("greets, offers the upload form and an empty gallery", STEP, async () => {
    const response = await page.goto(PAGE_URL);
    assert.equal(response.status(), 200);
    assert.equal((await page.locator("h1").textContent()).trim(), GREETING);
    await page.locator("#gallery-section").waitFor({ state: "visible" });
    assert.equal(await page.locator("#gallery-empty").isVisible(), true);
    // With JavaScript, picking files uploads them: the submit button is for the plain form.
    assert.equal(await page.locator("#upload-button").isVisible(), false);
    assert.equal(await page.locator("label[for=file-input]").textContent().then((t) => /Choose images/.test(t)), true);
    await shot(page, "before-upload.png");
  });

  it("is usable with the keyboard, with a visible focus ring", STEP, async () => {
    let focused = "";
    for (let i = 0; i < 6 && focused !== "file-input"; i += 1) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(() => document.activeElement?.id || "");
    }
    assert.equal(focused, "file-input", "the file input is reached with Tab");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, "none", "the focused control shows an outline");
  });

  it("uploads two images through the file input, with progress, thumbnails and links", STEP, async () => {
    await page.setInputFiles("#file-input", [files.sunset, files.hills]);
    for (const [name, width, height] of [
      ["sunset.png", 480, 320],
      ["hills.png", 320, 400],
    ]) {
      const result = await resultOf(page, name, "done");
      const id = await result.getAttribute("data-id");
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      uploaded[name] = id;

      const progress = await result.locator("progress").evaluate((node) => [node.value, node.max]);
      assert.deepEqual(progress, [100, 100], `${name}: the progress bar reached its end`);
      assert.equal((await result.locator(".status").textContent()).trim(), "Uploaded");

      const img = result.locator("img.thumb");
      await thumbnailLoaded(img);
      // A small variant (the browser picks from srcset), never the original.
      const shown = await img.evaluate((node) => ({ src: node.currentSrc, natural: node.naturalWidth }));
      assert.match(shown.src, new RegExp(`^${PAGE_URL}download/${id}\\?width=(160|320|640|1280)$`));
      assert.ok(shown.natural > 0 && shown.natural <= width, `${name}: a ${shown.natural}-pixel variant`);
      assert.equal(await img.getAttribute("alt"), name);

      assert.equal(await result.locator("input.link").inputValue(), `${PAGE_URL}download/${id}`);
      assert.match(await result.locator(".meta").textContent(), new RegExp(`PNG · ${width} × ${height} · \\d`));
      assert.equal(await result.getByRole("button", { name: `Delete ${name}` }).count(), 1);
      assert.equal(await statusOf(id), 200);
      const privacy = name === "sunset.png" ? "Location removed" : null;
      const note = await result.locator(".privacy").count() ? await result.locator(".privacy").textContent() : null;
      assert.equal(note, privacy, `${name}: what the page says about its metadata`);
    }
    assert.equal(await page.locator("#gallery .gallery-item").count(), 2, "both are in My uploads at once");
    await page.waitForFunction(() => /uploaded/.test(document.getElementById("announcer").textContent));
    await page.evaluate(() => document.activeElement?.blur());
    await shot(page, "after-upload.png");
  });

  it("copies an image link to the clipboard", STEP, async () => {
    const result = await resultOf(page, "sunset.png", "done");
    const copy = result.getByRole("button", { name: "Copy link" });
    await copy.click();
    await result.getByRole("button", { name: "Copied" }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, `${PAGE_URL}download/${uploaded["sunset.png"]}`);
  });

  it("fits a phone-sized screen without sideways scrolling", STEP, async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `the page is ${width}px wide at 375px`);
    await shot(page, "phone.png");
    await page.setViewportSize({ width: 1200, height: 900 });
  });

  it("keeps both in My uploads after a reload, newest first, showing small variants only", STEP, async () => {
    // Every image the gallery loads is a variant: a thumbnail, not the original.
    const images = [];
    const onRequest = (request) => {
      if (request.resourceType() === "image" && request.url().includes("/download/")) images.push(request.url());
    };
    page.on("request", onRequest);
    await page.reload();
    const items = page.locator("#gallery .gallery-item");
    await items.nth(1).waitFor();
    assert.equal(await items.count(), 2);
    assert.equal(await page.locator("#results .result").count(), 0, "the results list starts empty again");
    assert.equal(await page.locator("#gallery-empty").isVisible(), false);

    const stored = await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith("picshelf.uploads.v1:"));
      return { key, entries: JSON.parse(localStorage.getItem(key)) };
    });
    assert.equal(stored.key, `picshelf.uploads.v1:${new URL(PAGE_URL).pathname}`);
    const newestFirst = [...stored.entries].sort((a, b) => b.uploadedAt.localeCompare(a.uploadedAt)).map((e) => e.id);
    const shown = await items.evaluateAll((nodes) => nodes.map((node) => node.dataset.id));
    assert.deepEqual(shown, newestFirst);
    assert.deepEqual([...shown].sort(), Object.values(uploaded).sort());

    for (const id of shown) {
      const img = page.locator(`#gallery .gallery-item[data-id="${id}"] img.thumb`);
      await img.scrollIntoViewIfNeeded();
      await thumbnailLoaded(img);
      assert.match(await img.evaluate((node) => node.currentSrc), new RegExp(`download/${id}\\?width=\\d+$`));
    }
    page.off("request", onRequest);
    assert.ok(images.length >= 2, `the gallery loaded ${images.length} images`);
    for (const url of images) {
      const width = Number(new URL(url).searchParams.get("width"));
      assert.ok([160, 320, 640].includes(width), `the gallery asked for ${url}, not a thumbnail`);
    }
  });

  it("deletes one from My uploads, and the server forgets it too", STEP, async () => {
    const id = uploaded["hills.png"];
    const item = page.locator(`#gallery .gallery-item[data-id="${id}"]`);
    page.once("dialog", (dialog) => dialog.accept());
    await item.getByRole("button", { name: "Delete hills.png" }).click();
    await item.waitFor({ state: "detached" });
    assert.equal(await page.locator("#gallery .gallery-item").count(), 1);
    await goneWithinCacheValidity(id);
    assert.equal(await statusOf(uploaded["sunset.png"]), 200, "the other one stays");

    await page.reload();
    await page.locator("#gallery .gallery-item").first().waitFor();
    assert.equal(await page.locator(`#gallery .gallery-item[data-id="${id}"]`).count(), 0, "gone after a reload");
  });

  it("explains in plain words why a text file is refused", STEP, async () => {
    // notes.txt is refused before sending (text/plain); not-really.png claims to be a
    // PNG, so it goes to the server, which reads the bytes and answers 415.
    await page.setInputFiles("#file-input", [files.notes, files.fake]);
    for (const name of ["notes.txt", "not-really.png"]) {
      const result = await resultOf(page, name, "failed");
      assert.equal((await result.locator(".status").textContent()).trim(), "Failed");
      assert.match(await result.locator(".error").textContent(), NOT_AN_IMAGE);
    }
    assert.equal(await page.locator("#gallery .gallery-item").count(), 1, "nothing was added to My uploads");
    await shot(page, "error.png");
  });

  it("refuses a file over the size limit before sending it", STEP, async () => {
    const limit = Number(await page.locator("#upload-form").getAttribute("data-max-file-bytes"));
    assert.ok(limit > 0 && limit <= 1024 * 1024 * 1024, `a sane limit: ${limit}`);
    let sent = false;
    const onRequest = (request) => {
      if (request.method() === "POST") sent = true;
    };
    page.on("request", onRequest);
    // Made in the page (a file list the input's change event sees), rather than
    // shipping the limit's worth of bytes from here.
    await page.evaluate((size) => {
      const input = document.getElementById("file-input");
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(size)], "huge.png", { type: "image/png" }));
      input.files = transfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }, limit + 1);
    const result = await resultOf(page, "huge.png", "failed");
    page.off("request", onRequest);
    assert.match(await result.locator(".error").textContent(), /This file is .* larger than \d+(\.\d)? (KiB|MiB)/);
    assert.equal(sent, false, "nothing was sent");
  });

  it("says when uploads are rate limited or the server is down, and retries", STEP, async () => {
    const uploadUrl = `${PAGE_URL}upload`;
    expectedFailures.push(uploadUrl); // the refusals below are logged by Chromium
    const item = page
      .locator("#results .result")
      .filter({ has: page.locator(".file-name", { hasText: "sunset.png" }) })
      .first();
    await page.route(uploadUrl, (route) =>
      route.fulfill({
        status: 429,
        contentType: "application/json",
        body: JSON.stringify({ error: { code: "rate_limited", message: "too many uploads" } }),
      }),
    );
    await page.setInputFiles("#file-input", files.sunset);
    await item.getByText("Too many uploads right now — wait a moment and retry").waitFor();

    await page.unroute(uploadUrl);
    await page.route(uploadUrl, (route) => route.abort("connectionrefused"));
    await item.getByRole("button", { name: "Retry" }).click();
    await item.getByText("The server cannot be reached").waitFor();

    await page.unroute(uploadUrl);
    await item.getByRole("button", { name: "Retry" }).click();
    await item.locator("img.thumb").waitFor();
    await thumbnailLoaded(item.locator("img.thumb"));
    const id = await item.getAttribute("data-id");
    page.once("dialog", (dialog) => dialog.accept());
    await item.getByRole("button", { name: "Delete sunset.png" }).click();
    await item.getByText("This image was deleted from picshelf.").waitFor();
    assert.equal(await statusOf(id), 404);
  });

  it("shows one image on its own page, with copy and delete", STEP, async () => {
    const id = uploaded["sunset.png"];
    await page.locator(`#gallery .gallery-item[data-id="${id}"] a.file-name`).click();
    await page.waitForURL(new RegExp(`/main/view/${id}\\?token=`));
    const card = page.locator(`article.image-card[data-id="${id}"]`);
    await thumbnailLoaded(card.locator("img"));
    assert.equal(await card.locator("img").getAttribute("alt"), "sunset.png");
    assert.match(await card.locator("img").evaluate((node) => node.currentSrc), /\?width=\d+$/, "a variant");
    assert.match(await card.locator(".details").textContent(), /480 × 320/);
    const downloadLink = card.getByRole("link", { name: "Download", exact: true });
    assert.equal(await downloadLink.getAttribute("href"), `download/${id}?download`);
    const download = await context.request.get(`${PAGE_URL}download/${id}?download`);
    assert.match(download.headers()["content-disposition"], /^attachment/);

    await card.getByRole("button", { name: "Copy link" }).click();
    await card.getByRole("button", { name: "Copied" }).waitFor();
    await shot(page, "view.png");
    page.once("dialog", (dialog) => dialog.accept());
    await card.getByRole("button", { name: "Delete" }).click();
    await page.getByText("Deleted: this image is gone from picshelf.").waitFor();
    await goneWithinCacheValidity(id);

    await page.goto(PAGE_URL);
    await page.locator("#gallery-empty").waitFor({ state: "visible" });
    assert.equal(await page.locator("#gallery .gallery-item").count(), 0, "deleting there also forgets it here");
  });

  it("takes dropped and pasted images; forgets; shows an image deleted elsewhere as gone", STEP, async () => {
    const bytes = png(64, 48, (x, y) => [x * 4, y * 5, 160]).toString("base64");
    await page.evaluate((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const file = (name) => new File([bytes], name, { type: "image/png" });
      const zone = document.getElementById("drop-zone");
      const dropped = new DataTransfer();
      dropped.items.add(file("dropped.png"));
      zone.dispatchEvent(new DragEvent("dragenter", { bubbles: true, cancelable: true, dataTransfer: dropped }));
      if (!zone.classList.contains("dragging")) throw new Error("the drop zone does not light up");
      zone.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: dropped }));
      const pasted = new DataTransfer();
      pasted.items.add(file("image.png")); // what a screenshot in the clipboard is called
      document.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: pasted }));
    }, bytes);
    const dropped = await resultOf(page, "dropped.png", "done");
    const pasted = await resultOf(page, "pasted-", "done");
    assert.equal(await page.locator("#drop-zone.dragging").count(), 0);
    assert.match(await pasted.locator(".file-name").textContent(), /^pasted-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.png$/);
    const droppedId = await dropped.getAttribute("data-id");
    const pastedId = await pasted.getAttribute("data-id");
    const pastedToken = (await pasted.locator(".token code").textContent()).trim();

    // Forget: gone from this browser's list, still on the server.
    const pastedInGallery = page.locator(`#gallery .gallery-item[data-id="${pastedId}"]`);
    await pastedInGallery.getByRole("button", { name: /^Forget/ }).click();
    await pastedInGallery.waitFor({ state: "detached" });
    assert.equal(await statusOf(pastedId), 200);

    // Deleted elsewhere with its token: the gallery says so where the thumbnail is not
    // in the HTTP cache (another session with the same My uploads).
    const key = `picshelf.uploads.v1:${new URL(PAGE_URL).pathname}`;
    const token = await page.evaluate(
      ([key, id]) => JSON.parse(localStorage.getItem(key)).find((entry) => entry.id === id).deleteToken,
      [key, droppedId],
    );
    const removed = await context.request.delete(`${PAGE_URL}download/${droppedId}`, {
      headers: { "X-Delete-Token": token },
    });
    assert.equal(removed.status(), 204);
    expectedFailures.push(`${PAGE_URL}download/${droppedId}`);
    await goneWithinCacheValidity(droppedId);
    const later = await newContext({ storageState: await context.storageState() });
    try {
      const tab = watch(await later.newPage());
      await tab.goto(PAGE_URL);
      const gone = tab.locator(`#gallery .gallery-item.gone[data-id="${droppedId}"]`);
      await gone.getByText("This image is gone from picshelf").waitFor();
      assert.equal(await gone.getByRole("button", { name: /^Delete/ }).isVisible(), false);
      await gone.getByRole("button", { name: /^Forget/ }).click();
      await gone.waitFor({ state: "detached" });
      await tab.locator("#gallery-empty").waitFor({ state: "visible" });
    } finally {
      await later.close();
    }
    const cleanup = await context.request.delete(`${PAGE_URL}download/${pastedId}`, {
      headers: { "X-Delete-Token": pastedToken },
    });
    assert.equal(cleanup.status(), 204);
  });

  it("works as a plain form without JavaScript", STEP, async () => {
    const plain = await newContext({ javaScriptEnabled: false });
    try {
      const noScript = watch(await plain.newPage());
      await noScript.goto(PAGE_URL);
      assert.equal(await noScript.locator("#upload-button").isVisible(), true);
      await noScript.setInputFiles("#file-input", files.hills);
      await Promise.all([noScript.waitForURL(/\/main\/view\/[0-9a-f-]+\?token=/), noScript.click("#upload-button")]);
      const card = noScript.locator("article.image-card");
      await thumbnailLoaded(card.locator("img"));
      assert.match(await card.locator(".details").textContent(), /hills\.png.*image\/png.*320 × 400/s);
      const id = await card.getAttribute("data-id");
      const token = (await card.locator(".details code").textContent()).trim();
      const removed = await plain.request.delete(`${PAGE_URL}download/${id}`, { headers: { "X-Delete-Token": token } });
      assert.equal(removed.status(), 204);
    } finally {
      await plain.close();
    }
  });

  // Behind a real prefix (http://host/dev) the page is checked where it is served;
  // against the app itself (PICSHELF_PREFIX_PROXY_CHECK=1) the test mounts it
  // under /dev behind its own little proxy. At the root of a proxy there is no
  // prefix to check, and no such test is defined.
  const servedPrefix = new URL(BASE).pathname.replace(/\/$/, "");
  const prefixCheck = servedPrefix !== "" ? "served" : process.env.PICSHELF_PREFIX_PROXY_CHECK === "1" ? "proxied" : null;
  if (prefixCheck) {
    it(`keeps every URL under the proxy prefix (${prefixCheck === "served" ? servedPrefix : "/dev, own proxy"})`, STEP, async () => {
      const proxy = prefixCheck === "proxied" ? await startPrefixProxy(BASE, "/dev") : null;
      const root = proxy ? `http://127.0.0.1:${proxy.address().port}/dev/main/` : `${BASE.replace(/\/$/, "")}/main/`;
      const proxied = await newContext();
      try {
        const tab = watch(await proxied.newPage(), root);
        await tab.goto(root);
        await tab.setInputFiles("#file-input", files.sunset);
        const result = await resultOf(tab, "sunset.png", "done");
        const id = await result.getAttribute("data-id");
        await thumbnailLoaded(result.locator("img.thumb"));
        assert.equal(await result.locator("input.link").inputValue(), `${root}download/${id}`);
        const key = await tab.evaluate(() => Object.keys(localStorage).find((k) => k.startsWith("picshelf.uploads")));
        assert.equal(key, `picshelf.uploads.v1:${new URL(root).pathname}`);

        tab.once("dialog", (dialog) => dialog.accept());
        await result.getByRole("button", { name: "Delete sunset.png" }).click();
        await resultOf(tab, "sunset.png", "deleted");
        assert.equal(await statusOf(id), 404);
      } finally {
        await proxied.close();
        proxy?.close();
      }
    });
  }

  it("logged no console or script error nor CSP violation, and asked for nothing outside its base", () => {
    assert.deepEqual(problems, []);
  });
});
