"""Events of committed writes leave through the outbox relay and reach RabbitMQ (real broker)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import httpx
from sqlalchemy import text

from mif_assets.main import create_app
from mif_common.auth.tokens import StaticKeys, TokenVerifier
from mif_common.config import ServiceSettings
from mif_common.events import Broker, OutboxRelay
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys


async def test_committed_writes_are_relayed_to_rabbitmq(
    mif_settings: ServiceSettings, mif_keys: TestKeys, mif_amqp_url: str
) -> None:
    # This app commits for real (no rolled-back session), so the relay, on its own connection, sees the rows.
    app = create_app(mif_settings)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {mif_keys.token('responsable', user_id=7)}", "X-Request-ID": "relay-test-1"}
    suffix = uuid.uuid4().hex[:8]
    created: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        app.state.token_verifier = TokenVerifier(
            StaticKeys(mif_keys.jwks), issuer=TEST_ISSUER, audience=TEST_AUDIENCE, algorithms=["EdDSA"]
        )
        connection = await aio_pika.connect(mif_amqp_url)
        broker = Broker(mif_amqp_url, name="assets-relay-test")
        broker.start()
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key="assets.#")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                org = await http.post("/api/v1/clients", json={"nom_entreprise": f"Relay {suffix}"}, headers=headers)
                created["client"] = org.json()["id"]
                body = {
                    "nom": f"Relay {suffix}",
                    "type": "pompe",
                    "localisation": "Hall",
                    "client_id": org.json()["id"],
                }
                equipement = await http.post("/api/v1/equipements", json=body, headers=headers)
                created["equipement"] = equipement.json()["id"]
                changed = await http.put(
                    f"/api/v1/equipements/{created['equipement']}", json={"statut": "panne"}, headers=headers
                )
                assert changed.status_code == 200

            relay = OutboxRelay(engine=app.state.engine, broker=broker, service="assets", publish_timeout=5)
            assert await relay.publish_pending() == 3
            received: list[tuple[aio_pika.abc.AbstractIncomingMessage, dict[str, Any]]] = []
            async with asyncio.timeout(10):
                async with queue.iterator() as messages:
                    async for message in messages:
                        async with message.process():
                            received.append((message, json.loads(message.body)))
                        if len(received) == 3:
                            break
        finally:
            await broker.close()
            await connection.close()
            async with app.state.engine.begin() as conn:
                await conn.execute(text("DELETE FROM equipement WHERE id = :id"), {"id": created.get("equipement")})
                await conn.execute(text("DELETE FROM client WHERE id = :id"), {"id": created.get("client")})
                await conn.execute(text("DELETE FROM outbox WHERE envelope->>'correlationid' = 'relay-test-1'"))

    assert [m.routing_key for m, _ in received] == [
        "assets.client.created.v1",
        "assets.equipement.created.v1",
        "assets.equipement.status_changed.v1",
    ]
    for message, envelope in received:
        assert message.content_type == "application/cloudevents+json"
        assert message.message_id == envelope["id"]
        assert envelope["type"] == message.routing_key and envelope["source"] == "/mif/assets"
        assert envelope["correlationid"] == "relay-test-1"
    assert received[0][1]["data"]["client_id"] == created["client"]
    assert received[2][1]["data"] | {"ancien_statut": "operationnel", "statut": "panne"} == received[2][1]["data"]
