"""The commented example ``trio-trade config init`` writes; the repository's
``trio-trade.example.toml`` is the same text (a test keeps them equal)."""

__all__ = ["EXAMPLE"]

EXAMPLE = """\
# trio-trade configuration (`trio-trade run` reads ./trio-trade.toml, or the file --config names).
# Flags given on the command line override what is here. Every value below is the default.
# Unknown keys are errors, so a typo is named rather than silently ignored.

strategies_dir = "strategies"   # folder of strategy files
stop_timeout = 10.0             # seconds a stop may take as a whole (on_stop, cancels, flush)
max_restarts = 5                # restarts of a failing strategy within an hour before giving up

# Strategies to run when `trio-trade run` is given no NAME; `params` are applied at start as
# `set NAME key=value` would be (all or nothing; a bad one stops the run before it starts).
# [[strategies]]
# name = "sma_cross"            # a file name in strategies_dir, NAME:Class or module:Class
# params = { fast = 10, slow = 30 }
# isolate = true                # in its own process (or: trio-trade run NAME --isolate)

[exchange]
kind = "sim"                    # "sim" (built-in simulated market) or "binance"
symbols = []                    # e.g. ["BTCUSDT"]; empty: each strategy's own
live = false                    # true sends real orders (binance only); false: paper broker
base_url = "https://api.binance.com"   # or https://testnet.binance.vision, or exchange-sim's URL
# ws_url = "wss://stream.binance.com:9443"   # default: derived from base_url
# api_key = "..."               # default: $BINANCE_API_KEY; prefer the environment to this file
# api_secret = "..."            # default: $BINANCE_API_SECRET

[simulator]
seed = 7                        # the simulated market's seed
# speed = 900.0                 # simulated seconds per real second; default one bar per second

[paper]
balances = { USDT = 10000 }     # the paper wallet at start
fee_rate = 0.001                # fraction of each fill's value
slippage = 0.0005               # fraction of the price a paper fill moves against you

[database]
path = "trio-trade.db"          # SQLite file recording orders, fills, positions and commands
enabled = true                  # false records nothing

[logging]
level = "INFO"                  # DEBUG, INFO, WARNING or ERROR
# file = "trio-trade.log"       # default: standard error
format = "text"                 # "text" or "json"

[telegram]
# token = "..."                 # default: $TRIO_TRADE_TELEGRAM_TOKEN; never logged
allowed_chats = []              # chat ids that may command (send /whoami to learn them)
allowed_users = []              # in groups, the senders that may command
# topic = 42                    # a forum topic (message_thread_id) confining commands further
api_base = "https://api.telegram.org"   # a self-hosted Bot API server's URL, if any
max_command_age = 60.0          # seconds: older commands at start are answered "expired"
notify = true                   # send fills, rejections, pauses and failures to the chats
notify_chats = []               # where to send them; empty: allowed_chats

[control]
# `trio-trade ctl`'s Unix socket (mode 0600); default $XDG_RUNTIME_DIR/trio-trade.sock,
# else /tmp/trio-trade-UID.sock
# socket = "/run/user/1000/trio-trade.sock"

[sweep]
# `trio-trade sweep`: a Dask scheduler to run the replays on (pip install -e '.[sweep]');
# default: worker processes on this machine, one per core. --scheduler / --workers override.
# scheduler = "tcp://10.0.0.5:8786"
# workers = 2
"""
