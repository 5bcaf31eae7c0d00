"""The benchmark's threshold rule in Quix Streams (run by bench/runtime.py, in the Quix venv).

    .ioc/bench/quix-venv/bin/python bench/quix_threshold.py '{"bootstrap": ..., "topics": [...],
        "group": "g", "total": 1000, "output": "matches-topic"}'

One Application on the given broker: a StreamingDataFrame per raw topic, JSON-deserialised
(Quix's default deserialiser), counted with a plain Python counter in `sdf.update`, filtered
with the threshold and produced to `output`. It stops itself (`app.stop()`) once it has
consumed the preloaded count. Quix's defaults otherwise, except: no changelog topics (the
pipeline is stateless), no topic creation (the harness creates every topic with the explicit
configs the embedded broker needs) and the 6 s session timeout every benchmarked consumer
uses. Protocol with the harness: bench/_child.py.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from _child import Job, Progress, matches
from quixstreams import Application


def run(job: Job) -> None:
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=job.bootstrap,
            consumer_group=job.group,
            auto_offset_reset="earliest",
            auto_create_topics=False,
            use_changelog_topics=False,
            state_dir=state_dir,
            loglevel="WARNING",
            consumer_extra_config={"session.timeout.ms": job.session_timeout_ms,
                                   "heartbeat.interval.ms": job.session_timeout_ms // 3},
        )
        progress = Progress(job.total)

        def count(_value: Any) -> None:
            if progress.add(1):
                app.stop()

        def count_match(_value: Any) -> None:
            progress.matches += 1

        output = app.topic(job.output, value_serializer="json")
        for name in job.topics:
            sdf = app.dataframe(app.topic(name, value_deserializer="json"))
            sdf = sdf.update(count)
            sdf = sdf.filter(lambda value: matches(value, job.threshold))
            sdf = sdf.update(count_match)
            sdf.to_topic(output)
        app.run()


if __name__ == "__main__":
    run(Job.from_argv(sys.argv[1:]))
