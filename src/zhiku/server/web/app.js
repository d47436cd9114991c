// zhiku web UI: plain JavaScript, no build step, nothing loaded from outside this server.
"use strict";

const I18N = {
  zh: {
    kb: "知识库", nav_chat: "对话", nav_docs: "文档", nav_search: "检索测试", nav_evals: "评测",
    key: "API 密钥", new_chat: "新对话", ask_placeholder: "提一个问题……", no_llm: "不用模型（摘录）",
    ask: "提问", drop: "选择或拖入文件（.md .txt .pdf .docx .html …）", upload: "上传", resync: "重新同步",
    source: "来源", format: "格式", chunks: "块数", size: "大小", manage_kbs: "管理知识库", kb_name: "名称",
    create: "创建", delete_kb: "删除当前知识库", search_placeholder: "检索词或问题", search: "检索",
    score: "分数", lexical: "词法名次", vector: "向量名次", text: "文本", run: "运行", dataset: "数据集",
    accuracy: "准确率", refusal: "拒答", eval_hint: "用 zhiku eval DATASET --kb 名称 生成评测运行。",
    delete: "删除", open: "查看报告", no_kb: "还没有知识库：在“文档”页创建一个并上传文件。",
    key_prompt: "这个服务器需要 API 密钥（zk_…）：", refused: "无法从资料中回答", sources: "引用",
    searched_for: "检索：", thinking: "检索并生成中……", uploading: "上传中", ingesting: "入库中",
    done: "完成", failed: "失败", confirm_delete: "确定删除 {x}？", no_docs: "还没有文档。",
    no_runs: "还没有评测运行。", hits: "{n} 条结果，用时 {t} 秒，检索词：{terms}", queue: "生成队列：{a} 进行 · {w} 等待",
    rejected: "被拒绝", cut: "回答被中断，未保存。", timing: "首字 {f} 秒 · 共 {t} 秒",
  },
  en: {
    kb: "Knowledge base", nav_chat: "Chat", nav_docs: "Documents", nav_search: "Search test", nav_evals: "Evals",
    key: "API key", new_chat: "New chat", ask_placeholder: "Ask a question…", no_llm: "No model (extractive)",
    ask: "Ask", drop: "Choose or drop files (.md .txt .pdf .docx .html …)", upload: "Upload", resync: "Re-sync",
    source: "Source", format: "Format", chunks: "Chunks", size: "Size", manage_kbs: "Manage knowledge bases",
    kb_name: "name", create: "Create", delete_kb: "Delete this knowledge base", search_placeholder: "Terms or a question",
    search: "Search", score: "Score", lexical: "Lexical rank", vector: "Vector rank", text: "Text", run: "Run",
    dataset: "Dataset", accuracy: "Accuracy", refusal: "Refusal",
    eval_hint: "Create eval runs with: zhiku eval DATASET --kb NAME", delete: "Delete", open: "Open report",
    no_kb: "No knowledge base yet: create one on the Documents page and upload files.",
    key_prompt: "This server needs an API key (zk_…):", refused: "Not answerable from the files", sources: "Sources",
    searched_for: "searched for: ", thinking: "Searching and writing…", uploading: "Uploading", ingesting: "Ingesting",
    done: "Done", failed: "Failed", confirm_delete: "Delete {x}?", no_docs: "No documents yet.",
    no_runs: "No eval runs yet.", hits: "{n} hits in {t} s, terms: {terms}", queue: "generation: {a} active · {w} waiting",
    rejected: "rejected", cut: "The answer was cut off and is not saved.", timing: "first token {f} s · total {t} s",
  },
};

const state = {
  lang: localStorage.getItem("zhiku.lang") || ((navigator.language || "zh").startsWith("zh") ? "zh" : "en"),
  key: localStorage.getItem("zhiku.key") || "",
  kb: localStorage.getItem("zhiku.kb") || "",
  conv: null,
};

