"""The shingle layer's edges: set lists as long as the text list, empty texts, and the exact hashes."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.curate.dedup.minhash import MinHasher
from megastyle.curate.dedup.shingles import (
    _CHAR_SALT,
    MAX_PIECE_SHINGLES,
    TokenBatch,
    _char_tokens,
    _piece_windows,
    _PieceRegistry,
    _Windows,
    build_piece_index,
    mix64,
    pair_jaccard,
    prepare_texts,
    shingle_hash32,
    shingle_hashes,
    shingle_set_ranks,
    shingle_sets,
    token_powers,
)


def test_shingle_sets_give_one_set_per_text_none_for_no_texts() -> None:
    assert shingle_sets([], 3) == []
    sets = shingle_sets(["abcd", "", "xyz"], 3)
    assert [len(s) for s in sets] == [2, 0, 1]  # abc, bcd; nothing; a text shorter than n is one shingle
    assert all(s.dtype == np.uint64 for s in sets)


def test_set_ranks_default_to_normalised_character_shingles() -> None:
    texts = ["Red  FOX", "red fox"]
    distinct, ranks, offsets = shingle_set_ranks(texts, 3)
    assert offsets.tolist() == [0, 5, 10] and ranks[:5].tolist() == ranks[5:].tolist()  # the same 5 shingles
    assert distinct[ranks[:5]].tolist() == sorted(shingle_hashes(["red fox"], 3, "char", False)[0].tolist())
    plain = shingle_set_ranks(texts, 3, "char", normalize=False)
    assert plain[2].tolist() != [0, 5, 10]


def _pieces(texts: list[str], ngram: int, word_cuts: bool = True) -> list[tuple[int, int, int]]:
    starts, lengths, doc = _piece_windows(TokenBatch(texts, "char"), ngram, word_cuts)
    assert starts.dtype == lengths.dtype == doc.dtype == np.int64
    return list(zip(starts.tolist(), lengths.tolist(), doc.tolist(), strict=True))


def test_pieces_are_a_word_and_the_next_n_minus_1_characters() -> None:
    # Global positions: " ab cd" 0–5, "" none, "x" 6, "hello world foo" 7–21.
    texts = [" ab cd", "", "x", "hello world foo"]
    # Cuts at each document start and after every space. A piece is (start, length, document); a
    # piece with no whole 3-gram is dropped ("cd" at 4) unless it starts a document shorter than 3 ("x").
    assert _pieces(texts, 3) == [(0, 3, 0), (1, 5, 0), (6, 1, 2), (7, 8, 3), (13, 8, 3), (19, 3, 3)]
    assert _pieces(texts, 3, word_cuts=False) == [(0, 6, 0), (6, 1, 2), (7, 15, 3)]
    assert _pieces(["abcd"], 4) == [(0, 4, 0)]  # a document of exactly n: one piece
    assert _pieces([], 3) == []


def test_a_piece_over_the_shingle_limit_is_cut_into_full_parts_and_a_rest() -> None:
    long = "a" * (MAX_PIECE_SHINGLES + 2 + 40)  # n = 3: 64 + 40 shingles
    assert _pieces([long], 3) == [(0, MAX_PIECE_SHINGLES + 2, 0), (MAX_PIECE_SHINGLES, 42, 0)]
    exactly = "b" * (MAX_PIECE_SHINGLES + 2)  # 64 shingles: one piece
    assert _pieces([exactly], 3) == [(0, MAX_PIECE_SHINGLES + 2, 0)]
    twice = "c" * (2 * MAX_PIECE_SHINGLES + 2)  # 128 shingles: two full parts
    assert _pieces([twice], 3) == [
        (0, MAX_PIECE_SHINGLES + 2, 0),
        (MAX_PIECE_SHINGLES, MAX_PIECE_SHINGLES + 2, 0),
    ]


def test_pair_jaccard_in_chunks_of_any_size() -> None:
    sets = [[0, 1, 2], [1, 2, 3], [7], [7], [], [], [0, 1, 2, 3, 4, 5, 6, 7]]
    offsets = np.cumsum([0] + [len(s) for s in sets])
    ranks = np.array([r for s in sets for r in s], dtype=np.int64)
    left, right = [0, 2, 4, 0, 6, 1, 3], [1, 3, 5, 6, 2, 1, 5]
    expected = [2 / 4, 1.0, 1.0, 3 / 8, 1 / 8, 1.0, 0.0]  # one-element sets and two empty ones count as equal
    for chunk in (1, 2, 5, 1 << 23):
        assert pair_jaccard(ranks, offsets, left, right, chunk=chunk).tolist() == expected, chunk


def test_the_piece_registry_keeps_exact_keys_and_gives_known_pieces_their_old_ids() -> None:
    registry = _PieceRegistry()
    first = TokenBatch(["red fox", "red owl"], "char")
    red_f, fox, red_o, owl = registry.add(first, _Windows(first, 3, True), 3).tolist()
    assert sorted([red_f, fox, red_o, owl]) == [0, 1, 2, 3]  # "red fo", "fox", "red ow", "owl"
    assert registry.keys.dtype == np.uint64 and registry.count == 4
    second = TokenBatch(["blue owl", "red fox"], "char")
    assert registry.add(second, _Windows(second, 3, True), 3).tolist() == [4, owl, red_f, fox]
    assert registry.keys.dtype == np.uint64 and registry.count == 5


def _pieces_per_document(texts: list[str], unit: str, share_pieces: bool | None) -> list[int]:
    return np.diff(build_piece_index(texts, 5, unit, 100, share_pieces).doc_offsets).tolist()


def test_word_pieces_where_they_pay_off_or_are_forced_and_never_for_word_shingles() -> None:
    template = [
        f"an oil painting of a {w} at dusk, thick brush strokes" for w in ("cat", "dog", "owl", "fox")
    ]
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    unique = [" ".join("".join(rng.choice(letters, 7)) for _ in range(6)) for _ in range(4)]
    # Template prompts share words: word pieces cut the work, so they are chosen (11 words each).
    assert _pieces_per_document(template, "char", None) == [11] * 4
    assert _pieces_per_document(template, "char", False) == [1] * 4
    # Words seen once do not: one piece per document, unless forced.
    assert _pieces_per_document(unique, "char", None) == [1] * 4
    assert _pieces_per_document(unique, "char", True) == [6] * 4
    for share_pieces in (None, True, False):  # word shingles are never cut inside
        assert _pieces_per_document(template, "word", share_pieces) == [1] * 4
    empty = build_piece_index([], 5, "char", 100, None)
    assert (empty.piece_count, empty.doc_offsets.tolist(), len(empty.doc_pieces)) == (0, [0], 0)


def test_mix64_returns_a_new_array_and_hash32_takes_plain_ints() -> None:
    values = np.array([0, 1, 2**63 + 5], dtype=np.uint64)
    mixed = mix64(values)
    assert values.tolist() == [0, 1, 2**63 + 5] and not np.shares_memory(mixed, values)
    assert shingle_hash32([2**40 + 7, 5, 2**64 - 1]).tolist() == [2**8, 0, 2**32 - 1]


def test_char_tokens_at_and_beyond_the_basic_plane() -> None:
    points = np.array([0x41, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF], dtype=np.uint32)
    expected = mix64(points.astype(np.uint64) + np.uint64(_CHAR_SALT))
    assert _char_tokens(points).tolist() == expected.tolist()
    assert _char_tokens(points[:2]).tolist() == expected[:2].tolist()  # the table alone
    assert _char_tokens(points[1:3]).tolist() == expected[1:3].tolist()  # U+10000: just past the table


def test_token_batches_refuse_unknown_units_and_take_texts_without_words() -> None:
    with pytest.raises(ValueError, match=r"^unknown shingle unit 'byte': use 'char' or 'word'$"):
        TokenBatch(["a"], "byte")  # type: ignore[arg-type]
    empty = TokenBatch(["", "  "], "word")
    assert empty.lengths.tolist() == [0, 0]
    hashes, offsets = shingle_hashes(["", "  ", "a b"], 1, "word")
    assert len(hashes) == 2 and offsets.tolist() == [0, 0, 0, 2]
    with pytest.raises(TypeError, match=r"^text 1 is a int, not a str$"):
        prepare_texts(["a", 3], True)  # type: ignore[list-item]


def test_a_short_power_table_is_replaced_and_an_exact_one_used() -> None:
    texts = ["hello world", "abc"]
    reference = TokenBatch(texts, "char")
    total = sum(map(len, texts))
    starts, lengths, _ = reference.shingle_windows(3)
    for count in (total - 2, total - 1, total, total + 5):
        batch = TokenBatch(texts, "char", token_powers(count))
        assert (
            batch.window_hashes(starts, lengths).tolist() == reference.window_hashes(starts, lengths).tolist()
        )


def test_many_distinct_pieces_never_merge() -> None:
    rng = np.random.default_rng(3)
    letters = list("abcdefghijklmnop")
    # Thousands of distinct pieces: keys with fewer than 64 bits (say masked, not salted) would merge some.
    texts = [" ".join("".join(rng.choice(letters, 4)) for _ in range(5)) for _ in range(3000)]
    shared = MinHasher(num_perm=64, ngram=5, share_pieces=True).signatures(texts)
    plain = MinHasher(num_perm=64, ngram=5, share_pieces=False).signatures(texts)
    assert np.array_equal(shared, plain)
