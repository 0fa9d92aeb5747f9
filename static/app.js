// picshelf page script: progressive enhancement of the upload page and the
// image page. Without it, the upload form posts as a plain form and the image
// page works with plain links. Served as a classic script with `defer`.
//
// Every URL is relative to the page's <base href=".../main/">, so the page
// works behind a proxy prefix such as /dev/ or /test/.
(function () {
  "use strict";

  const MAX_PARALLEL_UPLOADS = 3;
  // Names some browsers or systems give to accepted formats.
  const TYPE_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "image/tif": "image/tiff",
  };
  const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const TOKEN_PATTERN = /^[0-9A-Za-z_-]{8,256}$/;

  // ---- small helpers --------------------------------------------------------

  /** An element with a class, text and attributes; never parses HTML. */
  function el(tag, options, children) {
    const node = document.createElement(tag);
    const opts = options || {};
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined) node.textContent = opts.text;
    for (const [name, value] of Object.entries(opts.attrs || {})) node.setAttribute(name, value);
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function button(label, className, onClick) {
    const node = el("button", { className: className || "", text: label, attrs: { type: "button" } });
    node.addEventListener("click", onClick);
    return node;
  }

  /** Resolves a path against the page's <base>: "upload" -> ".../main/upload". */
  function urlFor(path) {
    return new URL(path, document.baseURI);
  }

  function downloadPath(id) {
    return "download/" + encodeURIComponent(id);
  }

  function viewPath(id, token) {
    return "view/" + encodeURIComponent(id) + (token ? "?token=" + encodeURIComponent(token) : "");
  }

  /** "512 bytes", "1.5 KiB", "25.0 MiB": the server's own wording. */
  function formatBytes(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " bytes" : value.toFixed(1) + " " + units[unit];
  }

  /** "image/webp" -> "WebP". */
  function formatName(contentType) {
    const names = { jpeg: "JPEG", png: "PNG", gif: "GIF", webp: "WebP", avif: "AVIF", bmp: "BMP", tiff: "TIFF" };
    const subtype = String(contentType || "").split("/")[1] || "";
    return names[subtype] || subtype.toUpperCase() || "Image";
  }

  function describe(entry) {
    const parts = [formatName(entry.contentType)];
    if (entry.width && entry.height) parts.push(entry.width + " × " + entry.height);
    parts.push(formatBytes(entry.size));
    return parts.join(" · ");
  }

  function formatDate(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  /**
   * A short status message for screen readers ("cat.png uploaded"), through the
   * page's polite live region (#announcer), rather than reading out whole result cards.
   */
  const announce = (function () {
    let pending = [];
    return function (message) {
      let region = document.getElementById("announcer");
      if (!region) {
        const attrs = { id: "announcer", role: "status", "aria-live": "polite" };
        region = el("p", { className: "visually-hidden", attrs: attrs });
        document.body.append(region);
      }
      pending.push(message);
      if (pending.length > 1) return; // joins the message about to be read
      region.textContent = "";
      // Set after a tick, so the same message twice is read twice, and messages
      // arriving together are read together.
      window.setTimeout(function () {
        region.textContent = pending.join(". ");
        pending = [];
      }, 100);
    };
  })();

  /** Shows `text` on a button for a moment, then its label again. */
  function flash(target, text) {
    const label = target.dataset.label || target.textContent;
    target.dataset.label = label;
    target.textContent = text;
    window.clearTimeout(Number(target.dataset.timer || 0));
    target.dataset.timer = String(
      window.setTimeout(function () {
        target.textContent = label;
      }, 2000),
    );
  }

  /** Copies text, through the Clipboard API or, on plain-HTTP hosts, a selected textarea. */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) {
        // fall through to the older way
      }
    }
    const area = el("textarea", { className: "visually-hidden", attrs: { readonly: "" } });
    area.value = text;
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (_) {
      copied = false;
    }
    area.remove();
    return copied;
  }

  function copyButton(getLink, extraClass) {
    const node = button("Copy link", "secondary copy " + (extraClass || ""), async function () {
      const copied = await copyText(getLink());
      flash(node, copied ? "Copied" : "Copy failed");
      announce(copied ? "Link copied" : "Could not copy the link: select it and copy it by hand");
    });
    return node;
  }

  // ---- my uploads, kept in this browser ---------------------------------------

  /** The visitor's uploads in localStorage, one list per mount point (/main/, /dev/main/...). */
  const myUploads = {
    key: "picshelf.uploads.v1:" + urlFor("./").pathname,

    load() {
      let list = [];
      try {
        list = JSON.parse(window.localStorage.getItem(this.key) || "[]");
      } catch (_) {
        list = [];
      }
      if (!Array.isArray(list)) return [];
      return list
        .filter(function (entry) {
          return entry && ID_PATTERN.test(entry.id) && TOKEN_PATTERN.test(entry.deleteToken);
        })
        .map(function (entry) {
          // Links are always rebuilt from the id: stored text is only ever shown as text.
          return Object.assign({}, entry, {
            url: downloadPath(entry.id),
            viewUrl: viewPath(entry.id, entry.deleteToken),
            name: String(entry.name || "image"),
          });
        })
        .sort(function (a, b) {
          return String(b.uploadedAt).localeCompare(String(a.uploadedAt));
        });
    },

    save(list) {
      try {
        window.localStorage.setItem(this.key, JSON.stringify(list));
        return true;
      } catch (_) {
        return false; // storage full or disabled: the page still works, it just forgets
      }
    },

    add(entry) {
      const list = this.load().filter(function (other) {
        return other.id !== entry.id;
      });
      list.unshift(entry);
      return this.save(list);
    },

    remove(id) {
      this.save(
        this.load().filter(function (entry) {
          return entry.id !== id;
        }),
      );
    },

    has(id) {
      return this.load().some(function (entry) {
        return entry.id === id;
      });
    },
  };

  function entryFromResponse(file, localName) {
    return {
      id: file.id,
      url: downloadPath(file.id),
      viewUrl: viewPath(file.id, file.delete_token),
      deleteToken: file.delete_token,
      name: file.file_name || localName || "image",
      size: file.size,
      width: file.width,
      height: file.height,
      contentType: file.content_type,
      uploadedAt: new Date().toISOString(),
      metadataRemoved: Array.isArray(file.metadata_removed) ? file.metadata_removed.map(String) : [],
    };
  }

  /** "Location removed" when the picture carried GPS, else what else went, if anything. */
  function privacyNote(entry) {
    const removed = entry.metadataRemoved || [];
    if (removed.includes("gps")) return "Location removed";
    if (removed.length > 0) return "Camera and personal metadata removed";
    return null;
  }

  // ---- talking to the server ---------------------------------------------------

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (_) {
      return null;
    }
  }

  /** Plain words for a failed upload. */
  function uploadErrorMessage(status, body, limits) {
    const code = body && body.error && body.error.code;
    const notAnImage = "This is not an image picshelf accepts (" + limits.acceptNames + ")";
    switch (code) {
      case "file_too_large":
        return "This file is larger than " + formatBytes(limits.maxFileBytes);
      case "request_too_large":
      case "payload_too_large":
        return "This file is too large for the server to accept";
      case "too_many_pixels":
        return "This image has too many pixels for picshelf";
      case "unsupported_type":
      case "unsupported_content_type":
        return notAnImage;
      case "empty_file":
        return "This file is empty";
      case "rate_limited":
        return "Too many uploads right now — wait a moment and retry";
      case "storage_unavailable":
        return "Storage is unavailable right now — try again in a minute";
      default:
        break;
    }
    if (status === 0) return "The server cannot be reached — check your connection and retry";
    if (status === 413) return "This file is too large for the server to accept";
    if (status === 415) return notAnImage;
    if (status === 429) return "Too many uploads right now — wait a moment and retry";
    if (status === 502 || status === 503 || status === 504) {
      return "The server is not answering right now — try again shortly";
    }
    if (status >= 500) return "Something went wrong on the server — try again later";
    const message = body && body.error && body.error.message;
    return message ? "The server refused this file: " + message : "The upload failed (HTTP " + status + ")";
  }

  function isRetryable(status) {
    return status === 0 || status === 429 || status >= 500;
  }

  /**
   * Uploads one file with XMLHttpRequest, for real upload progress.
   * Returns { promise, abort }; the promise resolves to { status, body } (status 0: no answer).
   */
  function sendFile(file, callbacks) {
    const xhr = new XMLHttpRequest();
    const promise = new Promise(function (resolve) {
      xhr.open("POST", urlFor("upload"));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && event.total > 0) callbacks.onProgress(event.loaded / event.total);
      });
      xhr.upload.addEventListener("load", callbacks.onSent);
      xhr.addEventListener("load", function () {
        resolve({ status: xhr.status, body: parseJson(xhr.responseText) });
      });
      xhr.addEventListener("error", function () {
        resolve({ status: 0, body: null });
      });
      xhr.addEventListener("timeout", function () {
        resolve({ status: 0, body: null });
      });
      xhr.addEventListener("abort", function () {
        resolve({ status: -1, body: null, aborted: true });
      });
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
    return {
      promise: promise,
      abort: function () {
        xhr.abort();
      },
    };
  }

  /** DELETE download/{id}: resolves to "deleted" (204, or 404: already gone), or rejects with plain words. */
  async function deleteImage(id, token) {
    let response;
    try {
      response = await fetch(urlFor(downloadPath(id)), {
        method: "DELETE",
        headers: { "X-Delete-Token": token, Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (_) {
      throw new Error("The server cannot be reached — try again later");
    }
    if (response.status === 204 || response.status === 404) return "deleted";
    if (response.status === 403) throw new Error("The server did not accept the delete token");
    if (response.status === 429) throw new Error("Too many requests right now — wait a moment and retry");
    if (response.status >= 500) throw new Error("The server could not delete it right now — try again later");
    throw new Error("Deleting failed (HTTP " + response.status + ")");
  }

  function confirmDelete(name) {
    return window.confirm("Delete “" + name + "” from picshelf for everyone? This cannot be undone.");
  }

  /**
   * A Delete button for an upload ({ id, name, deleteToken }): asks first, deletes on
   * the server, forgets it in this browser, then calls onDeleted. Failures go to `problem`.
   */
  function deleteButton(entry, className, problem, onDeleted) {
    const node = button("Delete", className, async function () {
      if (!confirmDelete(entry.name)) return;
      node.disabled = true;
      problem.textContent = "";
      try {
        await deleteImage(entry.id, entry.deleteToken);
      } catch (error) {
        node.disabled = false;
        problem.textContent = error.message;
        return;
      }
      myUploads.remove(entry.id);
      announce(entry.name + " deleted");
      onDeleted();
    });
    node.setAttribute("aria-label", "Delete " + entry.name);
    return node;
  }

  // ---- the upload page ---------------------------------------------------------

  function initUploadPage(form) {
    const limits = {
      maxFileBytes: Number(form.dataset.maxFileBytes) || Infinity,
      // The accepted formats come from the server (one list, in Rust).
      acceptNames: String(form.dataset.acceptNames || ""),
      accept: String(form.dataset.accept || "")
        .split(",")
        .map(function (type) {
          return type.trim().toLowerCase();
        })
        .filter(Boolean),
    };
    const input = document.getElementById("file-input");
    const dropZone = document.getElementById("drop-zone");
    const results = document.getElementById("results");
    const submit = document.getElementById("upload-button");
    const gallery = createGallery();
    const uploader = createUploader(limits, results, gallery);

    document.documentElement.classList.add("js");
    // Picking files uploads them at once: the Upload button is for the no-JavaScript form.
    if (submit) submit.hidden = true;
    input.required = false;

    input.addEventListener("change", function () {
      uploader.addFiles(input.files);
      input.value = "";
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      uploader.addFiles(input.files);
      input.value = "";
    });
    enableDragAndDrop(dropZone, uploader);
    enablePaste(uploader);
    gallery.render();
  }

  function enableDragAndDrop(dropZone, uploader) {
    let depth = 0;
    const carriesFiles = function (event) {
      return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
    };
    // The whole window accepts a drop, so a near miss never navigates away to the image.
    window.addEventListener("dragenter", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth += 1;
      dropZone.classList.add("dragging");
    });
    window.addEventListener("dragover", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    window.addEventListener("dragleave", function (event) {
      if (!carriesFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) dropZone.classList.remove("dragging");
    });
    window.addEventListener("drop", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth = 0;
      dropZone.classList.remove("dragging");
      uploader.addFiles(event.dataTransfer.files);
    });
  }

  function enablePaste(uploader) {
    document.addEventListener("paste", function (event) {
      const data = event.clipboardData;
      if (!data) return;
      let files = Array.from(data.files || []);
      if (files.length === 0) {
        files = Array.from(data.items || [])
          .filter(function (item) {
            return item.kind === "file";
          })
          .map(function (item) {
            return item.getAsFile();
          })
          .filter(Boolean);
      }
      if (files.length === 0) return; // plain text pasted into a field: leave it alone
      event.preventDefault();
      uploader.addFiles(files.map(namePastedFile));
    });
  }

  /** Clipboard images are all called "image.png": give them a name worth keeping. */
  function namePastedFile(file) {
    if (file.name && file.name !== "image.png") return file;
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    const extension = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
    return new File([file], "pasted-" + stamp + "." + extension, { type: file.type });
  }

  /** Why a file cannot be sent, found before sending it; "" when it may go. */
  function localProblem(file, limits) {
    if (file.size === 0) return "This file is empty";
    if (file.size > limits.maxFileBytes) {
      return "This file is " + formatBytes(file.size) + ", larger than " + formatBytes(limits.maxFileBytes);
    }
    const type = TYPE_ALIASES[file.type.toLowerCase()] || file.type.toLowerCase();
    // An unknown type goes to the server, which decides by the bytes.
    if (type && limits.accept.length > 0 && !limits.accept.includes(type)) {
      return "This is not an image picshelf accepts (" + limits.acceptNames + ")";
    }
    return "";
  }

  /** Queues files and uploads a few at a time, one request per file. */
  function createUploader(limits, results, gallery) {
    const queue = [];
    let running = 0;

    function pump() {
      while (running < MAX_PARALLEL_UPLOADS && queue.length > 0) {
        const job = queue.shift();
        if (job.cancelled) continue;
        running += 1;
        run(job).finally(function () {
          running -= 1;
          pump();
        });
      }
    }

    async function run(job) {
      const item = job.item;
      item.setUploading(0);
      const upload = sendFile(job.file, {
        onProgress: item.setUploading,
        onSent: item.setProcessing,
      });
      job.abort = upload.abort;
      const answer = await upload.promise;
      job.abort = null;
      if (answer.aborted) return;
      const stored = answer.status === 201 && answer.body && Array.isArray(answer.body.files) && answer.body.files[0];
      if (stored && ID_PATTERN.test(stored.id)) {
        const entry = entryFromResponse(stored, job.file.name);
        const kept = myUploads.add(entry);
        item.setDone(entry, kept);
        gallery.render();
        announce(job.file.name + " uploaded");
      } else {
        const message = uploadErrorMessage(answer.status, answer.body, limits);
        item.setFailed(message, isRetryable(answer.status) ? retry : null);
        announce(job.file.name + ": " + message);
      }

      function retry() {
        job.cancelled = false;
        item.setQueued();
        queue.push(job);
        pump();
      }
    }

    /** Files picked, dropped or pasted together are listed together, newest batch on top. */
    function addFiles(fileList) {
      const batch = document.createDocumentFragment();
      for (const file of Array.from(fileList || [])) {
        const job = { file: file, cancelled: false, abort: null };
        job.item = createResultItem(file, {
          cancel: function () {
            job.cancelled = true;
            if (job.abort) job.abort();
          },
          deleted: function () {
            gallery.render();
          },
        });
        batch.append(job.item.node);
        const problem = localProblem(file, limits);
        if (problem) {
          job.item.setFailed(problem, null);
          announce(file.name + ": " + problem);
        } else {
          queue.push(job);
        }
      }
      results.prepend(batch);
      pump();
    }

    return { addFiles: addFiles };
  }

  /** One line of the results list: queued, uploading n%, processing, done or failed. */
  function createResultItem(file, handlers) {
    const name = file.name || "image";
    const status = el("span", { className: "status", text: "Queued" });
    const percent = el("span", { className: "percent", attrs: { "aria-hidden": "true" } });
    const progress = el("progress", { attrs: { max: "100", value: "0", "aria-label": "Upload progress of " + name } });
    const detail = el("div", { className: "result-detail" });
    const cancel = button("Cancel", "secondary small", function () {
      handlers.cancel();
      setFailed("Upload cancelled", null, "Cancelled");
    });
    cancel.setAttribute("aria-label", "Cancel uploading " + name);
    const node = el("li", { className: "result queued" }, [
      el("div", { className: "result-head" }, [
        el("span", { className: "file-name", text: name }),
        el("span", { className: "state" }, [status, percent]),
      ]),
      progress,
      detail,
      el("div", { className: "row" }, [cancel]),
    ]);

    function setState(state, text) {
      node.className = "result " + state;
      status.textContent = text;
      percent.textContent = "";
    }

    function setQueued() {
      setState("queued", "Queued");
      progress.hidden = false;
      progress.value = 0;
      detail.replaceChildren();
      cancel.hidden = false;
    }

    function setUploading(fraction) {
      const value = Math.min(99, Math.floor(fraction * 100));
      if (!node.classList.contains("uploading")) setState("uploading", "Uploading");
      progress.value = value;
      percent.textContent = " " + value + "%";
    }

    function setProcessing() {
      progress.value = 99;
      setState("uploading", "Checking and storing…");
    }

    function setDone(entry, kept) {
      setState("done", "Uploaded");
      progress.value = progress.max;
      cancel.hidden = true;
      node.dataset.id = entry.id;
      resultItems.set(entry.id, controller);
      const onDeleted = function () {
        showDeleted();
        handlers.deleted();
      };
      detail.replaceChildren(uploadCard(entry, { onDeleted: onDeleted, keptNote: kept ? "" : notKeptNote() }));
    }

    function setFailed(message, retry, statusText) {
      setState("failed", statusText || "Failed");
      progress.hidden = true;
      cancel.hidden = true;
      const dismiss = button("Dismiss", "secondary small", function () {
        node.remove();
      });
      dismiss.setAttribute("aria-label", "Dismiss " + name);
      detail.replaceChildren(
        el("div", { className: "row" }, [
          el("p", { className: "error", text: message }),
          retry ? button("Retry", "small", retry) : null,
          dismiss,
        ]),
      );
    }

    function showDeleted() {
      setState("deleted", "Deleted");
      progress.hidden = true;
      detail.replaceChildren(el("p", { className: "hint", text: "This image was deleted from picshelf." }));
    }

    const controller = {
      node: node,
      setQueued: setQueued,
      setUploading: setUploading,
      setProcessing: setProcessing,
      setDone: setDone,
      setFailed: setFailed,
      showDeleted: showDeleted,
    };
    return controller;
  }

  /** Finished uploads shown in the results list, by id, so a delete from the gallery shows there too. */
  const resultItems = new Map();

  function markResultDeleted(id) {
    const item = resultItems.get(id);
    if (item) item.showDeleted();
  }

  function notKeptNote() {
    return "This browser cannot keep a list of your uploads: save the link and the delete token now.";
  }

  /** Thumbnail, link with a copy button, details, delete token and a delete button. */
  function uploadCard(entry, options) {
    const link = urlFor(entry.url).href;
    const linkField = el("input", {
      className: "link",
      attrs: { type: "text", readonly: "", value: link, "aria-label": "Link to " + entry.name },
    });
    linkField.addEventListener("focus", function () {
      linkField.select();
    });
    const problem = el("p", { className: "error", attrs: { role: "alert" } });
    const remove = deleteButton(entry, "danger", problem, options.onDeleted);
    return el("div", { className: "upload-card" }, [
      el("a", { className: "thumb-link", attrs: { href: entry.viewUrl, tabindex: "-1" } }, [thumbnail(entry)]),
      el("div", { className: "upload-info" }, [
        el("p", { className: "meta", text: describe(entry) }),
        privacyNote(entry) ? el("p", { className: "privacy", text: privacyNote(entry) }) : null,
        el("div", { className: "row" }, [linkField, copyButton(() => link)]),
        el("div", { className: "row" }, [
          el("a", { className: "button secondary", text: "Open", attrs: { href: entry.viewUrl } }),
          el("a", { className: "button secondary", text: "Download", attrs: { href: entry.url + "?download" } }),
          remove,
        ]),
        el("details", { className: "token" }, [
          el("summary", { text: "Delete token" }),
          el("code", { text: entry.deleteToken }),
        ]),
        options.keptNote ? el("p", { className: "hint", text: options.keptNote }) : null,
        problem,
      ]),
    ]);
  }

  /** The widths the server makes variants at (the form's data-variant-widths). */
  function variantWidths() {
    const holder = document.querySelector("[data-variant-widths]");
    if (!holder) return [];
    return String(holder.dataset.variantWidths || "")
      .split(",")
      .map(Number)
      .filter(function (width) {
        return width > 0;
      });
  }

  /**
   * A small variant, never the original: srcset lets the browser pick the
   * width the layout and screen need. AVIF has no variants.
   */
  function thumbnail(entry) {
    const widths = entry.contentType === "image/avif" ? [] : variantWidths();
    const attrs = {
      src: entry.url,
      alt: entry.name,
      width: String(entry.width || ""),
      height: String(entry.height || ""),
      decoding: "async",
      loading: "lazy",
    };
    if (widths.length > 0) {
      const small = widths.find(function (width) {
        return width >= 320;
      });
      attrs.src = entry.url + "?width=" + (small || widths[widths.length - 1]);
      attrs.srcset = widths
        .map(function (width) {
          return entry.url + "?width=" + width + " " + width + "w";
        })
        .join(", ");
      attrs.sizes = "(max-width: 40rem) 90vw, 20rem";
    }
    return el("img", { className: "thumb", attrs: attrs });
  }

  // ---- the gallery: my uploads ---------------------------------------------------

  function createGallery() {
    const section = document.getElementById("gallery-section");
    const list = document.getElementById("gallery");
    const empty = document.getElementById("gallery-empty");
    const heading = document.getElementById("gallery-heading");
    if (heading) heading.tabIndex = -1;

    function render() {
      if (!section || !list) return;
      const entries = myUploads.load();
      section.hidden = false;
      if (empty) empty.hidden = entries.length > 0;
      list.replaceChildren(...entries.map(galleryItem));
    }

    /** After an item goes, keep keyboard focus nearby rather than on <body>. */
    function renderAndRefocus(index) {
      render();
      const items = list.querySelectorAll(".gallery-item");
      const next = items[Math.min(index, items.length - 1)];
      const target = next ? next.querySelector("a.file-name, button") : heading;
      if (target) target.focus();
    }

    function galleryItem(entry, index) {
      const image = thumbnail(entry);
      const problem = el("p", { className: "error", attrs: { role: "alert" } });
      const remove = deleteButton(entry, "danger small", problem, function () {
        markResultDeleted(entry.id);
        renderAndRefocus(index);
      });
      const forget = button("Forget", "secondary small", function () {
        myUploads.remove(entry.id);
        announce(entry.name + " forgotten in this browser; the image stays online");
        renderAndRefocus(index);
      });
      forget.setAttribute("aria-label", "Forget " + entry.name + " in this browser (the image stays online)");
      const item = el("li", { className: "gallery-item", attrs: { "data-id": entry.id } }, [
        el("a", { className: "thumb-link", attrs: { href: entry.viewUrl, tabindex: "-1" } }, [image]),
        el("a", { className: "file-name", text: entry.name, attrs: { href: entry.viewUrl } }),
        el("p", { className: "meta", text: describe(entry) }),
        privacyNote(entry) ? el("p", { className: "privacy", text: privacyNote(entry) }) : null,
        el("p", { className: "meta", text: formatDate(entry.uploadedAt) }),
        el("div", { className: "row" }, [copyButton(() => urlFor(entry.url).href, "small"), remove, forget]),
        problem,
      ]);
      image.addEventListener("error", function () {
        checkGone(entry, item, image);
      });
      return item;
    }

    window.addEventListener("storage", function (event) {
      if (event.key === myUploads.key || event.key === null) render();
    });

    return { render: render };
  }

  /** A thumbnail that did not load: if the server says 404, show the image as gone. */
  async function checkGone(entry, item, image) {
    let status = 0;
    try {
      status = (await fetch(urlFor(entry.url), { method: "HEAD" })).status;
    } catch (_) {
      return;
    }
    if (status !== 404) {
      // The image is there but its variant failed (busy, or not renderable): show the original.
      if (image.hasAttribute("srcset")) {
        image.removeAttribute("srcset");
        image.src = entry.url;
      }
      return;
    }
    item.classList.add("gone");
    image.closest(".thumb-link").replaceWith(
      el("p", { className: "gone-note", text: "This image is gone from picshelf (deleted elsewhere)." }),
    );
    for (const control of item.querySelectorAll("button.danger, button.copy")) control.hidden = true;
    for (const link of item.querySelectorAll("a.file-name")) link.removeAttribute("href");
  }

  // ---- the image page -------------------------------------------------------------

  function initImagePage(cards) {
    for (const card of cards) {
      const id = card.dataset.id;
      if (!ID_PATTERN.test(id || "")) continue;
      const link = urlFor(downloadPath(id)).href;
      // The full address, as it would be shared.
      for (const anchor of card.querySelectorAll("a.image-link")) anchor.textContent = link;
      const actions = card.querySelector(".actions") || card.appendChild(el("p", { className: "actions" }));
      actions.append(copyButton(() => link));
      const token = card.dataset.token;
      if (token) actions.append(imageDeleteButton(card, id, token));
    }
  }

  function imageDeleteButton(card, id, token) {
    const image = card.querySelector("img");
    const entry = { id: id, name: (image && image.alt) || id, deleteToken: token };
    const problem = el("p", { className: "error", attrs: { role: "alert" } });
    card.append(problem);
    return deleteButton(entry, "danger", problem, function () {
      card.classList.add("deleted");
      const note = el("p", {
        className: "gone-note",
        text: "Deleted: this image is gone from picshelf.",
        attrs: { tabindex: "-1" },
      });
      card.replaceChildren(note);
      note.focus();
    });
  }

  // ---- start -------------------------------------------------------------------------

  function init() {
    const form = document.getElementById("upload-form");
    if (form) initUploadPage(form);
    const cards = document.querySelectorAll("article.image-card[data-id]");
    if (cards.length > 0) initImagePage(cards);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
