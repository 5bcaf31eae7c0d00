"""The IOC Grafana dashboards as code (grafana-foundation-sdk, Grafana 11's schema): overview
(alerts, reservoir levels), SLA (deadlines, escalations, notifications) and pipeline health
(workers, throughput, lag, latency, dead letters, freshness, checkpoints).

The JSON in config/grafana/dashboards is generated: edit the code here, then regenerate it with
`make dashboards` (`python -m ioc.dashboards`); `python -m ioc.dashboards --check` fails when a
file differs from what the code generates.

* `panels`: the query type (checked when built) and the panel helpers; `board`: what the three
  dashboards share; `overview`, `sla`, `pipeline`: one module per dashboard;
* `generate`: the registry (`DASHBOARDS`, uid -> builder) and the files; `walk`: reading JSON.

>>> board = as_dict(DASHBOARDS["ioc-pipeline"]())
>>> ("Consumer lag, by stream", "sum by (stream) (stream:ioc_consumer_lag:sum)") in queries(board)
True
"""

from ioc.dashboards.generate import DASHBOARDS, OUT, as_dict, differences, files, render, write
from ioc.dashboards.walk import each_panel, queries

__all__ = ["DASHBOARDS", "OUT", "as_dict", "differences", "each_panel", "files", "queries", "render", "write"]
