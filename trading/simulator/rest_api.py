"""The REST front door: routing, parameters, keys, signatures, weights, faults and error JSON.

The rules this module keeps, from Binance's REST documentation (``reference`` §1 and §6):

* Parameters may come in the query string, in a urlencoded body, or both, for every method
  (POST and DELETE alike); when a name is in both, the query string wins. A name repeated
  within one part is refused (-1101).
* Signed endpoints need ``X-MBX-APIKEY`` (missing: -2014, unknown: -2015), a ``signature``
  verified over the *raw* query string followed by the *raw* body (-1022), a ``timestamp``
  inside ``recvWindow`` (default 5000, at most 60000) and no more than 1 s ahead of the server
  clock (-1021). The server clock for this rule, and for ``/api/v3/time``, is the wall clock
  (the clock clients sign with); market data and orders run on market time.
* Every answer carries ``X-MBX-USED-WEIGHT-1M``; order placements also
  ``X-MBX-ORDER-COUNT-10S`` / ``-1D``. Weight is charged before anything else, refused requests
  included; over the limit: 429, then 418 for a client that does not wait (``rate_limits``).
* Errors are ``{"code", "msg"}`` served as ``application/json`` with a 4xx status (5xx only
  from the fault switches); an unknown path is a 404 with the same JSON shape. A handler bug is
  a 500 with code -1000, logged, never a dropped server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

import attrs
import trio

from trading.exchanges.binance.signing import MAX_RECV_WINDOW_MS, timestamp_ok, verify
from trading.simulator.faults import PRE_KINDS, Fault, FaultError, Faults
from trading.simulator.rate_limits import WeightLedger
from trading.simulator.server import HttpRequest, HttpResponse
from trading.simulator.symbols import SimError

__all__ = ["FAULTS_PATH", "Call", "RestApi", "Route", "error_response"]

log = logging.getLogger(__name__)

FAULTS_PATH: Final = "/_sim/faults"
PUSH_GAP_S: Final = 0.02
_WEIGHT_HEADER: Final = "X-MBX-USED-WEIGHT-1M"


@attrs.frozen(slots=True)
class Call:
    """One authenticated, parsed request as an endpoint sees it."""

    params: Mapping[str, str]
    api_key: str | None
    now_ms: int  # wall clock


@attrs.frozen(slots=True)
class Route:
    method: str
    path: str
    weight: Callable[[Mapping[str, str]], int]
    signed: bool
    handler: Callable[[Call], Any]  # returns JSON-able data, or (data, written-events)
    counts_order: bool = False


def error_response(
    status: int, code: int, msg: str, headers: tuple[tuple[str, str], ...] = ()
) -> HttpResponse:
    body = json.dumps({"code": code, "msg": msg}).encode()
    return HttpResponse(status, body, headers)


def _json(data: Any, headers: tuple[tuple[str, str], ...]) -> HttpResponse:
    return HttpResponse(200, json.dumps(data, separators=(",", ":")).encode(), headers)


def _parse(raw: str, where: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise SimError(-1100, f"Illegal characters found in the {where}.") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise SimError(-1101, f"Duplicate values for parameter '{name}' in the {where}.")
        out[name] = value
    return out


_TOO_MUCH = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_BANNED = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)


def _form_body(request: HttpRequest) -> str:
    """The body as form text ('' for none, or for a JSON body some clients send on GET)."""
    if not request.body or "json" in request.headers.get("content-type", ""):
        return ""
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise SimError(-1100, "Illegal characters found in the body.") from None


def _params(request: HttpRequest) -> dict[str, str]:
    """Query and form body merged; the query string wins."""
    body = _parse(_form_body(request), "body")
    return {**body, **_parse(request.raw_query, "query string")}


class RestApi:
    """Answers HTTP requests: ``await api(request)`` (the server's HTTP handler)."""

    def __init__(
        self,
        routes: list[Route],
        secrets: Mapping[str, str],
        ledger: WeightLedger,
        faults: Faults,
        wall_ms: Callable[[], int],
    ) -> None:
        self._routes = {(r.method, r.path): r for r in routes}
        self._paths = {r.path for r in routes}
        self._secrets = secrets
        self._ledger = ledger
        self.faults = faults
        self._wall_ms = wall_ms

    async def __call__(self, request: HttpRequest) -> HttpResponse | None:
        """The answer, or None to drop the connection unanswered (faults).

        Only faults wait (``delay``, ``push_before_answer``); endpoints run without awaiting, so
        cancelling this never leaves an order half-placed: it was placed or it was not."""
        answer = await self._route(request)
        if answer is None or any(name == _WEIGHT_HEADER for name, _ in answer.headers):
            return answer
        # Answers decided before weight is charged (faults, unknown paths) carry it too.
        used = self._ledger.used(f"ip:{request.client}")
        return attrs.evolve(answer, headers=((_WEIGHT_HEADER, str(used)), *answer.headers))

    async def _route(self, request: HttpRequest) -> HttpResponse | None:
        if request.path == FAULTS_PATH:
            return self._faults_api(request)
        route = self._routes.get((request.method, request.path))
        fault = self._pre_fault(request) if route is not None else None
        if fault is not None:
            if fault.kind == "delay":
                await trio.sleep(fault.seconds)
            elif fault.kind == "drop":
                return None
            elif fault.kind == "server_error":
                return error_response(
                    fault.status,
                    -1001,
                    "Internal error; unable to process your request. Please try again.",
                )
            else:
                status = 429 if fault.kind == "rate_limit" else 418
                return error_response(
                    status, -1003, "Too much request weight used (simulated fault).",
                    (("Retry-After", str(fault.retry_after)),),
                )  # fmt: skip
        if route is None:
            if request.path in self._paths:
                return error_response(
                    405, -1000, f"Method {request.method} not allowed on {request.path}."
                )
            return error_response(404, -1000, f"Unknown endpoint: {request.method} {request.path}.")
        accept_drop = self.faults.take("accept_then_drop", method=request.method, path=request.path)
        push_first = self.faults.take(
            "push_before_answer", method=request.method, path=request.path
        )
        answer, written = self._answer(route, request)
        if accept_drop is not None:
            return None
        if push_first is not None and written:
            with trio.move_on_after(5):
                for event in written:
                    await event.wait()
            # A moment more, so a client reading both sockets surely sees the push first.
            await trio.sleep(PUSH_GAP_S)
        return answer

    def _pre_fault(self, request: HttpRequest) -> Fault | None:
        for kind in PRE_KINDS:
            fault = self.faults.take(kind, method=request.method, path=request.path)
            if fault is not None:
                return fault
        return None

    def _answer(self, route: Route, request: HttpRequest) -> tuple[HttpResponse, list[trio.Event]]:
        api_key = request.headers.get("x-mbx-apikey")
        known_key = api_key is not None and api_key in self._secrets
        who = f"key:{api_key}" if route.signed and known_key else f"ip:{request.client}"
        headers: list[tuple[str, str]] = []
        params: dict[str, str] = {}
        refusal: SimError | None = None
        try:
            params = _params(request)
            weight = route.weight(params)
        except SimError as exc:
            refusal, weight = exc, 1
        verdict = self._ledger.charge(who, weight)
        headers.append((_WEIGHT_HEADER, str(verdict.used)))
        if verdict.status != 200:
            headers.append(("Retry-After", str(verdict.retry_after)))
            msg = _BANNED if verdict.status == 418 else _TOO_MUCH
            msg = msg.format(limit=self._ledger.limit, until=verdict.banned_until_ms)
            return error_response(verdict.status, -1003, msg, tuple(headers)), []
        try:
            if refusal is not None:
                raise refusal
            now = self._wall_ms()
            if route.signed:
                self._authenticate(api_key, request, params, now)
            if route.counts_order:
                ten_s, day = self._ledger.count_order(f"key:{api_key}")
                headers.append(("X-MBX-ORDER-COUNT-10S", str(ten_s)))
                headers.append(("X-MBX-ORDER-COUNT-1D", str(day)))
            result = route.handler(Call(params, api_key if known_key else None, now))
        except SimError as exc:
            return error_response(exc.http_status, exc.code, exc.msg, tuple(headers)), []
        except Exception:
            log.exception("endpoint %s %s failed", request.method, request.path)
            msg = "An unknown error occurred while processing the request."
            return error_response(500, -1000, msg, tuple(headers)), []
        if isinstance(result, _WithPushes):
            return _json(result.data, tuple(headers)), result.written
        return _json(result, tuple(headers)), []

    def _authenticate(
        self, api_key: str | None, request: HttpRequest, params: Mapping[str, str], now: int
    ) -> None:
        if not api_key:
            raise SimError(-2014, "API-key format invalid.", 401)
        secret = self._secrets.get(api_key)
        if secret is None:
            raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        if "signature" not in params:
            raise SimError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        if "timestamp" not in params:
            raise SimError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        if not verify(secret, request.raw_query, _form_body(request)):
            raise SimError(-1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params["timestamp"])
            recv_window = float(params.get("recvWindow", 5000))
        except ValueError:
            raise SimError(
                -1100, "Illegal characters found in parameter 'timestamp' or 'recvWindow'."
            ) from None
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise SimError(-1131, "recvWindow must be less than 60000.")
        if not timestamp_ok(timestamp, now, recv_window):
            if timestamp >= now + 1000:
                raise SimError(
                    -1021, "Timestamp for this request was 1000ms ahead of the server's time."
                )
            raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _faults_api(self, request: HttpRequest) -> HttpResponse:
        """``GET`` lists, ``POST`` arms (a JSON object or a list of them), ``DELETE`` disarms."""
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "POST":
            try:
                data = json.loads(request.body or b"null")
                items = data if isinstance(data, list) else [data]
                faults = [Fault.from_json(item) for item in items]
            except (ValueError, TypeError, FaultError) as exc:
                return error_response(400, -1100, f"Bad fault: {exc}")
            for fault in faults:
                self.faults.add(fault)
        elif request.method != "GET":
            return error_response(
                405, -1000, f"Method {request.method} not allowed on {FAULTS_PATH}."
            )
        armed = [{**f.to_json(), "remaining": n} for f, n in self.faults.armed]
        return _json({"armed": armed}, ())


@attrs.frozen(slots=True)
class _WithPushes:
    data: Any
    written: list[trio.Event]


def with_pushes(data: Any, written: list[trio.Event]) -> Any:
    """An endpoint's answer plus the user-stream frames it queued (for push-before-answer)."""
    return _WithPushes(data, written)
