"""A served AS-ES student explains itself over HTTP, and the page shows its rationale safely.

The students are tiny BARTs that have memorised one chain (a few hundred plain torch steps, seconds): trained on
the rows :func:`lsr.ases.dataset.training_examples` builds from a mined row, as ``lsr train --objective as-es``
trains on them, until greedy decoding writes every turn back exactly. A random student would write untagged noise,
and the rationale in the answer would be empty; a memorised one writes a known chain, so the answer can be checked
item by item: aspects, an exactly copied sentence, a paraphrased one (found approximately), an invented one
(flagged ungrounded), triples, and the final summary. The dual student's halves are trained on their own turns
only, so a wrong half writing a turn would show. Serving is Ray Serve over loopback, as in tests/serving/test_serve.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import torch

from lsr.ases.chain import chain_items
from lsr.ases.dataset import training_examples
from lsr.ases.segment import by_source
from lsr.serving.config import ServeConfig
from lsr.serving.page import PAGE
from tests.helpers.ports import free_port

DOCUMENT = (
    "The mayor opened the new bridge on Monday. Traffic fell by half within a week. "
    "Residents said the river crossing now takes five minutes."
)
ROW = {
    "id": "m",
    "document": DOCUMENT,
    "summary": "unused",
    "sentences": [
        "Traffic fell by half within a week.",  # copied: found exactly
        "Aliens landed in the square.",  # invented: not in the document
        "Residents said the crossing now takes five minutes.",  # paraphrased: found approximately
    ],
    "aspects": ["Traffic", "Aliens", "Crossing time"],
    "triples": [
        [{"subject": "traffic", "relation": "fell by", "object": "half"}],
        [{"subject": "aliens", "relation": "landed in", "object": "square"}],
        [{"subject": "crossing", "relation": "takes", "object": "five minutes"}],
    ],
    "sub_summaries": ["Traffic halved."],
    "total_summary": "The bridge halved traffic.",
}
SOURCE_MAX_TOKENS = 128
GENERATION = {"num_beams": 1, "min_new_tokens": 0, "max_new_tokens": 96}


def _save(model, tokenizer, run: Path, objective: dict) -> str:
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    (run / "train_report.json").write_text(json.dumps({"config": {"dataset": "cnndm", "objective": objective}}))
    return str(run / "model")


def _memorised(run: Path, variant: str, max_steps: int = 600) -> str:
    """A tiny BART trained on this chain's ``variant`` rows until greedy decoding writes each target back."""
    from lsr.model.batching import tokenize_rows
    from lsr.model.generate import generate
    from lsr.model.loading import tiny_model

    row = {**ROW, "segments": [s.as_row() for s in by_source(chain_items(ROW), DOCUMENT)]}
    examples = training_examples(row, variant)
    sources, targets = [e["document"] for e in examples], [e["summary"] for e in examples]
    model, tokenizer = tiny_model({"mwf_views": []}, seed=0)
    ids = tokenize_rows({"document": sources, "summary": targets}, tokenizer, source_max_tokens=SOURCE_MAX_TOKENS,
                        target_max_tokens=GENERATION["max_new_tokens"])
    batch = tokenizer.pad({"input_ids": ids["input_ids"]}, return_tensors="pt")
    labels = torch.nn.utils.rnn.pad_sequence([torch.tensor(x) for x in ids["labels"]], batch_first=True,
                                             padding_value=-100)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.eval()  # no dropout: memorise exactly
    for step in range(1, max_steps + 1):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            written = generate(model, tokenizer, sources, source_max_tokens=SOURCE_MAX_TOKENS,
                               generation_kwargs=GENERATION)
            if written == targets:
                return _save(model, tokenizer, run, {"kind": "as-es", "ases_variant": variant})
    raise AssertionError(f"the tiny {variant} student did not memorise its chain in {max_steps} steps: {written}")


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> dict[str, str]:
    """``--model`` values: the unified student, the dual one (ES_DIR+AS_DIR), and a plain fine-tuned model."""
    from lsr.model.loading import tiny_model

    root = tmp_path_factory.mktemp("ases-students")
    plain, tokenizer = tiny_model({"mwf_views": []}, seed=1)
    return {
        "unified": _memorised(root / "unified", "unified"),
        "dual": f"{_memorised(root / 'es', 'dual-es')}+{_memorised(root / 'as', 'dual-as')}",
        "plain": _save(plain, tokenizer, root / "plain", {"kind": "finetune"}),
    }


