"""The page at ``GET /``: paste a document, read its summary. Plain HTML and ``fetch``, no build step.

With "explain" ticked, an MWF student's gates go under the summary, and an AS-ES student's own rationale is laid
out beside it: aspects, associated sentences (each marked grounded, with its character span in the document, or
ungrounded), triples and sub-summaries. Model output is untrusted text: the script puts every string into the
page through ``textContent`` on elements it creates itself, never through HTML parsing (no ``innerHTML`` and the
like; tests/serving/test_serve_ases.py checks the source, and runs the rendering under Node.js).
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lsr summarizer</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
  textarea { width: 100%; height: 16rem; font: inherit; }
  input[type=password] { width: 20rem; }
  #summary { white-space: pre-wrap; background: #f4f4f4; padding: 1rem; min-height: 3rem; }
  #meta { color: #555; font-size: 0.9rem; }
  .error { color: #a00; }
  #rationale h3 { font-size: 1rem; margin: 1rem 0 0.3rem; }
  .grounded .mark { color: #060; }
  .ungrounded { background: #fff0f0; }
  .ungrounded .mark { color: #a00; font-weight: bold; }
  .mark { font-size: 0.85rem; margin-right: 0.5rem; }
</style>
</head>
<body>
<h1>lsr summarizer</h1>
<p id="model">loading model info&hellip;</p>
<textarea id="document" placeholder="Paste a document here"></textarea>
<p>
  <label>Token (only if the server asks for one) <input id="token" type="password" autocomplete="off"></label>
  <label><input id="explain" type="checkbox"> <span id="explain-label">explain</span></label>
  <button id="go">Summarize</button>
</p>
<div id="summary"></div>
<div id="rationale"></div>
<p id="meta"></p>
<p><a href="docs">API docs</a></p>
<script>
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const $ = (id) => document.getElementById(id);
// Every text reaches the page through textContent on an element made here: model output is never parsed as HTML.
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function list(tag, items, render) {
  const node = document.createElement(tag);
  for (const item of items) node.appendChild(render(item));
  return node;
}
function sentenceItem(s) {
  const item = el("li", null, s.grounded ? "grounded" : "ungrounded");
  const mark = s.grounded
    ? `grounded (${s.match}, characters ${s.start}\u2013${s.end})`
    : `ungrounded: not found in the document (best overlap ${s.overlap})`;
  item.appendChild(el("span", mark, "mark"));
  item.appendChild(el("span", s.text, "text"));
  return item;
}
// The AS-ES student's own rationale (POST /summarize with explain: true), built node by node.
function renderRationale(box, r) {
  while (box.firstChild) box.removeChild(box.firstChild);
  if (!r) return;
  const state = r.finished ? `finished in ${r.rounds} round(s)`
    : `unfinished after ${r.rounds} round(s): the summary is the last abstractive turn`;
  box.appendChild(el("h3", `Rationale (${state}; ${r.ungrounded_sentences} ungrounded sentence(s))`));
  box.appendChild(el("h3", "Aspects"));
  box.appendChild(list("ul", r.aspects, (a) => el("li", a, "aspect")));
  box.appendChild(el("h3", "Associated sentences"));
  box.appendChild(list("ol", r.sentences, sentenceItem));
  box.appendChild(el("h3", "Triples"));
  box.appendChild(list("ul", r.triples, (line) => el("li", line.join(" ; "), "triples")));
  if (r.sub_summaries.length) {
    box.appendChild(el("h3", "Sub-summaries"));
    box.appendChild(list("ul", r.sub_summaries, (s) => el("li", s, "sub-summary")));
  }
}
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
}
async function showModel() {
  const r = await fetch(base + "model", {headers: headers()});
  const body = await r.json();
  $("model").textContent = r.ok
    ? `Model ${body.id} (${body.model_type}, views: ${body.views.join(", ") || "none"}, preset ${body.dataset}`
      + (body.ases ? `, AS-ES ${body.ases}` : "") + ")"
    : `Model info: ${body.detail}`;
  if (!r.ok) return;
  const what = {gates: "show gates", rationale: "show the rationale"}[body.explains];
  $("explain-label").textContent = what || "explain (this model has nothing to explain)";
  $("explain").disabled = !what;
  if (!what) $("explain").checked = false;
}
$("go").onclick = async () => {
  $("summary").className = ""; $("summary").textContent = "summarizing\u2026"; $("meta").textContent = "";
  renderRationale($("rationale"), null);
  const r = await fetch(base + "summarize", {method: "POST", headers: headers(),
    body: JSON.stringify({text: $("document").value, explain: $("explain").checked})});
  const body = await r.json();
  if (!r.ok) { $("summary").className = "error"; $("summary").textContent = `${r.status}: ${body.detail}`; return; }
  const s = body.summaries[0];
  $("summary").textContent = s.summary;
  renderRationale($("rationale"), s.rationale);
  const cut = s.truncated ? ` (truncated to ${body.source_max_tokens})` : "";
  let meta = `${body.model} · ${s.input_tokens} tokens${cut}`
    + ` · batch of ${s.batch_size} · ${body.timings.total_ms.toFixed(0)} ms`;
  if (body.gates) meta += " · gates " + JSON.stringify(body.gates);
  $("meta").textContent = meta;
};
$("token").onchange = showModel;
showModel();
</script>
</body>
</html>
"""
