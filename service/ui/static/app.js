// The page: fills the form from /api/models and /api/methods, starts a run, follows its events, draws results.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const state = { run: null, events: null, poll: null, methods: [] };

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(error) {  // {code, message, field}: a status and a message, never a stack trace
  const box = $("#error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = [error.code, error.field, error.message].filter(Boolean).join(": ");
  box.hidden = false;
}

async function getJSON(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (failure) {
    throw { code: "UNAVAILABLE", message: "the page's server does not answer" };
  }
  const body = await response.json().catch(() => ({ error: { code: `HTTP ${response.status}`, message: response.statusText } }));
  if (!response.ok) throw body.error || { code: `HTTP ${response.status}`, message: response.statusText };
  return body;
}

// --- the form ----------------------------------------------------------------------------------------------
async function load() {
  try {
    const [models, methods] = await Promise.all([getJSON("/api/models"), getJSON("/api/methods")]);
    const select = $("#model");
    for (const model of models.models) {
      select.append(element("option", { value: model.name, text: model.name }));
    }
    select.addEventListener("change", () => describeModel(models.models));
    describeModel(models.models);
    state.methods = methods.methods;
    $("#methods").replaceChildren(...methods.methods.map(methodFieldset));
  } catch (error) {
    showError(error);
  }
}

function describeModel(models) {
  const model = models.find((m) => m.name === $("#model").value);
  $("#model-info").textContent = model ? `${model.width}×${model.height} input, ${model.num_classes} classes. ${model.description}` : "";
}

function methodFieldset(method) {
  const toggle = element("input", { type: "checkbox", name: "method", value: method.name, id: `method-${method.name}` });
  toggle.checked = method.name === "occlusion";
  const params = element("div", { class: "params", hidden: !toggle.checked });
  toggle.addEventListener("change", () => { params.hidden = !toggle.checked; });
  for (const param of method.parameters) {
    const id = `param-${method.name}-${param.name}`;
    const input = param.type === "bool"
      ? element("input", { type: "checkbox", id, "data-param": param.name, "data-default": param.default })
      : element("input", { type: "text", id, "data-param": param.name, "data-default": param.default, value: param.default });
    if (param.type === "bool") input.checked = param.default === "True" || param.default === "true";
    params.append(element("label", { for: id, title: param.description, text: `${param.name} (${param.type})` }), input);
  }
  params.append(element("p", { class: "hint cost", text: `cost: ${method.cost}` }));
  return element("fieldset", { class: "method", "data-method": method.name, title: method.description }, [
    element("legend", {}, [toggle, element("label", { for: toggle.id, text: method.name, style: "display:inline" })]),
    params,
  ]);
}

function chosenMethods() {  // only the parameters changed from their defaults travel
  const chosen = [];
  for (const fieldset of document.querySelectorAll("fieldset.method")) {
    if (!$("input[name=method]", fieldset).checked) continue;
    const params = {};
    for (const input of fieldset.querySelectorAll("input[data-param]")) {
      const fallback = input.dataset.default;
      if (input.type === "checkbox") {
        if (input.checked !== (fallback === "True" || fallback === "true")) params[input.dataset.param] = input.checked;
      } else if (input.value.trim() !== "" && input.value.trim() !== fallback) {
        params[input.dataset.param] = input.value.trim();
      }
    }
    chosen.push({ name: fieldset.dataset.method, params });
  }
  return chosen;
}

function setupDrop() {
  const drop = $("#drop"), input = $("#image");
  const preview = () => {
    const file = input.files[0];
    $("#drop-text").textContent = file ? `${file.name} (${file.size} bytes)` : "Drop an image here, or choose a file.";
    const picture = $("#preview");
    if (file && file.type.startsWith("image/")) { picture.src = URL.createObjectURL(file); picture.hidden = false; }
    else picture.hidden = true;
  };
  input.addEventListener("change", preview);
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) { input.files = event.dataTransfer.files; preview(); }
  });
}

