// Progressive enhancement for the setup page: every page works without it.
// - the dashboard refreshes its figures and tables in place every 2 s;
// - copy buttons copy a secret; print buttons print; forms with data-confirm ask first;
// - forms with data-inplace="ID ..." are posted in the background and the elements with those
//   ids are taken from the answer (the page the form would have loaded), the rest kept;
// - rows of a table[data-reorder] can be dragged to another place: the row's data-move URL is
//   posted the new position, as its up and down buttons do without JavaScript.
"use strict";

// What the script says, in the page's language: base.html puts it in <meta id="i18n"> as JSON
// (keys: no_calls, no_trunks, no_registrations, copied, selected, seconds, percent; "{0}" in a
// text stands for a value). The script itself holds no text shown to people.
let strings = null;

function say(key, value) {
  if (strings === null) {
    const source = document.getElementById("i18n");
    try {
      strings = source ? JSON.parse(source.content) : {};
    } catch (err) {
      strings = {};
    }
  }
  const text = key in strings ? strings[key] : key;
  return value === undefined ? text : text.replace("{0}", value);
}

// A number as the page's language writes it (12.5 is 12,5 in Russian).
function number(value) {
  try {
    return new Intl.NumberFormat(document.documentElement.lang || undefined).format(value);
  } catch (err) {
    return String(value);
  }
}

// A state as people read it: the server's translated label, else the code.
function stateLabel(item) {
  return item.state_label || item.state;
}

// A cell; `raw` marks a value shown as it is (a name, a number, an address): not to translate.
function cell(value, raw) {
  const td = document.createElement("td");
  if (value instanceof Node) td.append(value);
  else td.textContent = value;
  if (raw) td.setAttribute("translate", "no");
  return td;
}

function trunkState(t) {
  const shown = document.createDocumentFragment();
  const badge = document.createElement("span");
  badge.className = "state " + t.state;
  badge.textContent = stateLabel(t);
  shown.append(badge);
  if (t.last_response) {
    const answer = document.createElement("small");
    answer.className = "answer";
    answer.setAttribute("translate", "no");
    answer.textContent = t.last_response;
    shown.append(" ", answer);
  }
  return shown;
}

// Fill a table's body with `rows` (or one row saying `empty`); the columns whose indexes are in
// `raw` hold values shown as they are.
function fillTable(id, rows, empty, columns, raw) {
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
    values.forEach((v, i) => tr.append(cell(v, raw.includes(i))));
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

// The toll-fraud alerts: each with its time and sentence (translated by the server), and the
// acknowledge form cloned from the page's <template id="alert-ack"> (shown to admins only).
function renderAlerts(alerts) {
  const section = document.getElementById("alerts");
  if (!section || alerts === undefined) return;
  const list = section.querySelector("ul");
  const form = document.getElementById("alert-ack");
  list.replaceChildren();
  for (const a of alerts) {
    const li = document.createElement("li");
    li.className = "alert";
    li.dataset.id = a.id;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = a.when;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = a.text;
    li.append(when, " ", text);
    if (form) {
      const ack = form.content.firstElementChild.cloneNode(true);
      ack.action = ack.getAttribute("action").replace(/\/0\/acknowledge$/, "/" + a.id + "/acknowledge");
      li.append(" ", ack);
    }
    list.append(li);
  }
  section.hidden = alerts.length === 0;
}

function render(state) {
  renderAlerts(state.alerts);
  setText("reg-count", state.registrations.length);
  setText("call-count", state.calls.length);
  setText("calls-24h", state.calls_24h);
  setText("answered-24h", state.answered_24h);
  if (state.minutes_24h !== undefined) setText("minutes-24h", state.minutes_24h);
  // The plural phrases ("5 phones registered"), translated by the server; ids as in dashboard.html.
  const phrases = state.phrases || {};
  for (const key of ["phones", "calls_now", "calls_24h", "answered_24h", "minutes_24h"]) {
    if (phrases[key] !== undefined) setText(key.replace(/_/g, "-") + "-phrase", phrases[key]);
  }
  fillTable("calls", state.calls.map(c => [
    c.caller, c.answered_by || c.dialled, stateLabel(c), clock(c.duration),
    c.codecs.map(x => x || "–").join(" / "),
  ]), say("no_calls"), 5, [0, 1, 4]);
  fillTable("trunks", state.trunks.map(t => [
    t.name, t.server, trunkState(t), t.calls + " / " + (t.max_calls || "∞"),
  ]), say("no_trunks"), 4, [0, 1]);
  fillTable("registrations", state.registrations.map(r => [
    r.aor, r.user_agent || "–", r.source, say("seconds", r.expires_in),
  ]), say("no_registrations"), 4, [0, 1, 2]);
  const h = state.health;
  if (h.cpu_percent !== null) setText("cpu", say("percent", number(h.cpu_percent)));
  if (h.memory_total) {
    setText("mem", say("percent", Math.round(100 * h.memory_used / h.memory_total)));
  }
  const rows = document.querySelectorAll("#services tbody tr");
  state.services.forEach((s, i) => {
    const badge = rows[i] && rows[i].querySelector(".state");
    if (badge) { badge.textContent = stateLabel(s); badge.className = "state " + s.state; }
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
        button.textContent = say("copied");
      } catch (err) {
        const range = document.createRange();  // no clipboard (plain HTTP): select it instead
        range.selectNodeContents(document.getElementById(button.dataset.copy));
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = say("selected");
      }
    });
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  // Delegated, so that forms swapped in by `swap` behave the same.
  document.addEventListener("submit", event => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.inplace) {
      event.preventDefault();
      postInPlace(form, event.submitter);
    }
  });
  for (const table of document.querySelectorAll("table[data-reorder]")) reorderable(table);
});

