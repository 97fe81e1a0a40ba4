"""Connectors: acknowledged sources and sinks for brokers (imported on first use).

Each connector is its own module, whose client library is an extra and is imported
only when a connector connects:

* :mod:`flowstage.connectors.redis` (``pip install 'flowstage[redis]'``): Redis
  Streams through a consumer group, :class:`~flowstage.connectors.redis.RedisStreamSource`
  (an :class:`~flowstage.messages.AckSource`) and
  :class:`~flowstage.connectors.redis.RedisStreamSink` (a
  :class:`~flowstage.messages.Sink`).

Connectors build on :mod:`flowstage.messages` and the stage engine only; they know
nothing of flows, plans or executors.
"""

from __future__ import annotations

__all__ = ()
