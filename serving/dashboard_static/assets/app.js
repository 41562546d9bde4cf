// The riskbento risk dashboard (serving/dashboard.py). No framework, no request to any
// other host: the model card from /model, the API schema from /docs.json, the aggregates
// from /dashboard/api/data, scoring through /predict and /predict_batch.
"use strict";

(() => {
  const TOKEN_KEY = "riskbento-token"; // sessionStorage: this tab only, gone when it closes
  const SOURCE_HEADER = "X-Riskbento-Source";
  const WHATIF_SOURCE = "dashboard-whatif";
  const CSV_SOURCE = "dashboard-csv";
  const TIERS = ["low", "medium", "high"];
  const COLORS = { low: "#2e7d32", medium: "#f9a825", high: "#c62828", training: "#546e7a" };
  const STATUS_COLORS = { ok: "#2e7d32", warn: "#f9a825", alert: "#c62828" };
  const CSV_ROWS_SHOWN = 200;

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    tokenRequired: document.body.dataset.tokenRequired === "true",
    card: null,
    fields: [],
    idColumn: null,
    batchLimit: 1000,
    actions: [],
    charts: {},
    lastWhatIf: null,
  };

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`dataset` and `text` handled) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fillTable(table, headers, rows) {
    table.replaceChildren(
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows),
    );
  }

  const fmt = {
    p: (v) => (typeof v === "number" ? v.toFixed(4) : "—"),
    share: (v) => (typeof v === "number" ? `${(100 * v).toFixed(1)} %` : "—"),
    num: (v, digits = 4) => (typeof v === "number" ? Number(v.toFixed(digits)).toString() : "—"),
    int: (v) => (typeof v === "number" ? v.toLocaleString("en") : "—"),
  };

  class Unauthorized extends Error {}

  /** One request to this server; the token (if any) as a Bearer header. */
  async function api(path, { method = "GET", body, source } = {}) {
    const headers = {};
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (source) headers[SOURCE_HEADER] = source;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const text = await response.text();
    let payload;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = { error: text };
    }
    if (response.status === 401) throw new Unauthorized((payload && payload.error) || "401");
    return { status: response.status, ok: response.ok, payload };
  }

  /** The API's 400 answer in a line: each refused field with the API's message. */
  function problem(payload) {
    if (!payload) return "no answer";
    const details = Array.isArray(payload.detail) ? payload.detail : [];
    if (!details.length) return String(payload.error || JSON.stringify(payload));
    return details
      .map((d) => {
        const loc = (d.loc || []).filter((part, i) => !(i < 2 && (part === "records" || Number.isInteger(part))));
        return `${loc.join(".") || "record"}: ${d.msg}`;
      })
      .join("; ");
  }

  // ------------------------------------------------------------ token

  function showGate(message) {
    $("main").hidden = true;
    $("token-gate").hidden = false;
    $("token-error").textContent = message || "";
    $("token-input").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token-input").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token-input").value = "";
    start();
  });

  // ------------------------------------------------------------ start

  async function start() {
    if (state.tokenRequired && !state.token) {
      showGate();
      return;
    }
    try {
      const [card, docs, form] = await Promise.all([
        api("/model"),
        api("/docs.json"),
        api("/dashboard/api/form"),
      ]);
      $("token-gate").hidden = true;
      $("main").hidden = false;
      state.card = card.payload;
      state.idColumn = form.payload.id_column;
      renderCard(card.payload);
      buildForm(docs.payload, form.payload);
      const data = await api("/dashboard/api/data");
      if (data.ok) renderData(data.payload);
      else $("data-error").textContent = problem(data.payload);
    } catch (err) {
      if (err instanceof Unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        state.token = null;
        showGate(`The server refused that token: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  // ------------------------------------------------------------ header

  function renderCard(card) {
    $("use-case").textContent = card.use_case;
    const facts = [
      ["Model", card.tag],
      ["Trained", card.created_at],
      ["Risk event", card.risk_event],
      ["Purpose", card.purpose],
      ["Champion", card.champion && `${card.champion.candidate} (${card.champion.family})`],
      ["Threshold", fmt.num(card.threshold && card.threshold.value)],
      ["Tiers", card.tiers && `low < ${card.tiers.medium} ≤ medium < ${card.tiers.high} ≤ high`],
      [
        "Costs",
        card.costs &&
          `missed event ${card.costs.missed_event} ${card.costs.unit}, false alarm ${card.costs.false_alarm} ${card.costs.unit}`,
      ],
    ];
    $("card-facts").replaceChildren(
      ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "—" })]),
    );
    const test = card.test || {};
    const metrics = ["roc_auc", "pr_auc", "brier", "ece", "precision", "recall", "f1", "cost_per_customer"];
    fillTable(
      $("metrics-table"),
      ["test split", ...metrics.map((m) => m.replace(/_/g, " "))],
      [el("tr", {}, el("th", { scope: "row", text: `${fmt.int(test.rows)} rows` }), metrics.map((m) => el("td", { text: fmt.num(test[m]) })))],
    );
    fillTable(
      $("hash-table"),
      ["file", "sha256"],
      Object.entries(card.data_sha256 || {}).map(([file, sha]) =>
        el("tr", {}, el("td", { text: file }), el("td", {}, el("code", { text: sha }))),
      ),
    );
  }

  // ------------------------------------------------------------ aggregates

  function chart(id, config) {
    if (state.charts[id]) state.charts[id].destroy();
    config.options = Object.assign(
      { animation: false, responsive: true, maintainAspectRatio: false },
      config.options || {},
    );
    state.charts[id] = new window.Chart($(id), config);
  }

  function renderData(data) {
    const log = data.log;
    const excluded = log.excluded || {};
    const others = Object.values(excluded.not_production || {}).reduce((a, b) => a + b, 0);
    $("data-stamp").textContent =
      `Aggregates of ${data.model_tag}, computed ${data.computed_at} from ${log.files.length} log file(s): ` +
      `${fmt.int(log.rows_counted)} production rows counted (${log.first || "—"} to ${log.last || "—"}); ` +
      `left out: ${fmt.int(excluded.shadow || 0)} shadow, ${fmt.int(others)} dashboard, ` +
      `${fmt.int(Object.values(excluded.other_models || {}).reduce((a, b) => a + b, 0))} other models, ` +
      `${fmt.int(log.skipped_lines)} unreadable lines.`;
    if (state.card && data.model_tag !== state.card.tag) {
      $("data-error").textContent = `These aggregates are for ${data.model_tag}; this server answers with ${state.card.tag}.`;
    }
    renderTiers(data.tier_mix);
    renderScores(data.scores);
    renderDrift(data.drift);
    renderActions(data.action_list);
    renderReasons(data.top_reasons);
  }

  function renderTiers(mix) {
    const days = mix.days.map((d) => d.day);
    const datasets = TIERS.flatMap((tier) => [
      {
        type: "bar",
        label: `${tier} (share of the day)`,
        data: mix.days.map((d) => (d.total ? d[tier] / d.total : 0)),
        backgroundColor: COLORS[tier],
      },
      {
        type: "line",
        label: `${tier} at training`,
        data: days.map(() => mix.training_shares[tier]),
        borderColor: COLORS[tier],
        borderDash: [6, 4],
        pointRadius: 0,
        fill: false,
      },
    ]);
    chart("tier-chart", {
      data: { labels: days, datasets },
      options: { scales: { y: { min: 0, max: 1, title: { display: true, text: "share" } } } },
    });
    const rows = mix.days.map((d) =>
      el(
        "tr",
        { dataset: { day: d.day, low: d.low, medium: d.medium, high: d.high, total: d.total } },
        el("th", { scope: "row", text: d.day }),
        TIERS.map((t) => el("td", { text: fmt.int(d[t]) })),
        el("td", { text: fmt.int(d.total) }),
        TIERS.map((t) => el("td", { text: fmt.share(d.total ? d[t] / d.total : null) })),
      ),
    );
    rows.push(
      el(
        "tr",
        { class: "reference" },
        el("th", { scope: "row", text: "training (test split)" }),
        TIERS.map(() => el("td", { text: "" })),
        el("td", { text: "" }),
        TIERS.map((t) => el("td", { text: fmt.share(mix.training_shares[t]) })),
      ),
    );
    fillTable($("tier-table"), ["day", ...TIERS, "total", ...TIERS.map((t) => `${t} %`)], rows);
  }

  function renderScores(scores) {
    const n = scores.observed.length;
    const labels = scores.observed.map((_, i) => `${scores.edges[i].toFixed(2)}–${scores.edges[i + 1].toFixed(2)}`);
    const lines = [
      ["threshold", scores.threshold, "#000"],
      ["medium", scores.tiers.medium, COLORS.medium],
      ["high", scores.tiers.high, COLORS.high],
    ];
    $("score-note").textContent =
      `Share of answers per probability bin; training: ${fmt.int(scores.training_rows)} test-split scores. ` +
      `Vertical lines: threshold ${fmt.num(scores.threshold)}, medium tier from ${scores.tiers.medium}, high from ${scores.tiers.high}.`;
    const marks = {
      id: "marks",
      afterDatasetsDraw(c) {
        const x = c.scales.x;
        const first = x.getPixelForValue(0);
        const step = n > 1 ? x.getPixelForValue(1) - first : x.width;
        const { ctx, chartArea } = c;
        for (const [index, [label, value, color]] of lines.entries()) {
          const px = first + (value * n - 0.5) * step;
          ctx.save();
          ctx.strokeStyle = color;
          ctx.setLineDash(label === "threshold" ? [] : [4, 3]);
          ctx.beginPath();
          ctx.moveTo(px, chartArea.top);
          ctx.lineTo(px, chartArea.bottom);
          ctx.stroke();
          ctx.fillStyle = color;
          ctx.fillText(label, px + 3, chartArea.top + 10 + 12 * index); // staggered: lines may be close
          ctx.restore();
        }
      },
    };
    const datasets = [{ label: "logged answers", data: scores.observed_share, backgroundColor: "#1565c0" }];
    if (scores.training_share) {
      datasets.push({ label: "training (test split)", data: scores.training_share, backgroundColor: "rgba(84,110,122,0.45)" });
    }
    chart("score-chart", {
      type: "bar",
      data: { labels, datasets },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "share" } } } },
      plugins: [marks],
    });
    fillTable(
      $("score-table"),
      ["probability", "answers", "share", "training share"],
      labels.map((label, i) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", text: label }),
          el("td", { text: fmt.int(scores.observed[i]) }),
          el("td", { text: fmt.share(scores.observed_share[i]) }),
          el("td", { text: scores.training_share ? fmt.share(scores.training_share[i]) : "—" }),
        ),
      ),
    );
  }

  function renderDrift(drift) {
    if (!drift.available) {
      $("drift-note").textContent = drift.why;
      $("drift-chart").parentElement.hidden = true;
      return;
    }
    const t = drift.thresholds || {};
    $("drift-note").textContent =
      `Latest drift run: ${drift.written_at} on ${fmt.int(drift.rows)} rows of ${drift.model_tag}` +
      (drift.window && drift.window.first ? ` (${drift.window.first} to ${drift.window.last})` : "") +
      `. PSI warn from ${t.psi_warn}, alert from ${t.psi_alert}. ` +
      (drift.drift_detected ? "Drift detected." : "No drift.");
    const columns = drift.columns;
    chart("drift-chart", {
      type: "bar",
      data: {
        labels: columns.map((c) => c.column),
        datasets: [{ label: "PSI", data: columns.map((c) => c.psi), backgroundColor: columns.map((c) => STATUS_COLORS[c.status]) }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } },
    });
    $("drift-chart").parentElement.style.height = `${Math.max(160, 24 * columns.length + 60)}px`;
    fillTable(
      $("drift-table"),
      ["column", "type", "PSI", "status"],
      columns.map((c) =>
        el(
          "tr",
          { dataset: { psi: c.psi, status: c.status } },
          el("th", { scope: "row", text: c.column }),
          el("td", { text: c.type }),
          el("td", { text: fmt.num(c.psi) }),
          el("td", {}, el("span", { class: `status ${c.status}`, text: c.status })),
        ),
      ),
    );
  }

  const reasonText = (c) => (c.reasons || []).map((r) => r.text).join(" | ");
  const adverseText = (c) => (c.adverse_reasons || []).map((r) => `${r.code}: ${r.text}`).join(" | ");

  function renderActions(list) {
    state.actions = list.customers;
    state.hasAdverse = list.customers.some((c) => Array.isArray(c.adverse_reasons));
    $("action-note").textContent =
      `${fmt.int(list.total)} customer(s) on the list (${list.criterion}), each with their latest answer` +
      (list.total > list.shown ? `; the ${fmt.int(list.shown)} most likely shown.` : ".");
    drawActions();
  }

  function shownActions() {
    const needle = $("action-filter").value.trim().toLowerCase();
    const rows = state.actions.filter(
      (c) => !needle || `${c.id} ${reasonText(c)} ${adverseText(c)}`.toLowerCase().includes(needle),
    );
    const [key, direction] = $("action-sort").value.split("-");
    const sign = direction === "asc" ? 1 : -1;
    const value = { probability: (c) => c.probability, id: (c) => String(c.id), answered: (c) => String(c.answered_at) }[key];
    return rows.sort((a, b) => (value(a) < value(b) ? -sign : value(a) > value(b) ? sign : 0));
  }

  function drawActions() {
    const headers = ["id", "probability", "tier", "answered at", "top reasons"];
    if (state.hasAdverse) headers.push("adverse-action reasons");
    fillTable(
      $("action-table"),
      headers,
      shownActions().map((c) =>
        el(
          "tr",
          { dataset: { id: c.id } },
          el("th", { scope: "row", text: c.id }),
          el("td", { text: fmt.p(c.probability) }),
          el("td", {}, el("span", { class: `tier ${c.risk_tier}`, text: c.risk_tier })),
          el("td", { text: c.answered_at }),
          el("td", { class: "text" }, el("ul", {}, (c.reasons || []).map((r) => el("li", { text: r.text })))),
          state.hasAdverse
            ? el("td", { class: "text" }, el("ul", {}, (c.adverse_reasons || []).map((r) => el("li", { text: `${r.code}: ${r.text}` }))))
            : null,
        ),
      ),
    );
  }

  $("action-filter").addEventListener("input", drawActions);
  $("action-sort").addEventListener("change", drawActions);
  $("action-download").addEventListener("click", () => {
    const header = [state.idColumn || "id", "probability", "risk_tier", "answered_at", "reasons"];
    if (state.hasAdverse) header.push("adverse_reasons");
    const rows = shownActions().map((c) => {
      const row = [c.id, c.probability, c.risk_tier, c.answered_at, reasonText(c)];
      if (state.hasAdverse) row.push(adverseText(c));
      return row;
    });
    download(`${state.card ? state.card.use_case : "riskbento"}-action-list.csv`, toCsv([header, ...rows]));
  });

  function renderReasons(top) {
    const features = top.features;
    $("reasons-note").textContent =
      `Among the ${fmt.int(top.high_tier_customers)} high-tier customers: how many have each feature among ` +
      "the reasons that raise their probability, and by how much on average (probability points).";
    chart("reasons-chart", {
      type: "bar",
      data: {
        labels: features.map((f) => f.feature),
        datasets: [{ label: "customers", data: features.map((f) => f.customers), backgroundColor: COLORS.high }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } },
    });
    $("reasons-chart").parentElement.style.height = `${Math.max(140, 26 * features.length + 60)}px`;
    fillTable(
      $("reasons-table"),
      ["feature", "customers", "share of high tier", "mean rise (points)"],
      features.map((f) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", text: f.feature }),
          el("td", { text: fmt.int(f.customers) }),
          el("td", { text: fmt.share(f.share) }),
          el("td", { text: fmt.num(100 * f.mean_effect, 2) }),
        ),
      ),
    );
  }

  // ------------------------------------------------------------ schema

  function resolve(docs, schema) {
    let s = schema;
    while (s && s.$ref) s = s.$ref.split("/").slice(1).reduce((node, key) => node[key], docs);
    return s;
  }

  /** The record fields of /predict from the OpenAPI document: types, ranges, levels. */
  function recordFields(docs) {
    const body = docs.paths["/predict"].post.requestBody.content["application/json"].schema;
    const record = resolve(docs, body);
    const required = new Set(record.required || []);
    return Object.entries(record.properties).map(([name, raw]) => {
      let prop = resolve(docs, raw);
      let nullable = false;
      if (prop.anyOf) {
        const kinds = prop.anyOf.map((p) => resolve(docs, p));
        nullable = kinds.some((p) => p.type === "null");
        prop = Object.assign({}, prop, kinds.find((p) => p.type !== "null"));
      }
      return {
        name,
        type: prop.type,
        levels: prop.enum || null,
        minimum: prop.minimum,
        maximum: prop.maximum,
        description: prop.description || raw.description || "",
        nullable,
        required: required.has(name),
      };
    });
  }

  function batchLimit(docs, fallback) {
    try {
      const body = resolve(docs, docs.paths["/predict_batch"].post.requestBody.content["application/json"].schema);
      return resolve(docs, body.properties.records).maxItems || fallback;
    } catch {
      return fallback;
    }
  }

  /** A cell or form value as the field's JSON type; text that is no number stays text,
   * so the API names the problem. */
  function typed(field, text) {
    const value = String(text ?? "").trim();
    if (value === "") return null;
    if (field.levels) {
      const match = field.levels.find((level) => String(level) === value);
      if (match !== undefined) return match;
    }
    if (field.type === "integer" || field.type === "number") {
      const number = Number(value);
      return value !== "" && Number.isFinite(number) ? number : value;
    }
    return value;
  }

  // ------------------------------------------------------------ what-if

  function buildForm(docs, form) {
    state.fields = recordFields(docs);
    state.batchLimit = Math.min(batchLimit(docs, form.max_batch_records), form.max_batch_records);
    $("csv-limit").textContent = fmt.int(state.batchLimit);
    const container = $("whatif-form");
    const inputs = state.fields.map((field) => {
      const id = `whatif-${field.name}`;
      let input;
      let typical = field.name === form.id_column ? "what-if" : form.typical[field.name];
      if (field.levels) {
        const options = field.levels.map((level) => el("option", { value: String(level), text: String(level) }));
        if (field.nullable) options.unshift(el("option", { value: "", text: "(blank)" }));
        input = el("select", { id, name: field.name }, options);
        if (typeof typical === "number") typical = field.levels.includes(Math.round(typical)) ? Math.round(typical) : typical;
      } else if (field.type === "integer" || field.type === "number") {
        input = el("input", {
          id,
          name: field.name,
          type: "number",
          step: field.type === "integer" ? "1" : "any",
          min: field.minimum,
          max: field.maximum,
        });
        if (field.type === "integer" && typeof typical === "number") typical = Math.round(typical);
      } else {
        input = el("input", { id, name: field.name, type: "text" });
      }
      input.value = typical === null || typical === undefined ? "" : String(typical);
      const range =
        field.minimum !== undefined || field.maximum !== undefined
          ? ` [${field.minimum ?? "−∞"}, ${field.maximum ?? "∞"}]`
          : "";
      return el(
        "div",
        { class: "field" },
        el("label", { for: id, text: `${field.name}${range}` }),
        input,
        el("small", { class: "muted", text: field.description }),
      );
    });
    container.replaceChildren(...inputs, el("button", { type: "submit", id: "whatif-score", text: "Score" }));
  }

  function whatIfRecord() {
    const record = {};
    for (const field of state.fields) {
      const value = typed(field, $(`whatif-${field.name}`).value);
      if (value !== null || field.nullable || field.required) record[field.name] = value;
    }
    return record;
  }

  $("whatif-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const record = whatIfRecord();
    $("whatif-request").textContent = JSON.stringify(record, null, 2);
    const result = $("whatif-result");
    let answer;
    try {
      answer = await api("/predict", { method: "POST", body: record, source: WHATIF_SOURCE });
    } catch (err) {
      if (err instanceof Unauthorized) return showGate(`The server refused the token: ${err.message}`);
      throw err;
    }
    if (!answer.ok) {
      result.replaceChildren(el("p", { class: "error", role: "alert", text: `Not scored (${answer.status}): ${problem(answer.payload)}` }));
      return;
    }
    const a = answer.payload;
    const before = state.lastWhatIf;
    const parts = [
      el(
        "p",
        { class: "headline" },
        "Probability ",
        el("strong", { id: "whatif-probability", text: fmt.p(a.probability) }),
        " · tier ",
        el("span", { class: `tier ${a.risk_tier}`, text: a.risk_tier }),
        ` · decision ${a.prediction ? "flag (1)" : "no flag (0)"}`,
      ),
    ];
    if (before) {
      const changed = state.fields
        .filter((f) => f.name !== state.idColumn && JSON.stringify(before.record[f.name]) !== JSON.stringify(record[f.name]))
        .map((f) => `${f.name} ${before.record[f.name] ?? "blank"} → ${record[f.name] ?? "blank"}`);
      const points = 100 * (a.probability - before.answer.probability);
      parts.push(
        el("p", {
          id: "whatif-move",
          class: "move",
          text:
            `Moved from ${fmt.p(before.answer.probability)} (${before.answer.risk_tier}) to ${fmt.p(a.probability)} (${a.risk_tier}): ` +
            `${points >= 0 ? "+" : ""}${points.toFixed(2)} points` +
            (changed.length ? ` after ${changed.join(", ")}.` : " (nothing changed)."),
        }),
      );
    }
    parts.push(el("h3", { text: "Reasons" }), el("ul", {}, (a.reasons || []).map((r) => el("li", { text: r.text }))));
    if (Array.isArray(a.adverse_reasons) && a.adverse_reasons.length) {
      parts.push(
        el("h3", { text: "Adverse-action reasons" }),
        el("ul", {}, a.adverse_reasons.map((r) => el("li", { text: `${r.code}: ${r.text}` }))),
      );
    }
    parts.push(
      el("h3", { text: "Warnings" }),
      (a.warnings || []).length ? el("ul", {}, a.warnings.map((w) => el("li", { text: w }))) : el("p", { class: "muted", text: "none" }),
    );
    result.replaceChildren(...parts);
    result.dataset.probability = String(a.probability);
    result.dataset.tier = a.risk_tier;
    state.lastWhatIf = { record, answer: a };
  });

  // ------------------------------------------------------------ CSV

  /** RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks. */
  function parseCsv(text) {
    const rows = [];
    let row = [];
    let cell = "";
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') {
          cell += '"';
          i++;
        } else if (ch === '"') quoted = false;
        else cell += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") {
        row.push(cell);
        cell = "";
      } else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i++;
        row.push(cell);
        rows.push(row);
        row = [];
        cell = "";
      } else cell += ch;
    }
    if (cell !== "" || row.length) {
      row.push(cell);
      rows.push(row);
    }
    return rows.filter((r) => r.length > 1 || r[0] !== "");
  }

  function toCsv(rows) {
    const quote = (v) => {
      let s = v === null || v === undefined ? "" : String(v);
      // A text cell a spreadsheet would run as a formula (an id like "=HYPERLINK(...)")
      // is written with a leading apostrophe; numbers, negative ones included, stay as sent.
      if (typeof v === "string" && /^[=+\-@\t\r]/.test(s) && Number.isNaN(Number(s))) s = `'${s}`;
      return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    return `${rows.map((r) => r.map(quote).join(",")).join("\r\n")}\r\n`;
  }

  function download(name, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const link = el("a", { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  /** Scores rows ({line, record}); a refused chunk is halved until the refused rows are
   * alone, so every good row is still scored. */
  async function scoreRows(rows, done) {
    if (!rows.length) return;
    const answer = await api("/predict_batch", {
      method: "POST",
      body: { records: rows.map((r) => r.record) },
      source: CSV_SOURCE,
    });
    if (answer.ok) {
      answer.payload.forEach((a, i) => done.good.push({ line: rows[i].line, answer: a }));
      done.sent += rows.length;
      return;
    }
    if (answer.status !== 400) throw new Error(`${answer.status}: ${problem(answer.payload)}`);
    if (rows.length === 1) {
      done.bad.push({ line: rows[0].line, id: rows[0].record[state.idColumn], message: problem(answer.payload) });
      done.sent += 1;
      return;
    }
    const half = Math.ceil(rows.length / 2);
    await scoreRows(rows.slice(0, half), done);
    await scoreRows(rows.slice(half), done);
  }

  $("csv-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const status = $("csv-status");
    const progress = $("csv-progress");
    $("csv-download").hidden = true;
    $("csv-bad").hidden = true;
    $("csv-table").replaceChildren();
    const table = parseCsv(await file.text());
    if (table.length < 2) {
      status.textContent = "The file has no data rows under a header row.";
      return;
    }
    const [header, ...body] = table;
    const fields = new Map(state.fields.map((f) => [f.name, f]));
    const ignored = header.filter((h) => !fields.has(h));
    const missing = state.fields.filter((f) => f.required && !header.includes(f.name)).map((f) => f.name);
    const rows = body.map((cells, i) => {
      const record = {};
      header.forEach((name, j) => {
        if (fields.has(name)) record[name] = typed(fields.get(name), cells[j]);
      });
      return { line: i + 2, record };
    });
    const done = { good: [], bad: [], sent: 0 };
    progress.max = rows.length;
    progress.value = 0;
    progress.hidden = false;
    const notes = [];
    if (ignored.length) notes.push(`columns not in the API, ignored: ${ignored.join(", ")}`);
    if (missing.length) notes.push(`required columns missing: ${missing.join(", ")}`);
    try {
      for (let start = 0; start < rows.length; start += state.batchLimit) {
        await scoreRows(rows.slice(start, start + state.batchLimit), done);
        progress.value = done.sent;
        status.textContent = `Scored ${fmt.int(done.good.length)} of ${fmt.int(rows.length)} rows…`;
      }
    } catch (err) {
      if (err instanceof Unauthorized) return showGate(`The server refused the token: ${err.message}`);
      status.textContent = `Stopped: ${err.message}`;
      return;
    }
    done.good.sort((a, b) => a.line - b.line);
    done.bad.sort((a, b) => a.line - b.line);
    status.textContent =
      `${fmt.int(done.good.length)} of ${fmt.int(rows.length)} rows scored, ${fmt.int(done.bad.length)} refused.` +
      (notes.length ? ` Note: ${notes.join("; ")}.` : "");
    status.dataset.scored = done.good.length;
    status.dataset.refused = done.bad.length;
    renderCsv(done);
  });

  function renderCsv(done) {
    const id = state.idColumn;
    fillTable(
      $("csv-table"),
      ["line", id, "probability", "prediction", "tier", "top reasons", "warnings"],
      done.good.slice(0, CSV_ROWS_SHOWN).map(({ line, answer: a }) =>
        el(
          "tr",
          { dataset: { line, probability: a.probability } },
          el("td", { text: line }),
          el("th", { scope: "row", text: a[id] }),
          el("td", { text: fmt.p(a.probability) }),
          el("td", { text: a.prediction }),
          el("td", {}, el("span", { class: `tier ${a.risk_tier}`, text: a.risk_tier })),
          el("td", { class: "text", text: reasonText(a) }),
          el("td", { class: "text", text: (a.warnings || []).join(" | ") }),
        ),
      ),
    );
    if (done.bad.length) {
      $("csv-bad").hidden = false;
      fillTable(
        $("csv-bad-table"),
        ["line", id, "the API's message"],
        done.bad.map((b) =>
          el("tr", { dataset: { line: b.line } }, el("td", { text: b.line }), el("td", { text: b.id ?? "" }), el("td", { class: "text", text: b.message })),
        ),
      );
    }
    const button = $("csv-download");
    button.hidden = !done.good.length;
    button.onclick = () => {
      const adverse = done.good.some((g) => Array.isArray(g.answer.adverse_reasons));
      const header = [id, "probability", "prediction", "risk_tier", "reasons", ...(adverse ? ["adverse_reasons"] : []), "warnings", "model"];
      const rows = done.good.map(({ answer: a }) => [
        a[id],
        a.probability,
        a.prediction,
        a.risk_tier,
        reasonText(a),
        ...(adverse ? [adverseText(a)] : []),
        (a.warnings || []).join(" | "),
        a.model,
      ]);
      download(`${state.card ? state.card.use_case : "riskbento"}-scored.csv`, toCsv([header, ...rows]));
    };
  }

  start();
})();
