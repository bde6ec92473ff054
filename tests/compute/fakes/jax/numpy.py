"""Stand-in for jax.numpy: arrays that support @, * and block_until_ready (see ../README.md)."""

from __future__ import annotations

bfloat16, float32 = "bfloat16", "float32"


class Array:
    def __matmul__(self, other: Array) -> Array:
        return self

    def __mul__(self, other: object) -> Array:
        return self

    def block_until_ready(self) -> Array:
        return self


def ones(shape: object, dtype: str = "") -> Array:
    return Array()
