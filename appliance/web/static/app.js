// Progressive enhancement for the setup page: every page works without it.
// - the dashboard refreshes its figures and tables in place every 2 s;
// - copy buttons copy a secret; print buttons print; forms with data-confirm ask first.
"use strict";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function fillTable(id, rows, empty, columns) {
  const body = document.querySelector("#" + id + " tbody");
  if (!body) return;
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell(empty);
    td.colSpan = columns;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const values of rows) {
    const tr = document.createElement("tr");
    for (const v of values) tr.append(cell(v));
    body.append(tr);
  }
}

function clock(seconds) {
  const s = Math.floor(seconds);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

function render(state) {
  setText("reg-count", state.registrations.length);
  setText("call-count", state.calls.length);
  setText("calls-24h", state.calls_24h);
  setText("answered-24h", state.answered_24h);
  fillTable("calls", state.calls.map(c => [
    c.caller, c.answered_by || c.dialled, c.state, clock(c.duration),
    c.codecs.map(x => x || "–").join(" / "),
  ]), "No calls right now.", 5);
  fillTable("registrations", state.registrations.map(r => [
    r.aor, r.user_agent || "–", r.source, r.expires_in + " s",
  ]), "No phone is registered.", 4);
  const h = state.health;
  if (h.cpu_percent !== null) setText("cpu", h.cpu_percent + "%");
  if (h.memory_total) setText("mem", Math.round(100 * h.memory_used / h.memory_total) + "%");
  const rows = document.querySelectorAll("#services tbody tr");
  state.services.forEach((s, i) => {
    const state = rows[i] && rows[i].querySelector(".state");
    if (state) { state.textContent = s.state; state.className = "state " + s.state; }
  });
}

function startLive(root) {
  const src = root.dataset.src;
  let failures = 0;
  async function tick() {
    try {
      const response = await fetch(src, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (response.redirected || response.status === 401 || response.status === 403) {
        window.location.reload();  // the session ended: go to the login page
        return;
      }
      render(await response.json());
      root.dataset.updated = String(Date.now());
      failures = 0;
    } catch (err) {
      failures += 1;
    }
    setTimeout(tick, failures ? Math.min(30000, 2000 * 2 ** failures) : 2000);
  }
  setTimeout(tick, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) startLive(live);

  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (err) {
        const range = document.createRange();  // no clipboard (plain HTTP): select it instead
        range.selectNodeContents(document.getElementById(button.dataset.copy));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", event => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
