"""The WebSocket API at ``/ws-api/v3``: the user data stream as Binance serves it since 2026-02.

The rules this module keeps, from Binance's WebSocket API documentation:

* Requests are ``{"id", "method", "params"}``; every answer echoes ``id`` unchanged (any JSON
  type), carries ``status`` and a ``rateLimits`` array, and either ``result`` or
  ``error: {"code", "msg"}``. A message that is not JSON, or not an object, is answered with
  ``id: null`` and status 400; the connection stays open.
* ``userDataStream.subscribe.signature`` takes ``apiKey``, ``timestamp``, ``signature`` (and
  ``recvWindow``): HMAC-SHA256 over the parameters sorted by name (``signature`` left out), the
  timestamp checked as for REST. It answers ``{"subscriptionId": N}``; the account's events then
  arrive as ``{"subscriptionId": N, "event": {...}}`` on this connection until
  ``userDataStream.unsubscribe`` (all, or one ``subscriptionId``) or the connection ends.
* Also: ``ping`` (``{}``), ``time`` (``{"serverTime"}``), ``session.status``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import ServerConnection

from trading.exchanges.binance.signing import MAX_RECV_WINDOW_MS, timestamp_ok, ws_api_signature
from trading.simulator.faults import Faults
from trading.simulator.rate_limits import WeightLedger
from trading.simulator.streams import MALFORMED_FRAME
from trading.simulator.ws_outbox import Outbox

__all__ = ["PATH", "WEIGHTS", "WsApi"]

log = logging.getLogger(__name__)

PATH: Final = "/ws-api/v3"
WEIGHTS: Final[Mapping[str, int]] = {
    "ping": 1, "time": 1, "session.status": 2,
    "userDataStream.subscribe.signature": 2, "userDataStream.unsubscribe": 2,
}  # fmt: skip


class _Session:
    def __init__(self, conn: ServerConnection, client: str) -> None:
        self.conn = conn
        self.client = client
        self.outbox = Outbox(conn)
        self.subscriptions: dict[int, str] = {}  # subscriptionId -> api key


class _Refused(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class WsApi:
    """Sessions on ``/ws-api/v3`` and the user-data subscriptions they hold."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        ledger: WeightLedger,
        faults: Faults,
        wall_ms: Callable[[], int],
        drop: Callable[[ServerConnection], None] = lambda conn: None,
    ) -> None:
        self._drop = drop
        self._secrets = secrets
        self._ledger = ledger
        self._faults = faults
        self._wall_ms = wall_ms
        self._sessions: set[_Session] = set()
        self._next_id = 0

    async def serve(self, conn: ServerConnection, client: str) -> None:
        """Run one session until the client leaves. Cancelling it drops the connection."""
        session = _Session(conn, client)
        self._sessions.add(session)
        try:
            async with trio.open_nursery() as nursery:
                # Either side ending (the client left, or was too slow) ends the session.
                nursery.start_soon(session.outbox.run, nursery.cancel_scope)
                while True:
                    try:
                        raw = await conn.recv()
                    except ConnectionClosed:
                        break
                    if session.outbox.closed.is_set():
                        break
                    session.outbox.put(json.dumps(self._answer(session, raw)))
                nursery.cancel_scope.cancel()
        finally:
            self._sessions.discard(session)
            session.outbox.close()

    def _rate_limits(self, who: str) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self._ledger.limit,
                "count": self._ledger.used(who),
            }
        ]

    def _answer(self, session: _Session, raw: str | bytes) -> dict[str, Any]:
        request_id: Any = None
        who = session.client
        try:
            try:
                message = json.loads(raw)
            except ValueError:
                raise _Refused(-2, "Invalid JSON: the message is not JSON.") from None
            if not isinstance(message, dict):
                raise _Refused(-2, "Invalid request: expected a JSON object.")
            request_id = message.get("id")
            method = message.get("method")
            params = message.get("params", {})
            if not isinstance(method, str) or method not in WEIGHTS:
                raise _Refused(-1020, f"Unsupported operation: unknown method {method!r}.")
            if not isinstance(params, dict):
                raise _Refused(-1104, "Invalid request: 'params' must be an object.")
            verdict = self._ledger.charge(who, WEIGHTS[method])
            if verdict.status != 200:
                raise _Refused(
                    -1003,
                    f"Too much request weight used; retry after {verdict.retry_after} s.",
                    verdict.status,
                )
            result = self._call(session, method, params)
        except _Refused as exc:
            return {
                "id": request_id,
                "status": exc.status,
                "error": {"code": exc.code, "msg": exc.msg},
                "rateLimits": self._rate_limits(who),
            }
        return {
            "id": request_id,
            "status": 200,
            "result": result,
            "rateLimits": self._rate_limits(who),
        }

    def _call(self, session: _Session, method: str, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self._wall_ms()}
        if method == "session.status":
            return {
                "apiKey": None,
                "authorizedSince": None,
                "connectedSince": None,
                "returnRateLimits": True,
                "serverTime": self._wall_ms(),
                "userDataStream": bool(session.subscriptions),
            }
        if method == "userDataStream.unsubscribe":
            which = params.get("subscriptionId")
            if which is None:
                session.subscriptions.clear()
            elif isinstance(which, int) and which in session.subscriptions:
                del session.subscriptions[which]
            else:
                raise _Refused(-2, f"Invalid subscriptionId {which!r}.")
            return {}
        return {"subscriptionId": self._subscribe(session, params)}

    def _subscribe(self, session: _Session, params: dict[str, Any]) -> int:
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                raise _Refused(
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
        api_key, signature = params["apiKey"], params["signature"]
        if not isinstance(api_key, str) or not isinstance(signature, str):
            raise _Refused(-1102, "Parameters 'apiKey' and 'signature' must be strings.")
        secret = self._secrets.get(api_key)
        if secret is None:
            raise _Refused(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        try:
            timestamp = int(params["timestamp"])
            recv_window = float(params.get("recvWindow", 5000))
        except (TypeError, ValueError):
            raise _Refused(-1102, "Parameter 'timestamp' or 'recvWindow' is malformed.") from None
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise _Refused(-1131, "recvWindow must be less than 60000.")
        unsigned = {k: v for k, v in params.items() if k != "signature"}
        expected = ws_api_signature(secret, unsigned)
        if not hmac.compare_digest(expected, signature.lower()):
            raise _Refused(-1022, "Signature for this request is not valid.")
        if not timestamp_ok(timestamp, self._wall_ms(), recv_window):
            raise _Refused(-1021, "Timestamp for this request is outside of the recvWindow.")
        sub_id = self._next_id
        self._next_id += 1
        session.subscriptions[sub_id] = api_key
        return sub_id

    def publish(self, api_key: str, event: Mapping[str, Any]) -> list[trio.Event]:
        """Send ``event`` to every subscription of ``api_key``; never blocks or raises.

        Returns one event per frame queued, set once it was written (for push-before-answer).
        """
        written: list[trio.Event] = []
        for session in list(self._sessions):
            for sub_id, key in list(session.subscriptions.items()):
                if key != api_key or session.outbox.closed.is_set():
                    continue
                if self._faults.take("drop", stream="user") is not None:
                    session.outbox.close()
                    self._drop(session.conn)
                    break
                if self._faults.take("malformed", stream="user") is not None:
                    session.outbox.put(MALFORMED_FRAME)
                frame = json.dumps(
                    {"subscriptionId": sub_id, "event": event}, separators=(",", ":")
                )
                done = session.outbox.put(frame, notify=True)
                if done is not None:
                    written.append(done)
        return written

    def subscribers(self, api_key: str) -> int:
        return sum(1 for s in self._sessions for k in s.subscriptions.values() if k == api_key)
