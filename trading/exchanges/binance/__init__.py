"""A Binance spot adapter: sans-IO signing, codecs, filters; REST on httpx2; streams on websockets.

The sans-IO modules (``signing``, ``codec``, ``frames``, ``filters``, ``errors``, ``weights``) do no
IO and are tested without an event loop, as h11 and websockets' protocol are; ``rest`` and
``stream`` are thin Trio front-ends over them.
"""
