"""Prompts for a load run: synthetic ones with input/output length distributions, or a ShareGPT-format file.

Why synthetic prompts of real words and a unique first word: a server with a prefix cache (vLLM's automatic
prefix caching, llama.cpp's slot cache) answers a prompt it has seen before without computing it again, so the
same prompt on every request flatters TTFT. Each pool entry here is a different random sequence of words, and the
load generator puts a word unique to each request first (``locustfile.py``), so no two requests share even their
first token.

Lengths are counted in words, because the harness carries no tokenizer: the words come from a list of common
English words, nearly all of them one token with their leading space in the usual BPE vocabularies (GPT-2,
Llama-3), and one word is one token in the token streamer. A real model's tokenizer may still
count a few more; output lengths are exact only where the server accepts ``ignore_eos``/``min_tokens``.

Length distributions (``--input-len`` / ``--output-len``): ``N`` or ``fixed:N``; ``uniform:LOW:HIGH``;
``normal:MEAN:SD:LOW:HIGH`` (a normal draw rounded and clipped to the bounds, as inference-perf's and guidellm's
synthetic data do). Draws come from a seeded generator, so a run is reproducible.

ShareGPT format (the ``ShareGPT_V3_unfiltered_cleaned_split.json`` layout used by vLLM's and SGLang's serving
benchmarks): a JSON list of ``{"id": ..., "conversations": [{"from": "human", "value": ...}, {"from": "gpt",
"value": ...}, ...]}``. As vLLM's benchmark does, the first turn must come from the human and becomes the prompt,
the second (from ``gpt``) sets the output length (its word count), and conversations with fewer than two turns or
fewer than 4 words on either side are left out.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = [
    "LengthDist",
    "Prompt",
    "parse_length",
    "prompts_jsonl",
    "sharegpt_prompts",
    "synthetic_prompts",
]

MAX_LENGTH = 131_072
MIN_SHAREGPT_WORDS = 4  # vLLM's benchmark drops prompts and answers shorter than 4 tokens
# Common English words, nearly all one token (with their leading space) in GPT-2/Llama-style BPE vocabularies.
WORDS: tuple[str, ...] = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "one",
    "all",
    "we",
    "their",
    "has",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "out",
    "up",
    "into",
    "do",
    "time",
    "can",
    "only",
    "its",
    "new",
    "about",
    "other",
    "some",
    "them",
    "could",
    "these",
    "two",
    "may",
    "first",
    "then",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "off",
    "before",
    "must",
    "well",
    "back",
    "through",
    "years",
    "much",
    "where",
    "your",
    "way",
    "down",
    "should",
    "because",
    "long",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "since",
    "come",
    "came",
    "place",
    "show",
    "every",
    "part",
    "thing",
    "three",
    "small",
    "set",
    "large",
    "end",
    "put",
    "home",
    "read",
    "hand",
    "high",
    "line",
    "turn",
    "move",
    "live",
    "point",
    "form",
    "sun",
    "city",
    "tree",
    "cross",
    "farm",
    "hard",
    "start",
    "story",
    "far",
    "sea",
    "draw",
    "left",
    "late",
    "run",
    "keep",
    "eye",
    "door",
    "light",
    "open",
    "seem",
    "next",
    "white",
    "begin",
    "walk",
    "ease",
    "paper",
    "group",
    "music",
    "mark",
    "often",
    "letter",
    "until",
    "mile",
    "river",
    "car",
    "feet",
    "care",
    "second",
    "book",
    "carry",
    "took",
    "science",
    "eat",
    "room",
    "friend",
    "began",
    "idea",
    "fish",
    "mountain",
    "north",
    "once",
    "base",
    "hear",
    "horse",
    "cut",
    "sure",
    "watch",
    "color",
    "face",
    "wood",
    "main",
    "enough",
    "plain",
    "girl",
    "young",
    "ready",
    "above",
    "ever",
    "red",
    "list",
    "though",
    "feel",
    "talk",
    "bird",
    "soon",
    "body",
    "dog",
    "family",
    "direct",
    "leave",
    "song",
    "measure",
    "product",
    "black",
    "short",
    "class",
    "wind",
    "question",
    "happen",
    "complete",
    "ship",
    "area",
    "half",
    "rock",
    "order",
    "fire",
    "south",
    "problem",
    "piece",
    "told",
    "knew",
    "pass",
    "top",
    "whole",
    "king",
    "size",
    "heard",
    "best",
    "hour",
    "better",
    "true",
    "during",
    "hundred",
    "five",
    "remember",
    "step",
    "early",
    "hold",
    "west",
    "ground",
    "interest",
    "reach",
    "fast",
    "sing",
    "listen",
    "six",
    "table",
    "travel",
    "less",
    "morning",
    "ten",
    "simple",
    "several",
    "vowel",
    "toward",
    "war",
    "lay",
    "against",
    "pattern",
    "slow",
    "center",
    "love",
    "person",
    "money",
    "serve",
    "appear",
    "road",
    "map",
    "rain",
    "rule",
    "govern",
    "pull",
    "cold",
    "notice",
    "voice",
    "power",
    "town",
    "fine",
    "drive",
    "lead",
    "dark",
    "machine",
    "note",
    "wait",
    "plan",
    "figure",
    "star",
    "box",
    "noun",
    "field",
    "rest",
    "able",
    "pound",
    "done",
    "beauty",
    "stood",
    "front",
    "teach",
    "week",
    "final",
    "gave",
    "green",
    "quick",
    "develop",
    "ocean",
    "warm",
    "free",
    "minute",
    "strong",
    "special",
    "mind",
    "behind",
    "clear",
    "tail",
    "produce",
    "fact",
    "street",
    "inch",
    "nothing",
    "course",
    "stay",
    "wheel",
    "full",
    "force",
    "blue",
    "object",
    "decide",
    "surface",
    "deep",
    "moon",
    "island",
    "foot",
    "system",
    "busy",
    "test",
    "record",
    "boat",
    "common",
    "gold",
    "possible",
    "plane",
    "age",
    "dry",
    "wonder",
    "laugh",
    "thousand",
    "ago",
    "ran",
    "check",
    "game",
    "shape",
    "yes",
    "hot",
    "miss",
    "brought",
    "heat",
    "snow",
    "bed",
    "bring",
    "sit",
    "perhaps",
    "fill",
    "east",
    "weight",
    "language",
    "among",
)


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A length distribution in words (tokens); ``draw`` is always within ``low..high``."""

    kind: str
    mean: float
    sd: float = 0.0
    low: int = 1
    high: int = 1

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return self.low
        if self.kind == "uniform":
            return rng.randint(self.low, self.high)
        return min(self.high, max(self.low, round(rng.gauss(self.mean, self.sd))))

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.low}"
        if self.kind == "uniform":
            return f"uniform {self.low}..{self.high}"
        return f"normal mean {self.mean:g} sd {self.sd:g} in {self.low}..{self.high}"


