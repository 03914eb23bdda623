"""Bolt's network layer: a generic, authenticated request/response protocol over QUIC.

``framing`` and ``session`` are pure (bytes and values in, actions out); ``quic`` is the
asyncio adapter over aioquic.  Nothing here knows what the commands mean.
"""