// --- a run ---------------------------------------------------------------------------------------------------
async function start(event) {
  event.preventDefault();
  showError(null);
  const file = $("#image").files[0];
  if (!file) { showError({ code: "INVALID_ARGUMENT", field: "image", message: "choose an image file (PNG or JPEG)" }); return; }
  const form = new FormData();
  form.append("model", $("#model").value);
  form.append("image", file, file.name);
  form.append("seed", $("#seed").value.trim());
  form.append("methods", JSON.stringify(chosenMethods()));
  $("#run").disabled = true;
  try {
    const run = await getJSON("/api/runs", { method: "POST", body: form });
    state.run = run;
    $("#cancel").disabled = false;
    $("#results").replaceChildren(...run.methods.map((m) => element("article", { class: "result", "data-method": m.name })));
    draw(run);
    follow(run.id);
  } catch (error) {
    showError(error);
    $("#run").disabled = false;
  }
}

function follow(id) {  // server-sent events; polling when the browser or a proxy drops them
  const events = new EventSource(`/api/runs/${id}/events`);
  state.events = events;
  events.onmessage = (message) => draw(JSON.parse(message.data));
  events.onerror = () => {
    events.close();
    if (state.run && state.run.id === id && !state.run.finished) poll(id);
  };
}

function poll(id) {
  state.poll = setTimeout(async () => {
    try { draw(await getJSON(`/api/runs/${id}`)); } catch (error) { showError(error); return; }
    if (!state.run.finished) poll(id);
  }, 300);
}

async function cancel() {
  if (!state.run) return;
  $("#cancel").disabled = true;
  try { draw(await getJSON(`/api/runs/${state.run.id}/cancel`, { method: "POST" })); } catch (error) { showError(error); }
}

function draw(run) {
  state.run = run;
  const progress = $("#progress");
  progress.value = run.percent;
  progress.dataset.percent = run.percent;
  $("#progress-text").textContent = `${run.percent.toFixed(0)}%` + (run.finished ? (run.cancelled ? " — cancelled" : " — finished") : "");
  $("#run-info").textContent = `model ${run.model}, seed ${run.seed}, ${run.elapsed_s.toFixed(1)} s`;
  $("#run-info").dataset.seed = run.seed;
  for (const method of run.methods) {
    const card = document.querySelector(`.result[data-method="${method.name}"]`);
    if (card) card.replaceChildren(...methodCard(method));
    if (card) card.dataset.status = method.status;
  }
  if (run.finished) {
    if (state.events) state.events.close();
    $("#run").disabled = false;
    $("#cancel").disabled = true;
  }
}

const fixed = (value, digits = 4) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

function row(name, key, value, text) {
  return element("tr", {}, [element("th", { text: name }),
    element("td", { class: "value", "data-key": key, "data-value": value === null || value === undefined ? null : String(value), text })]);
}

function methodCard(method) {
  const parts = [element("h3", {}, [method.name, element("span", { class: "status", text: method.status })])];
  if (method.status === "running" || method.status === "queued") {
    const bar = element("progress", { max: method.total || 1, value: method.done });
    parts.push(bar, element("p", { class: "hint", text: `${method.stage || "waiting"} ${method.done}/${method.total}` }));
  }
  if (method.error) {
    const { code, field, message } = method.error;
    parts.push(element("p", { class: "error", role: "alert", text: [code, field, message].filter(Boolean).join(": ") }));
  }
  const result = method.result;
  if (result) {
    parts.push(element("img", { class: "overlay", src: result.overlay, alt: `${method.name} map over the image` }));
    const rows = [row("class", "class", result.class_index, `${result.class_index} ${result.label}`),
      row("class score", "score", result.score, fixed(result.score))];
    for (const [name, metric] of Object.entries(result.metrics)) {
      const text = fixed(metric.score) + (metric.standard_error === null ? "" : ` ± ${fixed(metric.standard_error)}`);
      rows.push(row(name + (name === "deletion" ? " (lower is better)" : ""), `metric-${name}`, metric.score, text));
    }
    rows.push(row("reliability", "reliability", result.reliability, result.reliability === null ? "exact (deterministic)" : fixed(result.reliability, 3)));
    if (result.samples !== null) {
      rows.push(row("samples", "samples", result.samples, `${result.samples} of ${result.max_samples} (stopped by ${result.stop_reason})`));
    }
    rows.push(
      row("forward passes", "forward_passes", result.forward_passes, String(result.forward_passes)),
      row("time", "time_ms", result.time_ms, `${fixed(result.time_ms, 0)} ms`),
      row("seed", "seed", result.seed, String(result.seed)));
    parts.push(element("table", {}, [element("tbody", {}, rows)]));
  }
  return parts;
}

$("#run-form").addEventListener("submit", start);
$("#cancel").addEventListener("click", cancel);
setupDrop();
load();