def parse_length(text: str, *, option: str) -> LengthDist:
    """``N``, ``fixed:N``, ``uniform:LOW:HIGH`` or ``normal:MEAN:SD:LOW:HIGH``; ConfigError naming ``option``."""
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) == 1:
        parts = ["fixed", *parts]
    kind, numbers = parts[0], parts[1:]
    forms = "N, fixed:N, uniform:LOW:HIGH or normal:MEAN:SD:LOW:HIGH"
    wanted = {"fixed": 1, "uniform": 2, "normal": 4}
    if kind not in wanted or len(numbers) != wanted[kind]:
        raise ConfigError(f"{option} {text}: expected {forms}")
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        raise ConfigError(f"{option} {text}: expected {forms}, with numbers") from None
    bounds = values if kind != "normal" else values[2:]
    if any(not b.is_integer() or not 1 <= b <= MAX_LENGTH for b in bounds):
        raise ConfigError(f"{option} {text}: lengths must be whole numbers in 1..{MAX_LENGTH}")
    if kind == "fixed":
        n = int(values[0])
        return LengthDist("fixed", n, 0.0, n, n)
    low, high = int(bounds[0]), int(bounds[1])
    if low > high:
        raise ConfigError(f"{option} {text}: the lower bound {low} is above the upper bound {high}")
    if kind == "uniform":
        return LengthDist("uniform", (low + high) / 2, 0.0, low, high)
    mean, sd = values[0], values[1]
    if sd < 0 or not low <= mean <= high:
        raise ConfigError(f"{option} {text}: needs sd >= 0 and LOW <= MEAN <= HIGH")
    return LengthDist("normal", mean, sd, low, high)