// Replace the elements with these ids by the same elements of the page `response` holds (a
// live region keeps its element and takes the new content); false, with nothing replaced,
// when that page lacks one of them.
async function swap(response, ids) {
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = ids.map(id => page.getElementById(id));
  if ((!response.ok && response.status !== 400) || fresh.some(e => e === null)) return false;
  ids.forEach((id, i) => {
    const old = document.getElementById(id);
    if (!old) return;
    const copy = document.importNode(fresh[i], true);
    // A live region stays in place (screen readers announce what changes inside it).
    if (old.hasAttribute("aria-live")) old.replaceChildren(...copy.childNodes);
    else old.replaceWith(copy);
  });
  return true;
}

async function postInPlace(form, button) {
  const ids = form.dataset.inplace.split(/\s+/);
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
  let done = false;
  try {
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
    });
    done = await swap(response, ids);
  } catch (err) {
    done = false;
  }
  if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
  if (!done) form.submit();  // the page as it would load without JavaScript
}

function reorderable(table) {
  const body = table.tBodies[0];
  let dragged = null;
  const rowAt = target => {
    const element = target instanceof Element ? target : target.parentElement;
    const row = element && element.closest("tr[draggable]");
    return row && row.parentNode === body ? row : null;
  };
  const after = (row, y) => {
    const box = row.getBoundingClientRect();
    return y > box.top + box.height / 2;
  };
  const unmark = () => {
    for (const row of body.rows) row.classList.remove("drop-before", "drop-after");
  };
  body.addEventListener("dragstart", event => {
    dragged = rowAt(event.target);
    if (!dragged) return;
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.name);
  });
  body.addEventListener("dragover", event => {
    const row = dragged && rowAt(event.target);
    if (!row) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    unmark();
    if (row !== dragged) row.classList.add(after(row, event.clientY) ? "drop-after" : "drop-before");
  });
  body.addEventListener("drop", event => {
    const row = dragged && rowAt(event.target);
    if (!row) return;
    event.preventDefault();
    const rows = Array.from(body.querySelectorAll("tr[draggable]"));
    const from = rows.indexOf(dragged);
    let to = rows.indexOf(row) + (after(row, event.clientY) ? 1 : 0);
    if (to > from) to -= 1;
    unmark();
    if (row === dragged || to === from) return;
    const moved = dragged;
    body.insertBefore(moved, to > from ? rows[to].nextSibling : rows[to]);  // shown at once
    move(table, moved, to + 1);
  });
  body.addEventListener("dragend", () => {
    unmark();
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });
}

async function move(table, row, position) {
  const form = new FormData();
  form.append("csrf_token", document.querySelector("input[name=csrf_token]").value);
  form.append("position", String(position));
  let done = false;
  try {
    const response = await fetch(row.dataset.move, {
      method: "POST", body: form, credentials: "same-origin",
    });
    done = await swap(response, [table.id, "flashes"]);
  } catch (err) {
    done = false;
  }
  if (done) reorderable(document.getElementById(table.id));
  else window.location.reload();  // show the order as stored
}
