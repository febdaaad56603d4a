"""The engine against a small model, over generated interleavings of place / cancel / advance.

Hypothesis drives two symbols sharing a quote asset with market, limit (GTC / IOC / FOK) and
LIMIT_MAKER orders of every size, cancels of open and closed orders, and time jumps. The model
rebuilds the account from the reports alone and checks, after every step:

* conservation: each asset's free + locked equals the initial funds moved by the reported trades
  (``qty`` against ``quoteQty``) less the reported commissions, exactly;
* nothing is ever negative, and ``locked`` is exactly what the open orders reserve;
* a FOK order fills entirely or expires with nothing, IOC and MARKET orders never rest, a
  LIMIT_MAKER never takes, and nothing that trades while placing is a maker;
* an order's executed quantity never decreases and equals the sum of its trades; a closed order
  (cancelled, filled, expired) never trades again; trade ids are unique and increasing;
* the engine's open orders are the orders the reports leave open; reports arrive in time order;
* a refusal changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trading.simulator import (
    AccountPosition,
    BookShape,
    Event,
    ExecutionReport,
    MatchingEngine,
    NewOrder,
    OrderRecord,
    PricePath,
    SimError,
    TradeRecord,
)

D = Decimal
T0 = 1_735_689_600_000
FUNDS = {"USDT": D(200_000), "BTC": D(2), "ETH": D(20)}
SIZES = {
    "BTCUSDT": [D("0.00009"), D("0.001"), D("0.05"), D("0.4"), D("1.5")],
    "ETHUSDT": [D("0.002"), D("0.05"), D("1"), D("8")],
}
GAP = {"BTCUSDT": D(5), "ETHUSDT": D("0.25")}  # price offsets, in quote
OPEN = ("NEW", "PARTIALLY_FILLED")
CLOSED = ("FILLED", "CANCELED", "EXPIRED")


class EngineVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine(
            balances=FUNDS,
            prices=PricePath(seed=11),
            start_ms=T0,
            maker_fee=D("0.00075"),
            taker_fee=D("0.001"),
            # A thin book: orders outgrow it and resting ones fill over many steps.
            depth=BookShape(levels=8, notional_multiple=500, resting_share=D("0.05")),
        )
        self.rules = self.engine.symbols
        self.totals = dict.fromkeys(self.engine.balances(), D(0)) | dict(FUNDS)
        self.orders: dict[int, OrderRecord] = {}
        self.trades: dict[int, TradeRecord] = {}
        self.filled_by_trades: dict[int, D] = {}
        self.last_event_ms = T0

    # -- feeding the model ----------------------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        for pushed in events:
            assert pushed.event_ms >= self.last_event_ms, "events out of time order"
            self.last_event_ms = pushed.event_ms
            if isinstance(pushed, AccountPosition):
                for free, locked in pushed.balances.values():
                    assert free >= 0 and locked >= 0
                continue
            assert isinstance(pushed, ExecutionReport)
            self.see(pushed.order)
            if pushed.execution_type == "TRADE":
                trade = pushed.trade
                assert trade is not None and trade.order_id == pushed.order.order_id
                self.book_trade(trade)

    def see(self, order: OrderRecord) -> None:
        before = self.orders.get(order.order_id)
        if before is not None:
            assert order.executed_qty >= before.executed_qty, "executedQty went down"
            if before.status in CLOSED:
                assert order == before, f"closed order {order.order_id} changed"
        assert (order.status == "FILLED") == (order.executed_qty == order.orig_qty)
        self.orders[order.order_id] = order

    def book_trade(self, trade: TradeRecord) -> None:
        assert trade.id not in self.trades, "trade id reused"
        assert not self.trades or trade.id > max(self.trades)
        self.trades[trade.id] = trade
        self.filled_by_trades[trade.order_id] = (
            self.filled_by_trades.get(trade.order_id, D(0)) + trade.qty
        )
        rules = self.rules[trade.symbol]
        assert trade.quote_qty == trade.price * trade.qty
        rate = self.engine.maker_fee if trade.is_maker else self.engine.taker_fee
        if trade.is_buyer:
            assert trade.commission_asset == rules.base
            assert trade.commission == (trade.qty * rate).quantize(D("1e-8"))
            self.totals[rules.base] += trade.qty - trade.commission
            self.totals[rules.quote] -= trade.quote_qty
        else:
            assert trade.commission_asset == rules.quote
            assert trade.commission == (trade.quote_qty * rate).quantize(D("1e-8"))
            self.totals[rules.base] -= trade.qty
            self.totals[rules.quote] += trade.quote_qty - trade.commission

    def place(self, req: NewOrder, now_ms: int) -> None:
        before = self.engine.balances()
        moves = now_ms > self.engine.now_ms
        try:
            record, events = self.engine.place(req, now_ms)
        except SimError as error:
            assert error.code in (-2010, -1013), error
            event(f"place refused {error.code}")
            if moves:
                self.apply(self.engine.advance(now_ms))  # what the implicit advance did
            else:
                assert self.engine.balances() == before, "a refusal changed the balances"
            return
        self.apply(events)
        event(f"placed {record.type} -> {record.status}")
        # what each kind of order may end as, right after placing it
        if req.time_in_force == "FOK":
            assert record.status == "FILLED" or (record.status, record.executed_qty) == (
                "EXPIRED",
                D(0),
            )
        if req.time_in_force == "IOC" or req.type == "MARKET":
            assert record.status in ("FILLED", "EXPIRED")
        if req.type == "LIMIT_MAKER":
            assert (record.status, record.fills) == ("NEW", ())
        assert all(not f.is_maker for f in record.fills)
        assert self.orders[record.order_id].executed_qty == record.executed_qty
        assert sum((f.qty for f in record.fills), D(0)) == record.executed_qty

    # -- rules ------------------------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        side=st.sampled_from(["BUY", "SELL"]),
        size=st.integers(0, 4),
        offset=st.integers(-30, 30),
        kind=st.sampled_from(["GTC", "GTC", "IOC", "FOK", "LIMIT_MAKER"]),
        later=st.sampled_from([0, 0, 1, 1_500, 45_000]),
    )
    def place_limit(
        self, symbol: str, side: str, size: int, offset: int, kind: str, later: int
    ) -> None:
        qty = SIZES[symbol][size % len(SIZES[symbol])]
        price = self.engine.prices.price(symbol, self.engine.now_ms) + offset * GAP[symbol]
        if kind == "LIMIT_MAKER":
            req = NewOrder(symbol, side, "LIMIT_MAKER", quantity=qty, price=price)
        else:
            req = NewOrder(symbol, side, "LIMIT", quantity=qty, price=price, time_in_force=kind)
        self.place(req, self.engine.now_ms + later)

    @rule(
        symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        side=st.sampled_from(["BUY", "SELL"]),
        size=st.integers(0, 4),
        quote=st.sampled_from([None, D("4"), D("20"), D("1500"), D("90000")]),
    )
    def place_market(self, symbol: str, side: str, size: int, quote: Decimal | None) -> None:
        qty = None if quote is not None else SIZES[symbol][size % len(SIZES[symbol])]
        req = NewOrder(symbol, side, "MARKET", quantity=qty, quote_order_qty=quote)
        self.place(req, self.engine.now_ms)

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data(), later=st.sampled_from([0, 999, 20_000]))
    def cancel(self, data: st.DataObject, later: int) -> None:
        open_ids = sorted(i for i, o in self.orders.items() if o.status in OPEN)
        closed = st.sampled_from(sorted(self.orders))
        order_id = data.draw(st.sampled_from(open_ids) | closed if open_ids else closed)
        symbol = self.orders[order_id].symbol
        now = self.engine.now_ms + later
        pending = self.engine.advance(now)  # so the model knows whether it is still open
        self.apply(pending)
        was_open = self.orders[order_id].status in OPEN
        try:
            record, events = self.engine.cancel(symbol, order_id=order_id, now_ms=now)
        except SimError as error:
            assert (error.code, was_open) == (-2011, False)
            event("cancel of a closed order refused")
            return
        assert was_open and record.status == "CANCELED"
        event(f"cancelled after {'some' if record.executed_qty else 'no'} fills")
        self.apply(events)

    @rule(ms=st.sampled_from([1, 999, 1_000, 2_000, 7_500, 60_000, 10 * 60_000, 3 * 3_600_000]))
    def advance(self, ms: int) -> None:
        events = self.engine.advance(self.engine.now_ms + ms)
        self.apply(events)
        trades = sum(1 for e in events if isinstance(e, ExecutionReport) and e.trade)
        event(f"advance with {'no' if not trades else 'some'} resting fills")

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def balances_are_conserved_and_never_negative(self) -> None:
        balances = self.engine.balances()
        for asset, (free, locked) in balances.items():
            assert free >= 0 and locked >= 0, (asset, free, locked)
            assert free + locked == self.totals.get(asset, D(0)), asset

    @invariant()
    def locked_is_what_open_orders_reserve(self) -> None:
        reserved = dict.fromkeys(self.totals, D(0))
        for order in self.engine.open_orders():
            rules = self.rules[order.symbol]
            left = order.orig_qty - order.executed_qty
            if order.side == "BUY":
                reserved[rules.quote] += order.price * left
            else:
                reserved[rules.base] += left
        assert {a: locked for a, (_, locked) in self.engine.balances().items()} == reserved

    @invariant()
    def open_orders_are_what_the_reports_left_open(self) -> None:
        open_ids = {o.order_id for o in self.engine.open_orders()}
        assert open_ids == {i for i, o in self.orders.items() if o.status in OPEN}
        for order in self.engine.open_orders():
            assert order == self.orders[order.order_id]

    @invariant()
    def executed_equals_the_sum_of_trades(self) -> None:
        for order_id, order in self.orders.items():
            assert order.executed_qty == self.filled_by_trades.get(order_id, D(0))

    @invariant()
    def my_trades_are_the_reported_trades(self) -> None:
        logged = [t for s in self.rules for t in self.engine.trades(s, from_id=0, limit=1000)]
        if len(self.trades) < 1000:
            assert {t.id: t for t in logged} == self.trades


EngineVersusModel.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestEngineVersusModel = EngineVersusModel.TestCase
