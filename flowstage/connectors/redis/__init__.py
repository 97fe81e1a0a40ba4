"""Redis Streams: an acknowledged source over a consumer group, and a sink.

* :class:`RedisStreamSource` is an :class:`~flowstage.messages.AckSource`: it reads a
  stream through a consumer group (``XREADGROUP``; the flow's demand is the ``COUNT``
  of blocking reads), acknowledges what the flow is done with (``XACK``), redelivers
  what this consumer left pending and takes over what dead consumers left pending
  (``XAUTOCLAIM``), and moves entries that cannot be decoded, or that failed in the
  flow too often, to a dead-letter stream. With ``Flow.from_messages(source)``, every
  entry is processed at least once.
* :class:`RedisStreamSink` is a :class:`~flowstage.messages.Sink`: it appends a flow's
  output to a stream, one round trip per batch.

redis-py (``pip install 'flowstage[redis]'``) is imported when a source opens or a
sink first writes, never when this module is imported. Its asyncio client needs
asyncio's event loop (or uvloop): on trio, ``open`` and ``write`` raise. See
``docs/redis.md`` for the guarantees, failure handling, dead letters and tuning.
"""

from __future__ import annotations

from ..._public import fixup_module_metadata as _fixup_module_metadata
from ._entries import DEAD_LETTER_FIELDS as DEAD_LETTER_FIELDS
from ._entries import decode_fields as decode_fields
from ._sink import RedisStreamSink as RedisStreamSink
from ._source import DEFAULT_DEAD_LETTER as DEFAULT_DEAD_LETTER
from ._source import RedisStreamSource as RedisStreamSource
from ._source import RedisStreamStatistics as RedisStreamStatistics

__all__ = (
    "DEAD_LETTER_FIELDS",
    "DEFAULT_DEAD_LETTER",
    "RedisStreamSink",
    "RedisStreamSource",
    "RedisStreamStatistics",
    "decode_fields",
)

_fixup_module_metadata(__name__, __all__)
