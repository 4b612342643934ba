"""Docker's random values, as a Faker provider.

A daemon draws a few things at random: cache-ids (the overlay2 directory names), the 26-character
``l/`` links, container ids and names, and the moments things happened. Everything else in a root
is content-addressed and follows from the layers. Seeding the provider's Faker instance makes a
whole root reproducible.
"""

from __future__ import annotations

import base64
import os
import random
from datetime import datetime, timedelta, timezone

from faker import Faker, Generator
from faker.providers import BaseProvider

__all__ = ["DockerProvider", "host_generator", "new_faker", "reseeded_faker", "seeded_bytes"]

# moby's namesgenerator: adjective_surname. A sample of both lists is plenty here.
_ADJECTIVES = (
    "admiring", "affectionate", "amazing", "awesome", "blissful", "bold", "brave", "charming",
    "clever", "cool", "dazzling", "determined", "eager", "ecstatic", "elastic", "epic",
    "festive", "focused", "friendly", "funny", "gallant", "goofy", "happy", "hopeful",
    "jolly", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest", "nifty",
    "nostalgic", "objective", "optimistic", "peaceful", "pensive", "practical", "quirky",
    "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "trusting", "upbeat",
    "vibrant", "vigilant", "wizardly", "youthful", "zealous", "zen",
)
_SURNAMES = (
    "albattani", "allen", "archimedes", "babbage", "bardeen", "bell", "bohr", "cerf",
    "curie", "darwin", "dijkstra", "einstein", "euclid", "feynman", "galileo", "gauss",
    "goldberg", "hamilton", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport",
    "lovelace", "mccarthy", "meitner", "newton", "noether", "pascal", "pike", "ritchie",
    "shannon", "sinoussi", "tesla", "thompson", "torvalds", "turing", "wozniak", "yonath",
)


class DockerProvider(BaseProvider):
    """Random values a Docker daemon makes up."""

    def cache_id(self) -> str:
        """A graph driver id, e.g. ``52943c6506870bd23a1bec337a8fcfc018fd0b6581be161ddc4d3bb0363b8b5d``.

        Like moby's ``stringid.GenerateRandomID``: 32 random bytes in hex, drawn again when the
        first 12 characters are all digits (they could be mistaken for a number).
        """
        while True:
            value = self.generator.random.getrandbits(256).to_bytes(32, "big").hex()
            if not value[:12].isdigit():
                return value

    def container_id(self) -> str:
        """A container id: same shape as a cache-id, e.g. ``3633ef0dd1306c57…``."""
        return self.cache_id()

    def overlay_link(self) -> str:
        """A short link name under ``overlay2/l/``, e.g. ``JXHBDPYU5M57S66SDIBZ7PL37T``.

        overlay2 base32-encodes 16 random bytes and keeps the first 26 characters.
        """
        raw = self.generator.random.getrandbits(128).to_bytes(16, "big")
        return base64.b32encode(raw).decode()[:26]

    def container_name(self) -> str:
        """A generated container name, e.g. ``festive_lovelace``."""
        return f"{self.random_element(_ADJECTIVES)}_{self.random_element(_SURNAMES)}"

    def build_date(self, year_from: int = 2023, year_to: int = 2025) -> datetime:
        """When an upstream image was built, e.g. ``2023-09-20 03:34:31+00:00``."""
        start = datetime(year_from, 1, 1, tzinfo=timezone.utc)
        span = (datetime(year_to, 12, 31, tzinfo=timezone.utc) - start).total_seconds()
        return start + timedelta(seconds=int(self.generator.random.uniform(0, span)))

    def binary(self, length: int = 1024 * 1024) -> bytes:
        """Faker's ``binary``, byte for byte (see :func:`seeded_bytes`)."""
        if not self.generator._is_seeded:
            return os.urandom(length)
        return seeded_bytes(self.generator.random, length)


def seeded_bytes(rng: random.Random, length: int) -> bytes:
    """``bytes(rng.randrange(256) for _ in range(length))`` (Faker's seeded ``binary``), byte for
    byte and leaving ``rng`` in the same state, several times faster.

    ``randrange(256)`` draws ``getrandbits(9)`` until it is below 256; doing the same draws here,
    without randrange's overhead, keeps every tree the same.
    """
    bits = rng.getrandbits
    out = bytearray(length)
    for i in range(length):
        r = bits(9)
        while r >= 256:
            r = bits(9)
        out[i] = r
    return bytes(out)


def new_faker(seed: int) -> Faker:
    """A Faker seeded with ``seed`` and carrying :class:`DockerProvider`."""
    fake = Faker("en_US")
    fake.add_provider(DockerProvider)
    fake.seed_instance(seed)
    return fake


def host_generator(seed: int) -> Generator:
    """A generator with only :class:`DockerProvider`, seeded with ``seed``: what a daemon draws.

    Its values are those of ``new_faker(seed)`` (same provider, same seeded ``random.Random``),
    and it is made in microseconds where a full Faker takes milliseconds.
    """
    generator = Generator()
    generator.add_provider(DockerProvider)
    generator.seed_instance(seed)
    return generator


_SHARED: Faker | None = None


def reseeded_faker(seed: int) -> Faker:
    """A shared Faker reseeded with ``seed``: the same values as ``new_faker(seed)``, much cheaper.

    Creating a Faker registers two dozen providers (milliseconds each time); the builder needs
    one per layer recipe. Use this only for a Faker that is done with before the next call.
    """
    global _SHARED
    if _SHARED is None:
        _SHARED = new_faker(0)
    _SHARED.seed_instance(seed)
    return _SHARED