@dataclass(frozen=True, slots=True)
class Prompt:
    """One pool entry: the prompt text (without the per-request unique word) and the output tokens to ask for."""

    text: str
    max_tokens: int


def synthetic_prompts(inputs: LengthDist, outputs: LengthDist, *, count: int, seed: int = 0) -> tuple[Prompt, ...]:
    """``count`` prompts of random words; each is one word shorter than its drawn length because the load
    generator adds the request's unique word in front (the total is the drawn length)."""
    rng = random.Random(seed)
    pool = []
    for _ in range(count):
        words = inputs.draw(rng)
        pool.append(Prompt(" ".join(rng.choices(WORDS, k=words - 1)), outputs.draw(rng)))
    return tuple(pool)


def _sharegpt_entry(item: Any) -> tuple[str, str] | None:
    turns = item.get("conversations") if isinstance(item, dict) else None
    if not isinstance(turns, list) or len(turns) < 2:
        return None
    first, second = turns[0], turns[1]
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return None
    if first.get("from") != "human" or second.get("from") != "gpt":
        return None
    prompt, answer = first.get("value"), second.get("value")
    if not isinstance(prompt, str) or not isinstance(answer, str):
        return None
    return prompt, answer


def sharegpt_prompts(
    path: Path, *, count: int, max_output: int, max_input_words: int = 1024, seed: int = 0, option: str = "--dataset"
) -> tuple[Prompt, ...]:
    """Up to ``count`` prompts from a ShareGPT-format file, sampled with a seeded generator; output lengths are the
    answer's word count capped at ``max_output``. A file that is not a ShareGPT list, or holds no usable
    conversation, is a ConfigError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {(exc.strerror or str(exc)).lower()}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option} {path}: not a JSON file ({exc})") from None
    if not isinstance(data, list):
        raise ConfigError(f"{option} {path}: expected a JSON list of {{'conversations': [...]}} (ShareGPT format)")
    usable: list[Prompt] = []
    for item in data:
        entry = _sharegpt_entry(item)
        if entry is None:
            continue
        prompt_words, answer_words = len(entry[0].split()), len(entry[1].split())
        if prompt_words < MIN_SHAREGPT_WORDS or answer_words < MIN_SHAREGPT_WORDS or prompt_words > max_input_words:
            continue
        usable.append(Prompt(entry[0], min(answer_words, max_output)))
    if not usable:
        raise ConfigError(
            f"{option} {path}: no usable conversation among {len(data)} (each needs a first turn from 'human' and a "
            f"second from 'gpt', both of at least {MIN_SHAREGPT_WORDS} words, the prompt at most {max_input_words})"
        )
    rng = random.Random(seed)
    rng.shuffle(usable)
    return tuple(usable[:count])


def prompts_jsonl(prompts: Sequence[Prompt]) -> str:
    """The pool as the load generator reads it (``LG_PROMPTS_FILE``): one JSON object per line."""
    return "".join(json.dumps({"prompt": p.text, "max_tokens": p.max_tokens}) + "\n" for p in prompts)
