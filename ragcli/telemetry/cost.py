"""What an ask costs, from the price table in `[cost.prices]` (per model name).

A model missing from the table costs 0: it runs locally, and its price is the CPU time, which the
stats report next to the money. Every price is linear in its count, so the cost of a group of asks
that used the same models is the cost of the summed counts; the stats rely on that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ragcli.config import ModelPrice

COST_STAGES = ("embed", "rerank", "generate")


@dataclass(frozen=True)
class Usage:
    """Counts that are billed: tokens embedded, rerank searches, generator tokens in and out."""

    embed_tokens: int = 0
    rerank_searches: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class StageCost:
    embed: float = 0.0
    rerank: float = 0.0
    generate: float = 0.0

    @property
    def total(self) -> float:
        return self.embed + self.rerank + self.generate

    def __add__(self, other: StageCost) -> StageCost:
        return StageCost(self.embed + other.embed, self.rerank + other.rerank, self.generate + other.generate)

    def scaled(self, factor: float) -> StageCost:
        return StageCost(self.embed * factor, self.rerank * factor, self.generate * factor)

    def as_dict(self) -> dict[str, float]:
        return {"embed": self.embed, "rerank": self.rerank, "generate": self.generate, "total": self.total}


FREE = ModelPrice()  # type: ignore[call-arg]


def price_of(prices: Mapping[str, ModelPrice], model: str | None) -> ModelPrice:
    if not model:
        return FREE
    return prices.get(model, FREE)


def usage_cost(
    prices: Mapping[str, ModelPrice],
    usage: Usage,
    *,
    embed_model: str | None,
    rerank_model: str | None,
    generator_model: str | None,
) -> StageCost:
    generator = price_of(prices, generator_model)
    return StageCost(
        embed=usage.embed_tokens / 1000 * price_of(prices, embed_model).embedding_per_1k_tokens,
        rerank=usage.rerank_searches / 1000 * price_of(prices, rerank_model).rerank_per_1k_searches,
        generate=usage.prompt_tokens / 1000 * generator.input_per_1k_tokens
        + usage.completion_tokens / 1000 * generator.output_per_1k_tokens,
    )


def input_token_cost(prices: Mapping[str, ModelPrice], generator_model: str | None, tokens: int) -> float:
    return tokens / 1000 * price_of(prices, generator_model).input_per_1k_tokens
