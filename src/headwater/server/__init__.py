"""The Kafka wire-protocol server: `headwater serve` and `Broker.serve()`.

app.py (KafkaServer lifecycle, node identity), connection.py (framing, FIFO, backpressure),
dispatch.py (header, version checks, handler call, response encoding), handlers/ (one module
per family of APIs), errors.py (exception -> Kafka error code), context.py (handler contract).
"""

from headwater.client.broker import Broker
from headwater.server.app import KafkaServer, new_event_loop, parse_hostport

Broker._server_factory = KafkaServer

__all__ = ["KafkaServer", "new_event_loop", "parse_hostport"]
