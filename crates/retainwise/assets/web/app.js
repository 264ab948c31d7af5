// retainwise web pages: the few behaviours that need a script. Everything else is plain HTML
// rendered by the server. No framework and no build step; served from the binary.
"use strict";

// ---- Live updates: elements with data-live="URL" data-active="true" are re-fetched and
// swapped (every data-period ms, default 1.5 s) while their job is queued or running. A
// status box that arrives with data-reload-on="done" reloads the page (the dashboard replaces the status).
(function liveUpdates() {
  const PERIOD_MS = 1500;
  function schedule(el) {
    if (el.dataset.active !== "true") return;
    // data-period: the element's own pace (a list that only waits for new jobs polls slower).
    const period = Number(el.dataset.period) || PERIOD_MS;
    setTimeout(async () => {
      try {
        const response = await fetch(el.dataset.live, { headers: { Accept: "text/html" } });
        // Signed out meanwhile (the fragment redirected to the sign-in page): show that page.
        if (response.redirected) { window.location.reload(); return; }
        if (!response.ok) { schedule(el); return; }
        const template = document.createElement("template");
        template.innerHTML = (await response.text()).trim();
        const fresh = template.content.firstElementChild;
        if (!fresh) { schedule(el); return; }
        if (fresh.dataset.reloadOn === "done") { window.location.reload(); return; }
        el.replaceWith(fresh);
        schedule(fresh);
      } catch (_) {
        schedule(el); // a network blip: try again next period
      }
    }, period);
  }
  document.querySelectorAll("[data-live]").forEach(schedule);
})();

