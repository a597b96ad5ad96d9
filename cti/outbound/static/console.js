// Preview dialing: the next follow-ups with the customer and the reasons, one click to dial,
// the outcome form keyed by the attempt the dial returned (never a typed customer id).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let current = null; // {attempt_id, followup_id, customer_id}

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function el(tag, cls, value) { const e = document.createElement(tag); if (cls) e.className = cls; return text(e, value); }

  async function api(method, url, body) {
    const r = await fetch(url, { method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.error || r.statusText); e.data = data; throw e; }
    return data;
  }

  function name(c) { return `${c.family_name}${c.given_name} ${c.title}`.trim(); }

  async function load() {
    const box = $("followups");
    box.replaceChildren();
    const data = await api("GET", "/api/outbound/next");
    if (!data.followups.length) box.append(el("p", "empty", "No follow-up due."));
    for (const p of data.followups) {
      const div = el("div", "fu");
      div.dataset.followup = p.followup.id;
      div.append(el("strong", "customer", name(p.customer)), el("span", "dealer", p.customer.dealer ? ` · ${p.customer.dealer}` : ""));
      div.append(el("p", "reasons", p.followup.reasons.join(" · ")));
      for (const ph of p.phones) {
        const row = el("div", "phone");
        const b = el("button", "dial", `Call ${ph.e164}`);
        b.disabled = !ph.allowed || current !== null;
        b.addEventListener("click", () => dial(p, ph.e164));
        row.append(b);
        for (const why of ph.blocked) row.append(el("div", "blocked", why.message));
        div.append(row);
      }
      box.append(div);
    }
  }

  async function dial(p, phone) {
    text($("error"), "");
    $("saved").classList.add("hidden");
    try {
      const d = await api("POST", `/api/outbound/followups/${p.followup.id}/dial`, { phone });
      current = d;
      text($("current-customer"), name(p.customer));
      text($("current-reasons"), d.reasons.join(" · "));
      text($("current-phone"), d.phone);
      text($("current-state"), "dialing…");
      $("current").classList.remove("hidden");
      $("current").dataset.attempt = d.attempt_id;
    } catch (e) {
      text($("error"), e.data && e.data.blocked ? e.data.blocked.map((b) => b.message).join("; ") : e.message);
    }
    await load();
  }

  $("outcome-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!current) return;
    try {
      await api("POST", `/api/outbound/attempts/${current.attempt_id}/outcome`, {
        outcome: $("outcome").value, notes: $("notes").value, new_need: $("new-need").value || null,
        opt_out: $("opt-out").checked });
      current = null;
      $("current").classList.add("hidden");
      $("outcome-form").reset();
      $("saved").classList.remove("hidden");
    } catch (e) { text($("error"), e.message); }
    await load();
  });

  load().catch((e) => text($("error"), e.message));
})();