@pytest.fixture(scope="module")
def server(ray_local, students):
    """``{name: URL}``: each student served as its own application, as ``lsr serve --model`` serves it."""
    from ray import serve

    from lsr.serving.app import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        for name, model in students.items():
            config = ServeConfig.model_validate({"model": model, "generation": GENERATION,
                                                 "source_max_tokens": SOURCE_MAX_TOKENS, "num_cpus": 0.5})
            serve.run(build_app(config), name=name, route_prefix=f"/{name}")
        yield {name: f"http://127.0.0.1:{port}/{name}" for name in students}
    finally:
        serve.shutdown()


def _post(url: str, body: dict) -> requests.Response:
    return requests.post(f"{url}/summarize", data=json.dumps(body), timeout=120)


@pytest.mark.parametrize("variant", ["unified", "dual"])
def test_explain_answers_the_summary_with_the_students_own_located_rationale(server, variant):
    answer = _post(server[variant], {"text": DOCUMENT, "explain": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [summary] = body["summaries"]
    assert summary["summary"] == ROW["total_summary"]
    rationale = summary["rationale"]
    assert rationale["summary"] == ROW["total_summary"] and rationale["finished"] is True
    assert rationale["rounds"] == 2 and [t["type"] for t in rationale["turns"]] == ["ES", "AS", "ES", "AS"]
    assert rationale["aspects"] == ROW["aspects"]
    assert rationale["triples"] == [["traffic # fell by # half"], ["aliens # landed in # square"],
                                    ["crossing # takes # five minutes"]]
    assert rationale["sub_summaries"] == ROW["sub_summaries"]
    exact, invented, paraphrase = rationale["sentences"]
    assert [s["text"] for s in rationale["sentences"]] == ROW["sentences"]
    assert exact["grounded"] and exact["match"] == "exact"
    assert DOCUMENT[exact["start"]:exact["end"]] == "Traffic fell by half within a week."
    assert paraphrase["grounded"] and paraphrase["match"] == "approximate"
    assert DOCUMENT[paraphrase["start"]:paraphrase["end"]] == DOCUMENT.split(". ")[2]
    assert invented["grounded"] is False and invented["start"] is None and invented["overlap"] < 0.8
    assert rationale["ungrounded_sentences"] == 1
    # The settings the turns were decoded with, as answered: no n-gram block (the chain repeats its tags).
    assert "no_repeat_ngram_size" not in body["generation"] and body["gates"] is None
    info = requests.get(f"{server[variant]}/model", timeout=30).json()
    assert info["ases"] == variant and info["explains"] == "rationale"


def test_without_explain_an_as_es_student_answers_just_the_summary(server):
    body = _post(server["unified"], {"texts": [DOCUMENT, DOCUMENT]}).json()
    assert [s["summary"] for s in body["summaries"]] == [ROW["total_summary"]] * 2
    assert all(s["rationale"] is None for s in body["summaries"]) and body["gates"] is None


def test_a_model_with_nothing_to_explain_refuses_explain_with_a_422_and_still_summarises(server):
    refused = _post(server["plain"], {"text": DOCUMENT, "explain": True})
    assert refused.status_code == 422, refused.text
    assert "has nothing to explain" in refused.json()["detail"] and "ask without explain" in refused.json()["detail"]
    assert requests.get(f"{server['plain']}/model", timeout=30).json()["explains"] is None
    plain = _post(server["plain"], {"text": DOCUMENT})
    assert plain.status_code == 200 and plain.json()["summaries"][0]["rationale"] is None


# ---- the page ------------------------------------------------------------------------------------------------

_SCRIPT = re.compile(r"<script>(.*)</script>", re.S)
#: Ways a script turns a string into markup or code; the page must use none of them.
_HTML_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
               "setAttribute", "srcdoc", "createContextualFragment", "DOMParser")


def test_the_page_never_parses_model_output_as_html(server):
    page = requests.get(f"{server['unified']}/", timeout=30).text
    assert page == PAGE
    script = _SCRIPT.search(page).group(1)
    assert [sink for sink in _HTML_SINKS if sink in script] == []
    assert "renderRationale($(\"rationale\"), s.rationale)" in script and "textContent = String(text)" in script


# A minimal DOM for Node: elements record their children and text; any HTML-parsing property throws.
_NODE_HARNESS = r"""
class Element {
  constructor(tag) { this.tag = tag; this.children = []; this.text = null; this.className = ""; }
  appendChild(child) { this.children.push(child); return child; }
  removeChild(child) { this.children = this.children.filter((c) => c !== child); }
  get firstChild() { return this.children[0] || null; }
  set textContent(value) { this.children = []; this.text = value; }
  get textContent() { return this.text; }
  set innerHTML(value) { throw new Error("innerHTML used"); }
  set outerHTML(value) { throw new Error("outerHTML used"); }
  insertAdjacentHTML() { throw new Error("insertAdjacentHTML used"); }
}
const elements = {};
globalThis.location = {pathname: "/unified/"};
globalThis.fetch = async () => ({ok: false, json: async () => ({detail: "offline"})});
globalThis.document = {
  createElement: (tag) => new Element(tag),
  getElementById: (id) => elements[id] || (elements[id] = new Element("div")),
  write: () => { throw new Error("document.write used"); },
};
SCRIPT
const box = document.createElement("div");
renderRationale(box, JSON.parse(process.argv[2]));
const dump = (e) => ({tag: e.tag, cls: e.className, text: e.text, children: e.children.map(dump)});
console.log(JSON.stringify(dump(box)));
"""


def test_the_page_renders_the_rationale_as_text_nodes_with_grounding_marks(tmp_path):
    """The page's own renderRationale, run by Node on a hostile rationale: markup stays text, grounding shows.

    Needs ``node`` on PATH (the source-level check above needs nothing): without it this test fails, saying so."""
    node = shutil.which("node")
    assert node, "this test runs the page's script with Node.js; install nodejs (apt-get install nodejs)"
    hostile = '<img src=x onerror="alert(1)"></li><script>alert(2)</script>'
    rationale = {
        "summary": "s", "finished": True, "rounds": 2, "ungrounded_sentences": 1, "sub_summaries": [hostile],
        "aspects": ["Traffic", hostile],
        "sentences": [
            {"text": "Traffic fell.", "grounded": True, "match": "exact", "start": 43, "end": 56, "overlap": 1.0},
            {"text": hostile, "grounded": False, "match": None, "start": None, "end": None, "overlap": 0.1},
        ],
        "triples": [["traffic # fell # half", hostile]],
        "turns": [],
    }
    script = tmp_path / "render.js"
    script.write_text(_NODE_HARNESS.replace("SCRIPT", _SCRIPT.search(PAGE).group(1)))
    done = subprocess.run([node, str(script), json.dumps(rationale)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NODE_OPTIONS": ""})
    assert done.returncode == 0, done.stderr
    tree = json.loads(done.stdout)

    def walk(element: dict) -> list[dict]:
        return [element, *(e for child in element["children"] for e in walk(child))]

    assert {e["tag"] for e in walk(tree)} == {"div", "h3", "ul", "ol", "li", "span"}  # none from the model's markup
    headings = [e["text"] for e in walk(tree) if e["tag"] == "h3"]
    assert headings[1:] == ["Aspects", "Associated sentences", "Triples", "Sub-summaries"]
    assert "1 ungrounded" in headings[0]
    aspects, sentences_list, triples, subs = (n for n in tree["children"] if n["tag"] in ("ul", "ol"))
    assert [li["text"] for li in aspects["children"]] == ["Traffic", hostile]  # verbatim, as text
    grounded, ungrounded = sentences_list["children"]
    assert grounded["cls"] == "grounded" and ungrounded["cls"] == "ungrounded"
    assert grounded["children"][0]["text"] == "grounded (exact, characters 43\u201356)"
    assert ungrounded["children"][0]["text"].startswith("ungrounded: not found in the document")
    assert ungrounded["children"][1]["text"] == hostile
    assert [li["text"] for li in triples["children"]] == [f"traffic # fell # half ; {hostile}"]
    assert [li["text"] for li in subs["children"]] == [hostile]
