"""Content prompts as objects and the relations between them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ContentObject:
    """One kind of object in a scene, e.g. ``two red apples`` → name "apple", count 2."""

    name: str
    count: int = 1
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    """A spatial relation ``subject <relation> object`` between two entries of ``ContentPrompt.objects``."""

    subject: int
    relation: str
    object: int


@dataclass(frozen=True)
class ContentPrompt:
    """A parsed content prompt: the objects it names and how they relate."""

    objects: tuple[ContentObject, ...]
    relations: tuple[Relation, ...] = field(default_factory=tuple)
