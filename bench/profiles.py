"""The profiles, partitions and API scopes the benchmark adds to the testbed's hub."""

from __future__ import annotations

PARTITIONS = ["jupyter-short", "jupyter-overflow"]
BENCH_SCOPES = [
    "admin:users",
    "admin:servers",
    "access:servers",
    "list:users",
    "read:users",
    "read:servers",
]


def bench_profiles(real_mem: str, light_mem: str) -> list[dict]:
    """The profiles the benchmark adds: the real server's, the stand-in's, the culling pair."""
    common = {"cpus": 1, "time": "1h", "users": [], "groups": []}
    return [
        {
            "key": "bench-real",
            "display_name": "Benchmark, real server",
            "partitions": PARTITIONS,
            "memory": real_mem,
            "idle_timeout": "4h",
            **common,
        },
        {
            "key": "bench-light",
            "display_name": "Benchmark, stand-in",
            "partitions": PARTITIONS,
            "memory": light_mem,
            "idle_timeout": "4h",
            **common,
        },
        {
            "key": "bench-keep",
            "display_name": "Benchmark, kept by the culler",
            "partitions": ["jupyter-short"],
            "memory": light_mem,
            "idle_timeout": "4h",
            **common,
        },
        {
            "key": "bench-cull",
            "display_name": "Benchmark, culled",
            "partitions": ["jupyter-short"],
            "memory": light_mem,
            "idle_timeout": "10s",
            **common,
        },
    ]
