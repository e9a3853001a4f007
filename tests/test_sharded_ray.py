"""``inbedder embed ... --ray``: a real Ray started in this process (2 CPUs, one cluster for the module),
a tiny model, encoder actors killed mid-run, a run stopped by SIGINT and resumed through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_sharded import QUESTIONS, write_shards

from inbedder_core.embedding_io import read_embeddings
from inbedder_core.sharded import EncoderSpec, RayOptions, embed_shards

ray = pytest.importorskip("ray")

ACTOR_TITLE = b"MapBatches(BatchEmbedder)"


@pytest.fixture(scope="module")
def cluster():
    """Ray in this process, 2 CPUs, no dashboard; its address for a second driver (the command line)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        for attempt in range(3):  # Ray gives its raylet 30 s to register, too short on a loaded 2-core machine
            try:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                break
            except Exception:  # noqa: BLE001 - Ray raises a bare Exception on that timeout
                ray.shutdown()
                if attempt == 2:
                    raise
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def encoder_actor_pids() -> list[int]:
    """Process ids of the running encoder actors (Ray titles them ``ray::MapWorker(MapBatches(BatchEmbedder))``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if ACTOR_TITLE in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def spec_for(model: Path) -> EncoderSpec:
    # the workers started with the cluster, before this test's INBEDDER_CACHE_DIR: name the cache folder
    return EncoderSpec(model=str(model), device="cpu", cache_dir=os.environ["INBEDDER_CACHE_DIR"])


def test_a_killed_encoder_actor_leaves_a_run_with_every_row_exactly_once(cluster, tmp_path, tiny_roberta):
    write_shards(tmp_path / "in", n_files=3, rows=40)
    killed: list[int] = []

    def kill_one_actor(done, total):
        if not killed and done < total:
            pids = encoder_actor_pids()
            assert pids, "no encoder actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    report = embed_shards([tmp_path / "in"], tmp_path / "ray", QUESTIONS, encoder=spec_for(tiny_roberta),
                          batch_size=8, rows_per_call=8, ray=RayOptions(actors=2, num_cpus_per_actor=0.5),
                          progress=kill_one_actor)
    assert killed and not Path(f"/proc/{killed[0]}").exists()
    assert (report.actors, report.n_documents, report.n_embedded, report.shards_written) == (2, 120, 120, 3)
    local = embed_shards([tmp_path / "in"], tmp_path / "local", QUESTIONS, encoder=spec_for(tiny_roberta))
    assert local.n_cached == 240, "the actors filled the cache this process reads"
    for index in range(3):
        for number in (1, 2):
            ray_ids, ray_vectors, ray_answers = read_embeddings(tmp_path / "ray" / f"part-{index:05d}.parquet", number)
            ids, vectors, answers = read_embeddings(tmp_path / "local" / f"part-{index:05d}.parquet", number)
            assert ray_ids == ids and len(set(ids)) == 40 and ray_answers == answers
            np.testing.assert_allclose(ray_vectors, vectors, atol=1e-5)


def test_a_ray_run_stopped_by_sigint_resumes_with_the_unfinished_shards_from_the_command_line(
        cluster, tmp_path, tiny_roberta):
    write_shards(tmp_path / "in", n_files=4, rows=24)
    out = tmp_path / "out"

    def stop_after_first_shard(done, total):
        if done >= 24:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        embed_shards([tmp_path / "in"], out, QUESTIONS, encoder=spec_for(tiny_roberta), batch_size=8, rows_per_call=8,
                     ray=RayOptions(actors=1), progress=stop_after_first_shard)
    finished = sorted(p.name for p in out.glob("*.parquet"))
    assert finished and len(finished) < 4 and not list(out.glob(".*tmp"))
    args = ["embed", str(tmp_path / "in" / "*.csv"), "--model", str(tiny_roberta), "--device", "cpu",
            "-i", QUESTIONS[0], "-i", QUESTIONS[1], "--out", str(out), "--ray", cluster, "--actors", "1",
            "--batch-size", "8"]
    done = subprocess.run([sys.executable, "-m", "inbedder_core.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{4 - len(finished)} shard(s) written, {len(finished)} already finished and skipped" in done.stderr
    assert "docs/s" in done.stderr
    for index in range(4):
        ids, vectors, _ = read_embeddings(out / f"part-{index:05d}.parquet", 2)
        assert ids == [f"d{index}-{r:03d}" for r in range(24)] and vectors.shape[0] == 24