// ---- Upload page.
(function upload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  // The server reads at most this much of a file for the preview and the checks at upload.
  const PREVIEW_BYTES = Number(form.dataset.headBytes);
  const input = document.getElementById("file");
  const zone = document.getElementById("dropzone");
  const status = document.getElementById("file-status");
  const preview = document.getElementById("preview");
  const problem = document.getElementById("preview-problem");
  const submit = document.getElementById("submit");
  const progressBox = document.getElementById("progress-box");
  const progress = document.getElementById("progress");
  const maxBytes = Number(form.dataset.maxBytes);
  // Files above this many bytes go by the direct upload: in parts, resumable.
  const directFrom = Number(form.dataset.directFrom);
  let ready = false;
  // Columns chosen by hand: model input -> header as written, or null for "no column".
  let choices = {};
  const NONE = "\u0000none";
  submit.disabled = true; // enabled once the chosen file has previewed as ready

  function say(text, kind) {
    status.hidden = !text;
    status.textContent = text || "";
    status.className = "alert" + (kind ? " " + kind : "");
  }
  function sizeText(n) {
    if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
    return Math.max(1, Math.round(n / 1024)) + " KB";
  }
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  // A header as written, quoted so that spaces around it show.
  function quoted(name) { return JSON.stringify(name); }
  async function detail(response) {
    try { return (await response.json()).detail || response.statusText; }
    catch (_) { return response.statusText || "the server did not answer"; }
  }

  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });

  input.addEventListener("change", () => {
    choices = {};
    preview.hidden = true;
    previewFile();
  });

  async function previewFile() {
    ready = false;
    submit.disabled = true;
    const file = input.files[0];
    if (!file) { say(""); return; }
    if (file.size === 0) {
      say(`${file.name} is empty: choose a CSV with a header row and customer rows.`, "error");
      return;
    }
    if (file.size > maxBytes) {
      say(`${file.name} is ${sizeText(file.size)}, over the upload limit of ${form.dataset.maxText}: split it into smaller files.`, "error");
      return;
    }
    say(`Reading ${file.name} (${sizeText(file.size)})…`);
    const body = new FormData();
    if (Object.keys(choices).length) body.append("mapping", JSON.stringify(choices));
    body.append("file", file.slice(0, PREVIEW_BYTES), file.name);
    let response;
    try {
      response = await fetch("/api/csv/preview-mapping", { method: "POST", body });
    } catch (_) {
      say("The server could not be reached; check your connection and choose the file again.", "error");
      return;
    }
    if (!response.ok) {
      // With choices made, the table stays so that a choice can be undone.
      if (!Object.keys(choices).length) preview.hidden = true;
      say(`${file.name} cannot be read: ${await detail(response)}`, "error");
      return;
    }
    const answer = await response.json();
    showPreview(file, answer.preview, answer.model);
  }

  // A select of the file's headers for one model input: automatic, none, or a header.
  function chooser(f, header) {
    const select = document.createElement("select");
    select.setAttribute("aria-label", `Column for ${f.feature}`);
    select.dataset.feature = f.feature;
    const option = (value, text) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = text;
      select.appendChild(o);
    };
    option("", "automatic");
    option(NONE, f.role === "id" ? "none: use row numbers" : "none: score as missing");
    header.forEach((h, i) => option(h, `${quoted(h)} (column ${i + 1})`));
    const chosen = choices[f.feature];
    select.value = chosen === undefined ? "" : chosen === null ? NONE : chosen;
    select.addEventListener("change", () => {
      if (select.value === "") delete choices[f.feature];
      else choices[f.feature] = select.value === NONE ? null : select.value;
      previewFile();
    });
    return select;
  }

  function showPreview(file, p, model) {
    const m = p.mapping;
    document.getElementById("preview-meta").textContent =
      `${file.name}: ${p.header.length} columns, ${p.encoding}, delimiter ${p.delimiter === "tab" ? "tab" : "“" + p.delimiter + "”"}` +
      (p.decimal_comma ? ", decimal comma" : "") + ".";
    document.getElementById("preview-model").textContent = model
      ? `Scored by ${model.description}; model ${model.id}.` : "";
    const tbody = document.querySelector("#mapping tbody");
    tbody.replaceChildren();
    const inputs = (m.id ? [m.id] : []).concat(m.features);
    for (const f of inputs) {
      const row = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = f.role === "id" ? `${f.feature} (customer id)`
        : f.kind === "date" ? `${f.feature} (date)` : f.feature;
      row.appendChild(th);
      if (f.column === null) {
        const absent = m.missing.find((x) => x.feature === f.feature);
        cell(row, f.role === "id" ? "none: row numbers are used"
          : absent && absent.by_choice ? "none (your choice): scored as missing"
          : "missing: scored as missing", "missing");
        cell(row, "—");
        cell(row, "—", "num");
      } else {
        cell(row, quoted(f.column), "header-name");
        cell(row, f.method + (f.note ? ` (${f.note})` : ""));
        cell(row, Math.round(f.confidence * 100) + "%", "num");
      }
      cell(row, "").appendChild(chooser(f, p.header));
      tbody.appendChild(row);
    }
    const notes = [];
    for (const miss of m.missing) {
      if (miss.by_choice) continue;
      const near = miss.suggestions.map((s) => quoted(s.column));
      notes.push(`No column for ${miss.feature}` + (near.length ? ` (perhaps: ${near.join(", ")}; choose it in the last column)` : ""));
    }
    for (const dup of m.duplicates) {
      const named = dup.columns.map((c, i) => `${quoted(c)} (column ${dup.positions[i] + 1})`);
      notes.push(`${dup.feature} matches several columns: ${named.join(" and ")}; choose one in the last column`);
    }
    const text = p.ready
      ? (notes.length ? notes.join(". ") + ". Inputs without a column are scored as missing, and each row says so in its data quality." : "")
      : ([p.mapping_problem, p.problem].filter(Boolean).join(" ") || notes.join(". ")) +
        " Choose the columns by hand below, or fix the file and choose it again.";
    problem.hidden = !text;
    problem.className = "alert" + (p.ready ? " warning" : " error");
    problem.textContent = text;
    document.getElementById("preview-ignored").textContent = m.unmapped.length
      ? `Ignored columns (the model does not use them): ${m.unmapped.map(quoted).join(", ")}.` : "";
    document.getElementById("reference-box").hidden = !m.features.some((f) => f.kind === "date");
    preview.hidden = false;
    ready = p.ready;
    submit.disabled = !ready;
    say(ready ? `${file.name} is ready to be scored.` : `${file.name} cannot be scored as it is.`, ready ? "ok" : "error");
    if (!document.activeElement || document.activeElement.tagName !== "SELECT") {
      document.getElementById("preview-h").focus();
    }
  }

  function showProgress(done, total) {
    progress.value = Math.round((100 * done) / Math.max(1, total));
    progress.textContent = progress.value + "%";
  }
  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // One PUT of `blob` to `url` (the API's signed URL or a presigned S3 one: no credentials),
  // reporting progress on top of the `before` bytes already sent.
  function putPart(url, blob, before, total) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", (ev) => showProgress(before + ev.loaded, total));
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else {
          let answer = {};
          try { answer = JSON.parse(xhr.responseText); } catch (_) { /* S3 answers XML */ }
          reject(new Error(answer.detail || `the server answered ${xhr.status}`));
        }
      });
      xhr.addEventListener("error", () => reject(new Error("the connection dropped")));
      xhr.addEventListener("abort", () => reject(new Error("the transfer was stopped")));
      xhr.send(blob);
    });
  }

  // The direct upload: declare the file (or find the upload begun for it before), send the
  // parts the server does not hold, complete. After a failure: wait, ask which parts arrived
  // (with fresh URLs), send the rest.
  async function directUpload(file, settings) {
    const memory = `retainwise-upload:${file.name}:${file.size}:${file.lastModified}`;
    let upload = null;
    const earlier = window.localStorage.getItem(memory);
    if (earlier) {
      try {
        const r = await fetch(`/api/uploads/${encodeURIComponent(earlier)}`);
        if (r.ok) {
          const answer = await r.json();
          if (answer.status === "PENDING") upload = answer;
        }
      } catch (_) { /* start afresh */ }
    }
    if (!upload) {
      let r;
      try {
        r = await fetch("/api/uploads", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(Object.assign({ filename: file.name, size: file.size }, settings)),
        });
      } catch (_) {
        return refused("the server could not be reached; check your connection and try again");
      }
      if (r.status !== 201) return refused(await detail(r));
      upload = await r.json();
      window.localStorage.setItem(memory, upload.upload_id);
    }
    const id = upload.upload_id;
    let failures = 0;
    for (;;) {
      const parts = upload.url
        ? [{ part_number: 1, size: file.size, url: upload.url }]
        : upload.parts;
      const present = new Set(upload.parts_present || []);
      let sent = parts.filter((p) => present.has(p.part_number)).reduce((n, p) => n + p.size, 0);
      try {
        for (const p of parts) {
          if (present.has(p.part_number)) continue;
          const start = (p.part_number - 1) * upload.part_size;
          await putPart(p.url, file.slice(start, start + p.size), sent, file.size);
          sent += p.size;
          present.add(p.part_number);
          failures = 0;
        }
        const r = await fetch(`/api/uploads/${id}/complete`, { method: "POST" });
        if (r.status === 202) {
          window.localStorage.removeItem(memory);
          const answer = await r.json();
          showProgress(1, 1);
          say("Uploaded. Opening the prediction…", "ok");
          window.location.assign(`/predictions/${answer.prediction_id}`);
          return;
        }
        const why = await detail(r);
        if (r.status !== 409 || !/missing/.test(why)) {
          if (r.status === 422 || r.status === 400) window.localStorage.removeItem(memory);
          return refused(why);
        }
        throw new Error(why);
      } catch (err) {
        failures += 1;
        if (failures > 8) {
          return refused(`${err.message}. Choose the same file again to send the rest.`);
        }
        const wait = Math.min(30, 2 ** failures);
        const what = err.message === "the connection dropped" ? "The connection dropped" : `The upload stopped (${err.message})`;
        say(`${what}; ${present.size} of ${parts.length} parts are on the server. Resuming in ${wait} s…`, "warning");
        await sleep(wait * 1000);
        try {
          const r = await fetch(`/api/uploads/${id}`);
          if (r.ok) upload = await r.json();
        } catch (_) { /* still offline: try again after the next pause */ }
        if (upload.status && upload.status !== "PENDING") {
          return refused(upload.error || `the upload is ${upload.status}; choose the file again`);
        }
        say(`Resuming the upload of ${file.name}…`);
      }
    }
  }

  function refused(why) {
    progressBox.hidden = true;
    submit.disabled = false;
    say(`The upload was refused: ${why}`, "error");
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const file = input.files[0];
    if (!file || !ready) return;
    submit.disabled = true;
    progressBox.hidden = false;
    progress.value = 0;
    if (file.size > directFrom) {
      const settings = {};
      const date = document.getElementById("reference-date");
      if (!document.getElementById("reference-box").hidden && date.value) settings.reference_date = date.value;
      if (Object.keys(choices).length) settings.mapping = choices;
      say(`Uploading ${file.name} in parts…`);
      directUpload(file, settings);
      return;
    }
    const body = new FormData();
    const reference = document.getElementById("reference-date");
    if (!document.getElementById("reference-box").hidden && reference.value) {
      body.append("reference_date", reference.value);
    }
    if (Object.keys(choices).length) body.append("mapping", JSON.stringify(choices));
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/csv");
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) {
        progress.value = Math.round((100 * ev.loaded) / ev.total);
        progress.textContent = progress.value + "%";
      }
    });
    xhr.addEventListener("load", () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 202 && answer.prediction_id) {
        progress.value = 100;
        say("Uploaded. Opening the prediction…", "ok");
        window.location.assign(`/predictions/${answer.prediction_id}`);
      } else {
        progressBox.hidden = true;
        submit.disabled = false;
        say(`The upload was refused: ${answer.detail || xhr.statusText}`, "error");
      }
    });
    xhr.addEventListener("error", () => {
      progressBox.hidden = true;
      submit.disabled = false;
      say("The upload broke off; check your connection and try again.", "error");
    });
    say(`Uploading ${file.name}…`);
    xhr.send(body);
  });
})();
