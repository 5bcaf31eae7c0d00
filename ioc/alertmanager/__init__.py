"""The Alertmanager sink: alert records of `ioc.alerts` as Alertmanager v2 alerts.

* `payload`: one alert record → one Alertmanager alert (labels, annotations, times);
* `forwarder`: what each partition has firing, what is still to send, when to send again;
* `client`: the POST to `/api/v2/alerts`, and what its answer means (sent, retry, refused).

The worker's side is `streams.alertmanager_runner`; the contract is docs/alertmanager.md.
"""

from ioc.alertmanager.forwarder import Forwarder
from ioc.alertmanager.payload import am_alert

__all__ = ["Forwarder", "am_alert"]
