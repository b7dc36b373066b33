"""In-memory tokenizers for the tiny test models: built from a built-in word list, never downloaded.

The same vocabulary and merges come out in every process (no hash-order dependence), so tokenizer files
saved by the tiny-model builders are byte-identical from run to run.

Each builder returns an instance of the real transformers class (``CLIPTokenizer``, ``T5Tokenizer``,
``Qwen2Tokenizer``, or ``TokenizersBackend`` for SigLIP) so ``save_pretrained`` and ``AutoTokenizer`` behave
exactly as they do for released checkpoints. The classes with their own ``__init__`` rebuild their
normaliser and pre-tokeniser on load, so only vocab/merges are taken from training here.
"""

from __future__ import annotations

import functools
import heapq
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer, Qwen2Tokenizer, T5Tokenizer, TokenizersBackend

# Ordinary English prompt/caption words, style vocabulary and the words of the Qwen prompt templates.
_PROMPT_WORDS_TEXT = """
    a an the this that these those it its is are was were be been being has have had do does did
    of in on at by for with without from to into onto over under above below behind beside between
    near far inside outside around through across along against among up down left right top bottom
    front back middle center corner edge side and or but not no yes as than then so very more most
    less least much many few some all each every both other another one two three four five six seven
    eight nine ten first second third single pair group couple several dozen
    i you he she we they me him her us them my your his our their who what which where when why how
    can could will would should may might must shall please describe detailing detail details image
    images picture photo photograph drawing painting illustration render rendering artwork art style
    styles styled stylized color colors colour colours shape shapes size sizes texture textures
    quantity text spatial relationship relationships object objects background foreground scene
    content subject composition layout frame view perspective
    system user assistant helpful caption captions write short long sentence sentences paragraph
    words word brief concise describing describes described visual visually appearance look looks
    black white gray grey silver red orange yellow gold green blue cyan teal purple violet pink
    magenta brown beige cream ivory tan navy indigo maroon crimson scarlet coral peach lavender
    olive lime mint turquoise amber sepia ochre rust bright dark light pale deep vivid muted warm
    cool cold hot soft hard sharp smooth rough glossy matte shiny dull flat thick thin bold subtle
    watercolor watercolour oil acrylic ink pencil charcoal pastel crayon gouache tempera fresco
    mosaic stained glass pixel pixels print woodcut etching engraving lithograph halftone sketch
    sketches sketched doodle cartoon anime manga comic comics digital vector graphic graphics poster
    collage paper papercut origami clay ceramic wood wooden stone marble metal metallic plastic
    fabric canvas brush brushwork brushstroke brushstrokes stroke strokes line lines hatching
    stippling impasto wash gradient pattern patterns stripes stripe dots dotted checkered grid
    spiral floral geometric abstract realistic realism photorealistic impressionist impressionism
    expressionist cubist cubism surreal surrealism minimalist minimal baroque gothic renaissance
    modern contemporary vintage retro classic classical traditional futuristic fantasy noir pop
    lighting light lights shadow shadows sunlight sunset sunrise dusk dawn night day daylight
    moonlight candlelight neon glow glowing backlit rim studio ambient dramatic cinematic golden
    hour overcast foggy misty rainy snowy sunny cloudy
    cat cats dog dogs bird birds horse horses fish cow sheep rabbit fox bear lion tiger elephant
    owl duck butterfly bee squirrel monkey deer wolf frog snake animal animals person people man
    men woman women child children boy girl baby face portrait hand hands eye eyes hair
    tree trees flower flowers rose roses leaf leaves grass forest garden field meadow mountain
    mountains hill hills river lake sea ocean beach wave waves sky cloud clouds sun moon star stars
    rain snow fire water rock rocks island desert city town street road bridge building buildings
    house houses castle tower church window door wall roof room table chair bed lamp book books cup
    mug bottle vase bowl plate fruit apple apples banana bananas orange oranges lemon pear grape
    grapes cake bread car cars bus train boat ship bicycle plane airplane robot clock guitar piano
    hat shoe shoes bag ball box boxes candle mirror umbrella kite balloon balloons
    small large big tiny huge little tall short wide narrow round square circular rectangular
    triangular old new young ancient empty full open closed quiet busy calm happy sad beautiful
    pretty ugly simple complex detailed intricate clean messy quality high low best bad good
    standing sitting lying walking running flying swimming eating drinking reading holding playing
    dancing sleeping looking facing smiling jumping
"""
PROMPT_WORDS: tuple[str, ...] = tuple(_PROMPT_WORDS_TEXT.split())

