"""Sending a service's dead-lettered events back to it, once their cause is fixed.

A message lands in `<queue>.dlq` when it could never be handled (not an event, an invalid payload) or
kept failing for the consumer's dead-letter window. After the fix (a deployed correction, the missing
data created), `python -m mif_common.cli replay-dlq <service>` moves each parked message back to the
service's own queue through the default exchange, so only that service sees it again; its inbox makes
a message that was in fact handled meanwhile a no-op. Each message is confirmed on the queue before it
is removed from the DLQ: a replay cut short loses nothing (at worst one message is sent twice).
"""

from __future__ import annotations

import aio_pika

from mif_common.events.consumer import copy_message, reset_headers
from mif_common.events.topology import dead_letter_queue_name


async def replay_dead_letters(amqp_url: str, queue: str, *, limit: int | None = None) -> int:
    """Move up to `limit` (all when None) messages from `<queue>.dlq` back to `queue`; how many."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()  # publisher confirms on
        dlq = await channel.get_queue(dead_letter_queue_name(queue), ensure=True)
        await channel.get_queue(queue, ensure=True)  # the destination must exist, or the message is lost
        moved = 0
        while limit is None or moved < limit:
            message = await dlq.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            await channel.default_exchange.publish(
                copy_message(message, headers=reset_headers(message.headers)), routing_key=queue
            )
            await message.ack()
            moved += 1
        return moved
