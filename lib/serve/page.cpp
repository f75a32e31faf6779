#include "mmkt/serve/page.h"

namespace mmkt::serve {

const std::string& page_html() {
  static const std::string page = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmkt serve</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #d9dde5; --accent: #2f6fde; --soft: #eef3fc; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fafbfd; }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 19px; margin: 0; }
  header .meta { color: var(--muted); font-size: 13px; }
  nav { display: flex; gap: 4px; padding: 8px 24px 0; background: #fff; border-bottom: 1px solid var(--line); }
  nav button { border: 0; background: none; padding: 8px 14px; font: inherit; cursor: pointer; color: var(--muted); border-bottom: 2px solid transparent; }
  nav button.on { color: var(--ink); border-bottom-color: var(--accent); font-weight: 600; }
  main { padding: 18px 24px 40px; max-width: 1280px; }
  section { display: none; } section.on { display: block; }
  input[type=text] { width: 100%; max-width: 720px; padding: 10px 12px; font: inherit; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
  input[type=text]:focus { outline: 2px solid var(--soft); border-color: var(--accent); }
  .row { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin-bottom: 12px; }
  .status { color: var(--muted); font-size: 13px; min-height: 1.4em; margin: 6px 0 12px; }
  .error { color: #b42318; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 12px; }
  figure.hit { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; text-align: center; }
  figure.hit img { width: 112px; height: 112px; image-rendering: pixelated; background: #000; border-radius: 4px; }
  figure.hit figcaption { font-size: 12.5px; margin-top: 4px; }
  figure.hit .score { color: var(--muted); }
  ol.captions { padding-left: 22px; } ol.captions li { margin: 4px 0; }
  .drop { border: 2px dashed var(--line); border-radius: 10px; padding: 18px; text-align: center; color: var(--muted); background: #fff; max-width: 720px; }
  .drop.over { border-color: var(--accent); background: var(--soft); }
  .preview { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  .cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 18px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px; }
  .card h3 { margin: 0 0 8px; font-size: 15px; }
  .bar { display: grid; grid-template-columns: 190px 1fr 52px; gap: 8px; align-items: center; font-size: 12.5px; margin: 3px 0; }
  .bar .track { background: #eef0f4; height: 10px; border-radius: 5px; overflow: hidden; }
  .bar .fill { height: 100%; background: var(--accent); }
  .bar .fill.neg { background: #d97706; }
  table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid var(--line); padding: 4px 8px; text-align: left; }
  pre { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; overflow: auto; font-size: 12px; max-height: 520px; }
  button.go { padding: 9px 16px; border-radius: 8px; border: 1px solid var(--accent); background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  img.generated { max-width: 100%; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 8px; }
</style>
</head>
<body>
<header><h1>mmkt serve</h1><span class="meta" id="meta">loading the run&hellip;</span></header>
<nav id="tabs">
  <button data-tab="search" class="on">Search</button>
  <button data-tab="image">Image</button>
  <button data-tab="zeroshot">Zero-shot</button>
  <button data-tab="generate">Generate</button>
  <button data-tab="run">Run</button>
</nav>
<main>
<section id="search" class="on">
  <div class="row"><input type="text" id="q" placeholder="describe an item, e.g. an ankle boot with a heel" autocomplete="off"></div>
  <div class="status" id="search-status"></div>
  <div class="grid" id="results"></div>
</section>
<section id="image">
  <div class="drop" id="image-drop">drop an image here, or <input type="file" id="image-file" accept="image/*"></div>
  <div class="status" id="image-status"></div>
  <div class="cols">
    <div class="card"><h3>Query</h3><img class="preview" id="image-preview" alt=""></div>
    <div class="card"><h3>Nearest captions</h3><ol class="captions" id="image-captions"></ol></div>
  </div>
  <h3>Nearest images</h3>
  <div class="grid" id="image-results"></div>
</section>
<section id="zeroshot">
  <div class="drop" id="zs-drop">drop an image here, or <input type="file" id="zs-file" accept="image/*">
    <label><input type="checkbox" id="zs-all"> rank seen classes too (generalized)</label></div>
  <div class="status" id="zs-status"></div>
  <div class="cols" id="zs-results"></div>
</section>
<section id="generate">
  <div class="row"><input type="text" id="gen-text" placeholder="a caption to draw"><button class="go" id="gen-go">Draw</button></div>
  <div class="drop" id="gen-drop">or drop an image to describe: <input type="file" id="gen-file" accept="image/*"></div>
  <div class="status" id="gen-status"></div>
  <div class="cols"><div class="card"><img class="generated" id="gen-grid" alt=""></div>
  <div class="card"><h3>Captions</h3><ol class="captions" id="gen-captions"></ol></div></div>
</section>
<section id="run">
  <div class="cols">
    <div class="card"><h3>Run</h3><table id="run-table"></table></div>
    <div class="card"><h3>Latency per endpoint (server side, ms)</h3><table id="latency-table"></table>
      <div class="status">this page's requests:</div><ol id="request-log" class="captions"></ol></div>
  </div>
  <h3>Evaluation report</h3><pre id="report">no eval/report.md in this run (run mmkt eval)</pre>
  <h3>Configuration</h3><pre id="config"></pre>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

function logRequest(what, ms) {
  const li = document.createElement("li");
  li.textContent = what + ": " + ms.toFixed(1) + " ms round trip";
  const log = $("request-log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 20) log.removeChild(log.lastChild);
}

async function api(path, body) {
  const t0 = performance.now();
  const res = await fetch(path, body === undefined ? {} :
      {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await res.json();
  logRequest(path, performance.now() - t0);
  if (!res.ok) throw new Error(data.error || ("HTTP " + res.status));
  return data;
}

function hitsHtml(results) {
  return results.map((r) =>
    '<figure class="hit" data-class="' + esc(r["class"]) + '" data-item="' + r.item + '">' +
    '<img src="' + esc(r.url) + '" alt="' + esc(r["class"]) + '" width="112" height="112">' +
    '<figcaption>' + esc(r["class"]) + ' <span class="score">' + r.score.toFixed(3) + '</span></figcaption></figure>').join("");
}

function setStatus(id, text, isError) {
  const el = $(id);
  el.textContent = text;
  el.className = "status" + (isError ? " error" : "");
}

// Tabs.
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("on", x === b));
  document.querySelectorAll("main section").forEach((s) => s.classList.toggle("on", s.id === b.dataset.tab));
  if (b.dataset.tab === "run") loadInfo();
}));

// Search: live as you type (the latest answer wins).
let searchSeq = 0;
async function search(text) {
  const seq = ++searchSeq;
  if (!text.trim()) { $("results").innerHTML = ""; setStatus("search-status", ""); return; }
  try {
    const a = await api("/api/query", {text: text, top: 24});
    if (seq !== searchSeq) return;
    $("results").innerHTML = hitsHtml(a.results);
    setStatus("search-status", a.results.length + " of " + a.index_items + " images, " +
              a.latency_ms.toFixed(1) + " ms on the server (encode " + a.encode_ms.toFixed(1) +
              " ms, search " + a.search_ms.toFixed(1) + " ms)");
  } catch (e) {
    if (seq === searchSeq) { $("results").innerHTML = ""; setStatus("search-status", e.message, true); }
  }
}
let typing = null;
$("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => search($("q").value), 120); });

// Images from a file input or a drop.
function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}
function onImage(dropId, inputId, handler) {
  const drop = $(dropId);
  const take = async (file) => { if (file) handler(await readImage(file)); };
  $(inputId).addEventListener("change", (e) => take(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); take(e.dataTransfer.files[0]); });
}

onImage("image-drop", "image-file", async (url) => {
  $("image-preview").src = url;
  setStatus("image-status", "searching\u2026");
  try {
    const images = await api("/api/query", {image: url, target: "image", top: 24});
    $("image-results").innerHTML = hitsHtml(images.results);
    let note = "nearest images " + images.latency_ms.toFixed(1) + " ms";
    if (META.captions > 0) {
      const texts = await api("/api/query", {image: url, target: "text", top: 8});
      $("image-captions").innerHTML = texts.results.map((r) =>
        "<li>" + esc(r.caption) + ' <span class="score">(' + esc(r["class"]) + ", " + r.score.toFixed(3) + ")</span></li>").join("");
      note += ", nearest captions " + texts.latency_ms.toFixed(1) + " ms";
    }
    setStatus("image-status", note);
  } catch (e) { setStatus("image-status", e.message, true); }
});

// Each attribute's probability, and its share of the score gap between the predicted class
// and the runner-up (the evidence terms sum to that gap; mmkt zeroshot prints the same).
function bars(attrs) {
  const gap = attrs.reduce((s, a) => s + (a.evidence || 0), 0);
  return attrs.slice(0, 8).map((a) => {
    const p = a.probability !== undefined ? a.probability : 0;
    const share = gap !== 0 ? (a.evidence || 0) / gap : 0;
    return '<div class="bar"><span>' + esc(a.name) + '</span><div class="track" title="p = ' + p.toFixed(3) +
      '"><div class="fill" style="width:' + (100 * p).toFixed(1) + '%"></div></div><span>p ' + p.toFixed(2) + '</span></div>' +
      '<div class="bar"><span class="score">share of the gap</span><div class="track"><div class="fill' +
      (share < 0 ? " neg" : "") + '" style="width:' + Math.min(100, 100 * Math.abs(share)).toFixed(1) + '%"></div></div><span>' +
      (100 * share).toFixed(0) + '%</span></div>';
  }).join("");
}

onImage("zs-drop", "zs-file", async (url) => {
  setStatus("zs-status", "classifying\u2026");
  try {
    const r = await api("/api/zeroshot", {image: url, all_classes: $("zs-all").checked, top: 5});
    $("zs-results").innerHTML = '<div class="card"><h3>Image</h3><img class="preview" src="' + url + '"></div>' +
      Object.entries(r.methods).map(([m, out]) =>
        '<div class="card"><h3>' + esc(m.toUpperCase()) + " among " + esc(out.candidates) + " classes</h3><ol>" +
        out.ranking.map((c) => "<li><b>" + esc(c["class"]) + '</b> <span class="score">' + Number(c.score).toFixed(3) + "</span></li>").join("") +
        "</ol>" + (out.attributes ? bars(out.attributes) : "") + "</div>").join("");
    setStatus("zs-status", r.latency_ms.toFixed(1) + " ms on the server");
  } catch (e) { setStatus("zs-status", e.message, true); }
});

async function draw() {
  const text = $("gen-text").value;
  setStatus("gen-status", "drawing\u2026");
  try {
    const r = await api("/api/generate", {text: text, n: 16});
    $("gen-grid").src = r.grid_png;
    setStatus("gen-status", r.n + " images from q(z|caption) (the first from its mean), " + r.latency_ms.toFixed(1) + " ms");
  } catch (e) { setStatus("gen-status", e.message, true); }
}
$("gen-go").addEventListener("click", draw);
$("gen-text").addEventListener("keydown", (e) => { if (e.key === "Enter") draw(); });
onImage("gen-drop", "gen-file", async (url) => {
  setStatus("gen-status", "describing\u2026");
  try {
    const r = await api("/api/generate", {image: url, n: 5, beam: 3});
    $("gen-captions").innerHTML = r.captions.map((c) => "<li>" + esc(c) + "</li>").join("");
    setStatus("gen-status", r.captions.length + " captions (beam " + r.beam + "), " + r.latency_ms.toFixed(1) + " ms");
  } catch (e) { setStatus("gen-status", e.message, true); }
});

// The run.
const META = {captions: 0};
async function loadInfo() {
  const info = await api("/api/info");
  META.captions = info.index.captions;
  $("meta").textContent = info.run + " \u2014 " + info.dataset + ", " + info.model.type + " (latent " +
    info.model.latent_dim + "), " + info.index.images + " indexed images" +
    (info.zero_shot.available ? ", zero-shot over " + info.zero_shot.unseen_classes.length + " unseen classes" : "");
  const rows = [["run", info.run], ["device", info.device], ["dataset", info.dataset], ["model", info.model.type],
    ["modalities", info.model.modalities.map((m) => m.name + " (" + m.encoder + "/" + m.decoder + ")").join(", ")],
    ["index", info.index.collection + ": " + info.index.images + " images, " + info.index.captions + " captions"],
    ["unseen classes", info.zero_shot.available ? info.zero_shot.unseen_classes.join(", ") : "none"]];
  $("run-table").innerHTML = rows.map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>").join("");
  $("latency-table").innerHTML = "<tr><th>endpoint</th><th>requests</th><th>p50</th><th>p99</th><th>last</th></tr>" +
    Object.entries(info.latency_ms).map(([k, v]) => "<tr><td>" + esc(k) + "</td><td>" + v.count + "</td><td>" +
      v.p50_ms.toFixed(2) + "</td><td>" + v.p99_ms.toFixed(2) + "</td><td>" + v.last_ms.toFixed(2) + "</td></tr>").join("");
  if (info.eval_report_md) $("report").textContent = info.eval_report_md;
  $("config").textContent = JSON.stringify(info.config, null, 2);
}

// Start: the run's description, then ?q= as a first query.
loadInfo().catch((e) => { $("meta").textContent = e.message; }).then(() => {
  const q = new URLSearchParams(location.search).get("q");
  if (q) { $("q").value = q; search(q); }
});
</script>
</body>
</html>
)PAGE";
  return page;
}

}  // namespace mmkt::serve