PUNCTUATION: tuple[str, ...] = tuple(".,:;!?'\"()[]{}-_/\\&%#*+=<>@$|~`^")

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

QWEN_PRETOKENIZE_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CLIP_PRETOKENIZE_REGEX = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)

_QWEN_VL_TEMPLATE_BODY = (
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
)


def qwen_vl_chat_template(default_system_prompt: str | None = "You are a helpful assistant.") -> str:
    """Qwen-VL chat template; Qwen2.5-VL inserts a default system prompt, Qwen3-VL (``None``) does not."""
    system = (
        "{% if loop.first and message['role'] != 'system' %}"
        f"<|im_start|>system\n{default_system_prompt}<|im_end|>\n{{% endif %}}"
        if default_system_prompt
        else ""
    )
    return (
        "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
        "{% for message in messages %}" + system + _QWEN_VL_TEMPLATE_BODY + "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def _word_forms(words: Iterable[str]) -> list[str]:
    """Each word lower-case and capitalised, deduplicated in order."""
    forms: dict[str, None] = {}
    for word in words:
        forms[word] = None
        forms[word.capitalize()] = None
    return list(forms)


def _byte_level_words(regex: str, corpus: list[str], keep_matches_only: bool) -> list[str]:
    """The corpus split as the tokenizer splits text: NFC, the regex, then bytes as ByteLevel characters."""
    from tokenizers import Regex, pre_tokenizers

    # CLIP keeps only the regex matches and drops whitespace; Qwen keeps everything ("isolated").
    split = (
        pre_tokenizers.Split(Regex(regex), behavior="removed", invert=True)
        if keep_matches_only
        else pre_tokenizers.Split(Regex(regex), behavior="isolated")
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    return [
        piece
        for text in corpus
        for piece, _ in pre_tokenizer.pre_tokenize_str(unicodedata.normalize("NFC", text))
    ]


def _train_byte_bpe(
    regex: str, corpus: list[str], special_tokens: list[str], suffix: str = ""
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE until every corpus word is one token; return (vocab, merges).

    Deterministic by construction, unlike the ``tokenizers`` trainer, which numbers the ``c</w>`` word-end
    symbols in hash-map order (so ids and tie-broken merges changed from process to process). Ids: specials,
    the 256 byte characters and then the word-end symbols in code-point order, then one per merge. Each step
    merges the most frequent adjacent pair, ties going to the smallest ``(left id, right id)``.
    """
    from tokenizers import pre_tokenizers

    counts = Counter(_byte_level_words(regex, corpus, keep_matches_only=bool(suffix)))
    words = sorted(counts)
    freqs = [counts[word] for word in words]
    symbols = [list(word) for word in words]
    if suffix:
        for word in symbols:
            word[-1] += suffix
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    word_ends = sorted({word[-1] for word in symbols} - set(alphabet))
    vocab: dict[str, int] = {}
    for token in [*special_tokens, *alphabet, *word_ends]:
        vocab.setdefault(token, len(vocab))
    tokens = list(vocab)  # id -> token; grows with the merges (a merge giving a known token keeps its id)
    ids = [[vocab[s] for s in word] for word in symbols]

    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    heap: list[tuple[int, int, int]] = []  # (-count, left, right); stale entries are skipped when popped

    def count_pairs(i: int, sign: int) -> None:
        for pair in zip(ids[i], ids[i][1:], strict=False):
            pair_counts[pair] = pair_counts.get(pair, 0) + sign * freqs[i]
            if sign > 0:
                where.setdefault(pair, set()).add(i)
            heapq.heappush(heap, (-pair_counts[pair], *pair))

    for i in range(len(ids)):
        count_pairs(i, +1)
    merges: list[tuple[str, str]] = []
    while heap:
        negative, left, right = heapq.heappop(heap)
        if negative >= 0 or pair_counts.get((left, right)) != -negative:
            continue
        merged = tokens[left] + tokens[right]
        new_id = vocab.setdefault(merged, len(tokens))
        if new_id == len(tokens):
            tokens.append(merged)
        merges.append((tokens[left], tokens[right]))
        for i in sorted(where.pop((left, right))):
            count_pairs(i, -1)
            word, merged_word, k = ids[i], [], 0
            while k < len(word):  # left to right, as the BPE model applies a merge
                if k + 1 < len(word) and word[k] == left and word[k + 1] == right:
                    merged_word.append(new_id)
                    k += 2
                else:
                    merged_word.append(word[k])
                    k += 1
            ids[i] = merged_word
            count_pairs(i, +1)
    return vocab, merges


@functools.cache
def _qwen_bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Byte-level BPE for Qwen: every word is one token, alone or after a space; specials get the last ids."""
    words = _word_forms(PROMPT_WORDS)
    corpus = words + [" " + w for w in words] + list(PUNCTUATION) + [" " + p for p in PUNCTUATION]
    corpus += ["\n", "\n\n", " ", "  ", ", ", ". ", ":\n", "0123456789"]
    vocab, merges = _train_byte_bpe(QWEN_PRETOKENIZE_REGEX, corpus, [])
    for token in QWEN_SPECIAL_TOKENS:  # like the real Qwen vocabulary: specials after the BPE pieces
        vocab[token] = len(vocab)
    return tuple(vocab.items()), tuple(merges)


@functools.cache
def _clip_bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Byte-level BPE with CLIP's ``</w>`` word suffix over lower-cased words."""
    corpus = [*PROMPT_WORDS, *PUNCTUATION, "0 1 2 3 4 5 6 7 8 9"]
    specials = ["<|startoftext|>", "<|endoftext|>"]
    vocab, merges = _train_byte_bpe(CLIP_PRETOKENIZE_REGEX, corpus, specials, suffix="</w>")
    return tuple(vocab.items()), tuple(merges)


def _unigram_pieces(specials: list[str]) -> list[tuple[str, float]]:
    """SentencePiece-style Unigram pieces: specials, whole ``▁word`` pieces, then single characters."""
    pieces: dict[str, float] = {s: 0.0 for s in specials}
    for word in _word_forms(PROMPT_WORDS):
        pieces.setdefault("▁" + word, -2.0 - 0.01 * len(word))
    chars = sorted(set(string.ascii_letters + string.digits) | set(PUNCTUATION))
    pieces.setdefault("▁", -5.0)
    for char in chars:
        pieces.setdefault("▁" + char, -8.0)
        pieces.setdefault(char, -9.0)
    return list(pieces.items())


def qwen_special_ids() -> dict[str, int]:
    """Ids of ``QWEN_SPECIAL_TOKENS`` in the offline Qwen tokenizer, without building it."""
    vocab = dict(_qwen_bpe()[0])
    return {token: vocab[token] for token in QWEN_SPECIAL_TOKENS}


def qwen_vocab_size() -> int:
    """Number of ids the offline Qwen tokenizer uses (the embedding must be at least this big)."""
    return len(_qwen_bpe()[0])


def build_qwen2_tokenizer(model_max_length: int = 32768, chat_template: str | None = None) -> Qwen2Tokenizer:
    """A ``Qwen2Tokenizer`` with Qwen's special tokens (the last 14 ids) and a Qwen-VL chat template."""
    from transformers import Qwen2Tokenizer

    vocab, merges = _qwen_bpe()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
        extra_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = chat_template or qwen_vl_chat_template()
    return tokenizer


def build_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` (bos 0, eos/pad/unk 1) that pads to ``model_max_length`` like OpenAI CLIP."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_bpe()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=model_max_length)


def clip_vocab_size() -> int:
    """Number of ids the offline CLIP tokenizer uses."""
    return len(_clip_bpe()[0])


def build_t5_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """A ``T5Tokenizer`` (Unigram; pad 0, eos 1, unk 2) without sentinel ids."""
    from transformers import T5Tokenizer

    pieces = _unigram_pieces(["<pad>", "</s>", "<unk>"])
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def t5_vocab_size() -> int:
    """Number of ids the offline T5 tokenizer uses."""
    return len(_unigram_pieces(["<pad>", "</s>", "<unk>"]))


def build_siglip_tokenizer(model_max_length: int = 64) -> TokenizersBackend:
    """A SigLIP-like tokenizer (lower-casing Unigram, ``</s>`` appended, pad = eos = id 1).

    ``SiglipTokenizer`` needs ``sentencepiece`` and a binary ``spiece.model``; this generic
    ``TokenizersBackend`` reproduces its behaviour and is what ``AutoTokenizer`` loads back.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import TokenizersBackend

    pieces = [(p, s) for p, s in _unigram_pieces(["<pad>", "</s>", "<unk>"]) if p == p.lower()]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return TokenizersBackend(
        tokenizer_object=backend,
        eos_token="</s>",
        pad_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def siglip_vocab_size() -> int:
    """Number of ids the offline SigLIP tokenizer uses."""
    return len([p for p, _ in _unigram_pieces(["<pad>", "</s>", "<unk>"]) if p == p.lower()])
