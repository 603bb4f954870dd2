"""The page at ``GET /``: paste a document, read its summary. Plain HTML and ``fetch``, no build step."""

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
</style>
</head>
<body>
<h1>lsr summarizer</h1>
<p id="model">loading model info&hellip;</p>
<textarea id="document" placeholder="Paste a document here"></textarea>
<p>
  <label>Token (only if the server asks for one) <input id="token" type="password" autocomplete="off"></label>
  <label><input id="explain" type="checkbox"> show gates</label>
  <button id="go">Summarize</button>
</p>
<div id="summary"></div>
<p id="meta"></p>
<p><a href="docs">API docs</a></p>
<script>
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const $ = (id) => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("token").value) h["Authorization"] = "Bearer " + $("token").value;
  return h;
}
async function showModel() {
  const r = await fetch(base + "model", {headers: headers()});
  const body = await r.json();
  $("model").textContent = r.ok
    ? `Model ${body.id} (${body.model_type}, views: ${body.views.join(", ") || "none"}, preset ${body.dataset})`
    : `Model info: ${body.detail}`;
}
$("go").onclick = async () => {
  $("summary").className = ""; $("summary").textContent = "summarizing\u2026"; $("meta").textContent = "";
  const r = await fetch(base + "summarize", {method: "POST", headers: headers(),
    body: JSON.stringify({text: $("document").value, explain: $("explain").checked})});
  const body = await r.json();
  if (!r.ok) { $("summary").className = "error"; $("summary").textContent = `${r.status}: ${body.detail}`; return; }
  const s = body.summaries[0];
  $("summary").textContent = s.summary;
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
