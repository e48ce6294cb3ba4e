#!/usr/bin/env python3
"""Seed 001's producer: the Python verification backend writes results to a Redis stream with flat
fields, exactly as the seed's RedisService does (redis-py, XADD, decode_responses).

    /usr/bin/python3 examples/verification/producer.py [COUNT] [FIRST]

Configuration as in the seed: REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_PASSWORD / REDIS_DB;
REDIS_STREAM_NAME (default verification_stream). Prints one stream id per line.
"""
import os
import sys
from datetime import datetime, timezone

import redis


def client() -> redis.Redis:
    url = os.getenv("REDIS_URL")
    if url:
        return redis.Redis.from_url(url, decode_responses=True)
    return redis.Redis(
        host=os.getenv("REDIS_HOST", "localhost"),
        port=int(os.getenv("REDIS_PORT", "6379")),
        password=os.getenv("REDIS_PASSWORD") or None,
        db=int(os.getenv("REDIS_DB", "0")),
        decode_responses=True,
    )


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    stream = os.getenv("REDIS_STREAM_NAME", "verification_stream")
    r = client()
    for i in range(first, first + count):
        message = {
            "user_wallet": f"0x{i:040x}",
            "did_id": str(i % 3),
            "result": "verified" if i % 5 else "failed",
            "evidence_hash": f"{i:064x}",
            "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        print(r.xadd(stream, message), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