const $ = (sel) => document.querySelector(sel);
const t = (key, vars = {}) => (I18N[state.lang][key] || key).replace(/\{(\w+)\}/g, (_, v) => vars[v] ?? "");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function translate() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
  $("#lang-btn").textContent = state.lang === "zh" ? "EN" : "中文";
}

function banner(message) {
  const b = $("#banner");
  b.textContent = message || "";
  b.hidden = !message;
}

// ---- API -----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.hint = body.hint || "";
  }
}

function headers(extra = {}) {
  return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra;
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const init = { method, headers: headers(body && !(body instanceof FormData) ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = body instanceof FormData ? body : JSON.stringify(body);
  const r = await fetch(path, init);
  if (!r.ok) {
    let data = {};
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (r.status === 401) askForKey(data.error);
    throw new ApiError(r.status, data);
  }
  return raw ? r.text() : r.json();
}

function showError(err) {
  banner(err.hint ? `${err.message} — ${err.hint}` : err.message);
}

// Server-Sent Events over fetch (EventSource cannot send the Authorization header).
async function streamEvents(path, body, onEvent) {
  const r = await fetch(path, {
    method: body ? "POST" : "GET",
    headers: headers(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) {
    let data = {};
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (r.status === 401) askForKey(data.error);
    throw new ApiError(r.status, data);
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}

function askForKey(reason) {
  const given = window.prompt(`${reason ? reason + "\n" : ""}${t("key_prompt")}`, state.key);
  if (given !== null) {
    state.key = given.trim();
    localStorage.setItem("zhiku.key", state.key);
    loadKbs();
  }
}

// ---- knowledge bases ---------------------------------------------------------------------------------
const kbPath = (rest = "") => `/api/kbs/${encodeURIComponent(state.kb)}${rest}`;

async function loadKbs() {
  try {
    const kbs = await api("/api/kbs");
    const select = $("#kb-select");
    select.replaceChildren(...kbs.map((k) => el("option", { value: k.name }, `${k.name} (${k.documents})`)));
    if (!kbs.some((k) => k.name === state.kb)) state.kb = kbs.length ? kbs[0].name : "";
    select.value = state.kb;
    banner(kbs.length ? "" : t("no_kb"));
    showPage();
  } catch (err) {
    showError(err);
  }
}

function chooseKb(name) {
  state.kb = name;
  state.conv = null;
  localStorage.setItem("zhiku.kb", name);
  showPage();
}

// ---- pages ------------------------------------------------------------------------------------------
function showPage() {
  const page = (location.hash || "#chat").slice(1);
  if (state.kb) banner("");
  document.querySelectorAll(".page").forEach((p) => { p.hidden = p.id !== `page-${page}`; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (!state.kb) return;
  ({ chat: loadConversations, docs: loadDocs, search: () => {}, evals: loadEvals })[page]?.();
}

// ---- chat -------------------------------------------------------------------------------------------
async function loadConversations() {
  try {
    const convs = await api(kbPath("/conversations"));
    $("#conv-list").replaceChildren(...convs.map((c) => el("li", { class: c.id === state.conv ? "active" : "" },
      el("a", { href: "#chat", "data-conv": c.id, onclick: (e) => { e.preventDefault(); openConversation(c.id); } },
        c.title || c.id),
      el("button", { type: "button", class: "icon", title: t("delete"), "aria-label": t("delete"),
        onclick: () => deleteConversation(c.id) }, "×"))));
  } catch (err) {
    showError(err);
  }
}

async function openConversation(cid) {
  state.conv = cid;
  const conv = await api(kbPath(`/conversations/${cid}`));
  $("#messages").replaceChildren();
  for (const turn of conv.turns) {
    addMessage("user", turn.question);
    renderAnswer(addMessage("bot", ""), { answer: turn.answer, refused: turn.refused, citations: turn.citations });
  }
  loadConversations();
}

async function deleteConversation(cid) {
  if (!window.confirm(t("confirm_delete", { x: cid }))) return;
  await api(kbPath(`/conversations/${cid}`), { method: "DELETE" }).catch(showError);
  if (state.conv === cid) { state.conv = null; $("#messages").replaceChildren(); }
  loadConversations();
}

function addMessage(who, text) {
  const node = el("div", { class: `msg ${who}` }, el("div", { class: "text" }, text));
  $("#messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

// The answer's [n] markers become buttons that open the cited passage.
function renderAnswer(node, answer) {
  const byN = new Map((answer.citations || []).map((c) => [c.n, c]));
  const text = el("div", { class: "text" });
  const parts = (answer.answer || "").split(/(\[\d+\])/);
  for (const part of parts) {
    const m = part.match(/^\[(\d+)\]$/);
    const c = m && byN.get(Number(m[1]));
    text.append(c ? el("button", { type: "button", class: "cite", "data-n": m[1], title: c.source,
      onclick: () => openPassage(c) }, `[${m[1]}]`) : document.createTextNode(part));
  }
  const children = [];
  if (answer.standalone_question && answer.standalone_question !== answer.question && answer.question) {
    children.push(el("p", { class: "muted" }, t("searched_for") + answer.standalone_question));
  }
  if (answer.refused) children.push(el("p", { class: "refused" }, t("refused")));
  children.push(text);
  if (byN.size) {
    children.push(el("ol", { class: "sources" }, [...byN.values()].map((c) => el("li", { value: c.n },
      el("button", { type: "button", class: "link", onclick: () => openPassage(c) },
        [c.source, ...(c.heading_path || [])].join(" › ")),
      el("span", { class: "muted" }, ` ${c.excerpt || ""}`)))));
  }
  const tm = answer.timings;
  if (tm && tm.total_s !== undefined) {
    children.push(el("p", { class: "muted timing" }, t("timing", { f: (tm.first_token_s ?? 0).toFixed(1), t: tm.total_s.toFixed(1) })));
  }
  node.replaceChildren(...children);
}

async function openPassage(citation) {
  const panel = $("#passage");
  try {
    const ids = citation.chunk_ids && citation.chunk_ids.length ? citation.chunk_ids : [citation.chunk_id];
    const p = await api(kbPath(`/passages/${encodeURIComponent(ids[0])}`));
    $("#passage-title").textContent = `[${citation.n}] ${p.source}`;
    $("#passage-heading").textContent = p.heading_path.join(" › ");
    $("#passage-body").replaceChildren(el("span", { class: "muted" }, p.before), el("mark", {}, p.text),
      el("span", { class: "muted" }, p.after));
    panel.hidden = false;
    panel.querySelector("mark").scrollIntoView({ block: "center" });
  } catch (err) {
    showError(err);
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("#question").value.trim();
  if (!question || !state.kb) return;
  banner("");
  $("#question").value = "";
  $("#ask-btn").disabled = true;
  addMessage("user", question);
  const node = addMessage("bot", t("thinking"));
  node.classList.add("streaming");
  const textNode = node.querySelector(".text");
  let streamed = "";
  try {
    if (!state.conv) {
      const conv = await api(kbPath("/conversations"), { method: "POST", body: { title: question.slice(0, 80) } });
      state.conv = conv.id;
    }
    await streamEvents(kbPath(`/conversations/${state.conv}/ask`), { question, stream: true, no_llm: $("#no-llm").checked },
      (name, data) => {
        if (name === "token") {
          streamed += data.text;
          textNode.textContent = streamed;
        } else if (name === "answer") {
          renderAnswer(node, data);
          if (data.partial && data.error) node.append(el("p", { class: "refused" }, t("cut")));
        } else if (name === "error") {
          node.append(el("p", { class: "refused" }, `${data.error} ${data.hint || ""}`));
        }
      });
  } catch (err) {
    showError(err);
  } finally {
    node.classList.remove("streaming");
    $("#ask-btn").disabled = false;
    loadConversations();
  }
}

// ---- documents ------------------------------------------------------------------------------------
const fmtBytes = (n) => (n > 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

async function loadDocs() {
  try {
    const docs = await api(kbPath("/documents"));
    $("#doc-rows").replaceChildren(...(docs.length ? docs.map((d) => el("tr", {},
      el("td", {}, d.source), el("td", {}, d.format), el("td", { class: "num" }, d.chunks),
      el("td", { class: "num" }, fmtBytes(d.bytes)),
      el("td", {}, el("button", { type: "button", class: "danger small", onclick: () => deleteDoc(d.source) }, t("delete")))))
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("no_docs")))]));
  } catch (err) {
    showError(err);
  }
}

async function deleteDoc(source) {
  if (!window.confirm(t("confirm_delete", { x: source }))) return;
  await api(kbPath(`/documents?source=${encodeURIComponent(source)}`), { method: "DELETE" }).catch(showError);
  loadDocs();
}

// Upload with byte progress (XMLHttpRequest reports it; fetch does not), then follow the job.
function upload(event) {
  event.preventDefault();
  const files = $("#files").files;
  if (!files.length || !state.kb) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const bar = $("#upload-bar");
  $("#upload-progress").hidden = false;
  $("#upload-files").replaceChildren();
  $("#upload-status").textContent = t("uploading");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", kbPath("/documents"));
  if (state.key) xhr.setRequestHeader("Authorization", `Bearer ${state.key}`);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (50 * e.loaded) / e.total; };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status !== 202) {
      showError(new ApiError(xhr.status, body));
      $("#upload-status").textContent = t("failed");
      return;
    }
    $("#files").value = "";
    followJob(body.job);
  };
  xhr.onerror = () => showError(new Error("upload failed: network error"));
  xhr.send(form);
}

function showJob(job) {
  const bar = $("#upload-bar");
  const total = Math.max(1, job.files_total);
  bar.value = job.state === "done" || job.state === "failed" ? 100 : 50 + (50 * job.files_done) / total;
  const label = { queued: t("ingesting"), running: t("ingesting"), done: t("done"), failed: t("failed") }[job.state];
  $("#upload-status").textContent = `${label} ${job.files_done}/${job.files_total} ${job.current || ""}`;
  $("#upload-status").dataset.state = job.state;
  const rows = job.files.map((f) => el("li", { class: f.status }, `${f.source}: ${f.status}${f.chunks ? ` (${f.chunks})` : ""}${f.reason ? ` — ${f.reason}` : ""}`));
  rows.push(...job.rejected.map((r) => el("li", { class: "skipped" }, `${r.name}: ${t("rejected")} — ${r.reason}`)));
  if (job.error) rows.push(el("li", { class: "skipped" }, `${job.error.error} ${job.error.hint}`));
  $("#upload-files").replaceChildren(...rows);
}

async function followJob(job) {
  showJob(job);
  try {
    await streamEvents(`/api/jobs/${job.id}/events`, null, (name, data) => showJob(data));
  } catch (err) {
    showError(err);
  }
  loadDocs();
  loadKbs();
}

async function resync() {
  try {
    $("#upload-progress").hidden = false;
    const { job } = await api(kbPath("/sync"), { method: "POST", body: {} });
    followJob(job);
  } catch (err) {
    showError(err);
  }
}

async function createKb(event) {
  event.preventDefault();
  const name = $("#new-kb").value.trim();
  if (!name) return;
  try {
    await api("/api/kbs", { method: "POST", body: { name } });
    $("#new-kb").value = "";
    chooseKb(name);
    loadKbs();
  } catch (err) {
    showError(err);
  }
}

async function deleteKb() {
  if (!state.kb || !window.confirm(t("confirm_delete", { x: state.kb }))) return;
  try {
    await api(kbPath(""), { method: "DELETE" });
    state.kb = "";
    loadKbs();
  } catch (err) {
    showError(err);
  }
}

// ---- search test: the same search chat uses, with each hit's trace -----------------------------------
function highlighted(text, spans) {
  const out = [];
  let at = 0;
  for (const [s, e] of spans || []) {
    if (s < at) continue;
    out.push(text.slice(at, s), el("mark", {}, text.slice(s, e)));
    at = e;
  }
  out.push(text.slice(at));
  return out;
}

async function search(event) {
  event.preventDefault();
  const query = $("#search-q").value.trim();
  if (!query || !state.kb) return;
  try {
    const r = await api(kbPath("/search"), { method: "POST",
      body: { query, mode: $("#search-mode").value, k: Number($("#search-k").value) || 10 } });
    const secs = Object.values(r.timings || {}).reduce((a, b) => a + b, 0);
    $("#search-meta").textContent = t("hits", { n: r.hits.length, t: secs.toFixed(3), terms: (r.terms || []).join(" ") });
    $("#search-rows").replaceChildren(...r.hits.map((h) => el("tr", {},
      el("td", { class: "num" }, h.rank), el("td", { class: "num" }, h.score.toFixed(4)),
      el("td", { class: "num lexical-rank" }, h.trace.lexical_rank ?? "–"),
      el("td", { class: "num vector-rank" }, h.trace.vector_rank ?? "–"),
      el("td", {}, [h.source, ...h.heading_path].join(" › ")),
      el("td", { class: "hit-text" }, highlighted(h.text, h.highlights)))));
  } catch (err) {
    showError(err);
  }
}

// ---- eval runs --------------------------------------------------------------------------------------
const fmt = (v) => (typeof v === "number" ? v.toFixed(3) : "–");

async function loadEvals() {
  try {
    const runs = (await api(kbPath("/evals"))).reverse();
    $("#eval-rows").replaceChildren(...(runs.length ? runs.map((r) => el("tr", {},
      el("td", {}, r.id), el("td", {}, r.dataset), el("td", { class: "num" }, fmt(r.metrics["hit@5"])),
      el("td", { class: "num" }, fmt(r.metrics.mrr)), el("td", { class: "num" }, fmt(r.metrics.accuracy)),
      el("td", { class: "num" }, fmt(r.metrics.refusal)),
      el("td", {}, el("button", { type: "button", class: "small", onclick: () => openReport(r.id) }, t("open")))))
      : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("no_runs")))]));
  } catch (err) {
    showError(err);
  }
}

async function openReport(runId) {
  try {
    const html = await api(kbPath(`/evals/${encodeURIComponent(runId)}/report`), { raw: true });
    const frame = $("#report");
    frame.setAttribute("sandbox", "");  // shown without scripts: the report works with JavaScript off
    frame.src = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    frame.hidden = false;
  } catch (err) {
    showError(err);
  }
}

async function pollStatus() {
  try {
    const s = await api("/api/status");
    const q = s.generation[0];
    $("#queue").textContent = q ? t("queue", { a: q.active, w: q.waiting }) : "";
  } catch (_) { /* shown elsewhere */ }
}

// ---- wiring -------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("#lang-btn").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("zhiku.lang", state.lang);
    translate();
    showPage();
  });
  $("#key-btn").addEventListener("click", () => askForKey(""));
  $("#kb-select").addEventListener("change", (e) => chooseKb(e.target.value));
  $("#ask-form").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) ask(e);
  });
  $("#new-conv").addEventListener("click", () => { state.conv = null; $("#messages").replaceChildren(); loadConversations(); });
  $("#passage-close").addEventListener("click", () => { $("#passage").hidden = true; });
  $("#upload-form").addEventListener("submit", upload);
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); $("#files").files = e.dataTransfer.files; });
  $("#sync-btn").addEventListener("click", resync);
  $("#create-kb").addEventListener("submit", createKb);
  $("#delete-kb").addEventListener("click", deleteKb);
  $("#search-form").addEventListener("submit", search);
  window.addEventListener("hashchange", showPage);
  loadKbs();
  pollStatus();
  setInterval(pollStatus, 5000);
});
