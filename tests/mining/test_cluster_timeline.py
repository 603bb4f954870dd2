"""The cluster timeline of a mining run: what counts as a node and a replica, what is kept, how it is shown."""

from __future__ import annotations

from lsr.mining import cluster_timeline
from lsr.mining.cluster_timeline import ClusterTimeline, alive_nodes, alive_replicas, describe
from lsr.mining.report import MiningReport
from lsr.report.plots import plot_cluster


def test_alive_nodes_and_this_jobs_live_mining_actors_are_counted():
    assert alive_nodes([{"Alive": True}, {"Alive": False}, {"Alive": True}]) == 2
    actors = {
        "a": {"State": "ALIVE", "ActorClassName": "MapWorker(MapBatches(DocumentMiner))", "JobID": "01"},
        "b": {"State": "DEAD", "ActorClassName": "MapWorker(MapBatches(DocumentMiner))", "JobID": "01"},
        "c": {"State": "ALIVE", "ActorClassName": "MapWorker(MapBatches(DocumentMiner))", "JobID": "02"},
        "d": {"State": "ALIVE", "ActorClassName": "SplitCoordinator", "JobID": "01"},
    }
    assert alive_replicas(actors, "01") == 1
    assert alive_replicas(actors, None) == 2


def test_only_changes_are_kept_with_the_first_and_last_sample(monkeypatch):
    counts = iter([(1, 0), (1, 0), (2, 1), (2, 1), (3, 2), (3, 2)])
    monkeypatch.setattr(cluster_timeline, "sample", lambda: dict(zip(("nodes", "replicas"), next(counts), strict=True)))
    timeline = ClusterTimeline(started=0.0, interval_s=3600)  # the thread never samples: the test drives it
    timeline._record()
    for _ in range(4):
        timeline._record()
    timeline._record(force=True)
    assert [(s["nodes"], s["replicas"]) for s in timeline.samples] == [(1, 0), (2, 1), (3, 2), (3, 2)]
    assert describe(timeline.samples) == "nodes 1 -> peak 3 -> 3, replicas 0 -> peak 2 -> 2"


def test_the_report_keeps_the_timeline_and_draws_it():
    samples = [{"t": 0.0, "nodes": 2, "replicas": 0}, {"t": 30.5, "nodes": 4, "replicas": 3},
               {"t": 95.0, "nodes": 2, "replicas": None}]  # fmt: skip
    report = MiningReport(input_path="in", output_path="out", dataset="cnndm", engine="vllm", model="m",
                          cluster=samples)  # fmt: skip
    assert report.to_dict()["cluster"] == samples
    assert "nodes 2 -> peak 4 -> 2, replicas 0 -> peak 3 -> 3" in report.to_markdown()
    png = plot_cluster(samples, "mining")
    assert png is not None and png.startswith(b"\x89PNG")
    assert plot_cluster(samples[:1], "mining") is None  # one sample: nothing to draw
