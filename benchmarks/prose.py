"""Realistic benchmark posts: Markov prose over real text, varied Markdown, realistic front matter.

The word source is the shared corpus (real tech-blog titles, summaries and bodies, and the
listing-page extractions) plus the prose paragraphs of Python's own reference topics
(`pydoc_data`): about 80k words, 8k distinct. An order-2 word Markov chain over their sentences
fills pools of precomputed pieces once per process (sentences, paragraphs with inline markup,
lists, fenced code in seven languages, tables, images, quotes, titles, summaries); each post is
then assembled from the pools with a few dozen random draws, so 100k posts take seconds.

Same seed, same word sources and same Python → byte-identical files. Post `i` depends only on
(seed, i, total), not on the other posts.

Usage: python benchmarks/prose.py FOLDER COUNT [--seed 7]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SHARED = Path("/work/shared")
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
SPAN = timedelta(days=365 * 12)  # the posts' dates spread over twelve years before START
CATEGORY_COUNT = 40
TAG_COUNT = 100

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_MARKUP = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[*`|#>]+|\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’+-]*[A-Za-z0-9]")
_STOP_WORDS = (
    "the a an and or of to in on for with by is are was were be been it its this that these "
    "those as at from but not no can will would should could may might into than then there "
    "their they them you your we our which what when where who how why also only more most "
    "such each other some any all very have has had do does did if so about over under"
)
_STOP = frozenset(_STOP_WORDS.split())
_TITLE_TAILS = ("in Practice", "at Scale", "Explained", "Revisited", "from Scratch")
_DOMAINS = (
    "https://docs.python.org/3/library",
    "https://developer.mozilla.org/en-US/docs/Web",
    "https://github.com",
    "https://en.wikipedia.org/wiki",
    "https://blog.example.com/posts",
    "https://www.postgresql.org/docs/current",
    "https://kubernetes.io/docs/concepts",
)


# -- word sources ---------------------------------------------------------------------------


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end >= 0:
            return text[end + 5 :]
    return text


def _corpus_texts(shared: Path) -> list[str]:
    """Prose paragraphs of the shared corpus posts and seed pages (code, tables, lists out)."""
    texts: list[str] = []
    for path in sorted((shared / "corpus").rglob("*.md")):
        if path.name == "README.md":
            continue
        body = _strip_front_matter(path.read_text(encoding="utf-8"))
        body = re.sub(r"```.*?```", "", body, flags=re.S)
        for block in body.split("\n\n"):
            lines = [ln for ln in block.splitlines() if ln and ln[0] not in "#|-*>0123456789"]
            texts.append(" ".join(lines))
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(("title:", "summary:")):
                texts.append(line.split(":", 1)[1].strip().strip('"'))
    for path in sorted((shared / "seeds").glob("*.txt")):
        texts.extend(
            ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.count(" ") > 8
        )
    return texts


def _pydoc_texts() -> list[str]:
    """The unindented prose paragraphs of Python's reference topics (stdlib `pydoc_data`)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions leave pydoc_data out
        return []
    texts: list[str] = []
    for name in sorted(topics):
        for block in topics[name].split("\n\n"):
            lines = block.splitlines()
            if not lines or any(ln.startswith((" ", ">>>", "*", "-", "=")) for ln in lines):
                continue
            text = " ".join(lines)
            if len(text) > 80 and "::" not in text:
                texts.append(text)
    return texts


def _sentences(texts: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for text in texts:
        text = _MARKUP.sub(lambda m: m.group(1) or " ", text).strip()
        for sentence in _SENTENCE_END.split(text):
            words = sentence.split()
            if 5 <= len(words) <= 45 and words[-1][-1] in ".!?":
                out.append(words)
    return out


class Markov:
    """Order-2 word chain over sentences; `sentence` walks it from a random sentence start."""

    def __init__(self, sentences: Sequence[Sequence[str]]) -> None:
        self.starts: list[tuple[str, str]] = []
        self.next: dict[tuple[str, str], list[str]] = {}
        for words in sentences:
            self.starts.append((words[0], words[1]))
            for a, b, c in zip(words, words[1:], words[2:], strict=False):
                self.next.setdefault((a, b), []).append(c)

    def sentence(self, rng: random.Random, longest: int = 40) -> str:
        a, b = rng.choice(self.starts)
        words = [a, b]
        while len(words) < longest and words[-1][-1] not in ".!?":
            options = self.next.get((a, b))
            if not options:
                break
            a, b = b, rng.choice(options)
            words.append(b)
        text = " ".join(words).rstrip(",;:")
        return text if text[-1] in ".!?" else text + "."


# -- pools of pieces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pieces:
    """Everything a post is assembled from, precomputed once per seed."""

    paragraphs: tuple[str, ...]
    headings: tuple[str, ...]
    blocks: tuple[str, ...]  # lists, code, tables, images, quotes (repeats weight them)
    titles: tuple[str, ...]
    summaries: tuple[str, ...]
    alts: tuple[str, ...]
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    fingerprint: str  # sha256 prefix of the word sources: same fingerprint, same files


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "").replace("’", "")).strip("-")


def _ident(rng: random.Random, words: Sequence[str], style: str) -> str:
    parts = [rng.choice(words) for _ in range(rng.randint(1, 3))]
    if style == "camel":
        return parts[0] + "".join(p.title() for p in parts[1:])
    if style == "pascal":
        return "".join(p.title() for p in parts)
    return "_".join(parts)


def _code(rng: random.Random, words: Sequence[str]) -> str:
    def s() -> str:
        return _ident(rng, words, "snake")

    def c() -> str:
        return _ident(rng, words, "camel")

    def p() -> str:
        return _ident(rng, words, "pascal")

    n = rng.randint(2, 500)
    lang = rng.choice(("python", "python", "rust", "go", "sql", "yaml", "js", "bash"))
    if lang == "python":
        body = (
            f"from {s()} import {p()}\n\n\ndef {s()}({s()}: list[str], limit: int = {n}) -> dict:\n"
            f'    """{rng.choice(words).title()} the {rng.choice(words)} in batches."""\n'
            f"    out = {{}}\n    for {s()} in {s()}[:limit]:\n"
            f"        out[{s()}] = {p()}({s()}, retries={n % 7})\n    return out\n"
        )
    elif lang == "rust":
        body = (
            f"pub struct {p()} {{\n    {s()}: Vec<u64>,\n    {s()}: usize,\n}}\n\n"
            f"impl {p()} {{\n    pub fn {s()}(&mut self, value: u64) -> Option<usize> {{\n"
            f"        if self.{s()}.len() >= {n} {{\n            return None;\n        }}\n"
            f"        self.{s()}.push(value);\n"
            f'        println!("{rng.choice(words)}: {{value}}");\n'
            f"        Some(self.{s()}.len())\n    }}\n}}\n"
        )
    elif lang == "go":
        body = (
            f"func {p()}(ctx context.Context, {c()} []string) (int, error) {{\n"
            f"\tvar {c()} int\n\tfor _, item := range {c()} {{\n"
            f"\t\tif err := ctx.Err(); err != nil {{\n\t\t\treturn 0, err\n\t\t}}\n"
            f'\t\t{c()} += len(item) % {n}\n\t}}\n\tlog.Printf("{rng.choice(words)} %d", {c()})\n'
            f"\treturn {c()}, nil\n}}\n"
        )
    elif lang == "sql":
        body = (
            f"SELECT {s()}.id, {s()}.{s()}, count(*) AS {s()}\nFROM {s()}\n"
            f"JOIN {s()} USING (id)\nWHERE {s()} > now() - interval '{n} minutes'\n"
            f"GROUP BY 1, 2\nORDER BY 3 DESC\nLIMIT {n};\n"
        )
    elif lang == "yaml":
        body = (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {rng.choice(words)}-api\n"
            f"spec:\n  replicas: {n % 9 + 1}\n  template:\n    spec:\n      containers:\n"
            f"        - name: {rng.choice(words)}\n          image: registry.example.com/"
            f"{rng.choice(words)}:{n}\n          env:\n            - name: {s().upper()}\n"
            f'              value: "{rng.choice(words)}"\n'
        )
    elif lang == "js":
        body = (
            f"export async function {c()}({c()}, {{ timeout = {n * 10} }} = {{}}) {{\n"
            f"  const {c()} = new AbortController();\n"
            f"  const timer = setTimeout(() => {c()}.abort(), timeout);\n"
            f"  try {{\n    const res = await fetch(`/api/{rng.choice(words)}/${{{c()}}}`);\n"
            f"    return (await res.json()).{c()};\n"
            f"  }} finally {{\n    clearTimeout(timer);\n  }}\n}}\n"
        )
    else:
        body = (
            f"$ {rng.choice(words)} --{rng.choice(words)} {n} ./{s()}.toml\n"
            f"$ curl -s https://api.example.com/{rng.choice(words)} | jq '.{s()}'\n"
        )
    return f"```{lang}\n{body}```"


def _inline(rng: random.Random, sentence: str, words: Sequence[str]) -> str:
    """Emphasis, inline code or a link on one random word span of `sentence`, sometimes."""
    tokens = sentence.split(" ")
    if len(tokens) < 6 or rng.random() < 0.45:
        return sentence
    i = rng.randrange(1, len(tokens) - 2)
    span = rng.randint(1, 3)
    text = " ".join(tokens[i : i + span])
    kind = rng.random()
    if kind < 0.35:
        wrapped = f"[{text}]({rng.choice(_DOMAINS)}/{_slugify(text) or 'x'}/)"
    elif kind < 0.6:
        wrapped = f"**{text}**"
    elif kind < 0.8:
        wrapped = f"*{text}*"
    else:
        wrapped = f"`{_ident(rng, words, 'snake')}`"
    return " ".join([*tokens[:i], wrapped, *tokens[i + span :]])


def _table(rng: random.Random, words: Sequence[str]) -> str:
    cols = [rng.choice(words).title() for _ in range(rng.randint(3, 4))]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _ in range(rng.randint(3, 6)):
        cells = [rng.choice(words)] + [
            f"{rng.uniform(0, 999):.1f}" if rng.random() < 0.6 else rng.choice(words)
            for _ in cols[1:]
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _list(rng: random.Random, markov: Markov, words: Sequence[str]) -> str:
    numbered = rng.random() < 0.35
    items = []
    for k in range(1, rng.randint(3, 6) + 1):
        text = markov.sentence(rng, 18)
        if rng.random() < 0.3:
            text = f"**{rng.choice(words).title()}**: {text}"
        items.append(f"{k}. {text}" if numbered else f"- {text}")
    return "\n".join(items)


def _title(rng: random.Random, markov: Markov, words: Sequence[str]) -> str:
    words_ = markov.sentence(rng, 12).rstrip(".!?").split()[: rng.randint(4, 11)]
    title = " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in words_)
    roll = rng.random()
    if roll < 0.25:
        title += f": {rng.choice(words).title()} {rng.choice(_TITLE_TAILS)}"
    elif roll < 0.32:
        title += f" — {rng.choice(words).title()} vs {rng.choice(words).title()}"
    elif roll < 0.37:
        title = f"Why {title.lower().capitalize()}?"
    return title[:88].rstrip(" :—")


def _meta_names(shared: Path, key: str) -> list[str]:
    """The corpus's `key` (categories, tags) names, most used first."""
    counts: Counter[str] = Counter()
    for path in sorted((shared / "corpus").rglob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{key}: ["):
                counts.update(json.loads(line.split(":", 1)[1]))
    return [name for name, _ in counts.most_common()]


@functools.cache
def pieces(seed: int = 7, shared: Path = SHARED) -> Pieces:
    """The pools for `seed`, built from the word sources (a second or so, once per process)."""
    texts = _corpus_texts(shared) * 3 + _pydoc_texts()  # tech-blog prose weighs more
    fingerprint = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    sentences = _sentences(texts)
    markov = Markov(sentences)
    counts = Counter(w.lower() for s in sentences for w in s if _WORD.fullmatch(w))
    vocab = [w for w, n in counts.most_common() if w not in _STOP and len(w) > 3 and n > 1]
    words = [w for w in vocab[:3000] if w.isascii() and w.isalpha()]
    rng = random.Random(seed)

    paragraphs = []
    for _ in range(6000):
        paragraphs.append(
            " ".join(_inline(rng, markov.sentence(rng), words) for _ in range(rng.randint(2, 6)))
        )
    headings = [_title(rng, markov, words).split(":")[0] for _ in range(3000)]
    alts = [markov.sentence(rng, 10).rstrip(".") for _ in range(1000)]
    makers: tuple[tuple[Callable[[], str], int], ...] = (
        (lambda: _list(rng, markov, words), 5),
        (lambda: _code(rng, words), 4),
        (lambda: _table(rng, words), 1),
        (lambda: f"![{rng.choice(alts)}](/images/{_slugify(rng.choice(alts))[:40]}.png)", 1),
        (lambda: f"> {markov.sentence(rng)} {markov.sentence(rng)}", 1),
    )
    blocks = [make() for make, weight in makers for _ in range(300 * weight)]
    summaries = []
    for _ in range(5000):
        text = " ".join(markov.sentence(rng, 30) for _ in range(rng.randint(1, 2)))
        summaries.append(text.rstrip(".") if rng.random() < 0.2 else text)

    categories = _meta_names(shared, "categories")[:CATEGORY_COUNT]
    categories += [w.title() for w in words if w.title() not in categories]
    tags = _meta_names(shared, "tags")[:TAG_COUNT]
    tags += [w for w in words if w not in tags]
    return Pieces(
        paragraphs=tuple(paragraphs),
        headings=tuple(headings),
        blocks=tuple(blocks),
        titles=tuple(_title(rng, markov, words) for _ in range(20000)),
        summaries=tuple(summaries),
        alts=tuple(alts),
        categories=tuple(categories[:CATEGORY_COUNT]),
        tags=tuple(tags[:TAG_COUNT]),
        fingerprint=fingerprint,
    )


# -- one post -------------------------------------------------------------------------------


def _zipf_sample(rng: random.Random, names: Sequence[str], k: int) -> list[str]:
    """`k` distinct names, popular ones (early in `names`) far more often: ~1/rank."""
    out: list[str] = []
    while len(out) < k:
        name = names[min(len(names) - 1, int(len(names) ** rng.random()) - 1)]
        if name not in out:
            out.append(name)
    return out


def _yaml_list(key: str, names: Sequence[str], rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"{key}: [{', '.join(json.dumps(n, ensure_ascii=False) for n in names)}]\n"
    return f"{key}:\n" + "".join(f"  - {json.dumps(n, ensure_ascii=False)}\n" for n in names)


def _date(moment: datetime, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return moment.strftime("%Y-%m-%d")
    if roll < 0.25:
        return (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(rng: random.Random, pc: Pieces) -> str:
    target = rng.randint(3000, 5500)
    parts = [rng.choice(pc.paragraphs)]
    size = len(parts[0])
    while size < target:
        level = "###" if rng.random() < 0.2 else "##"
        section = [f"{level} {rng.choice(pc.headings)}"]
        section += rng.choices(pc.paragraphs, k=rng.randint(1, 3))
        if rng.random() < 0.6:
            section.insert(rng.randint(2, len(section)), rng.choice(pc.blocks))
        parts += section
        size += sum(len(s) for s in section)
    return "\n\n".join(parts) + "\n"


def post(i: int, total: int, seed: int = 7, newest: bool = False) -> tuple[str, str]:
    """(relative path, text) of post `i` of `total`: dated in slot `i` of twelve years back from
    START, older as `i` grows, or `i` seconds after START if `newest`."""
    pc = pieces(seed)
    rng = random.Random(seed * 1_000_003 + i)
    if newest:
        moment = START + timedelta(seconds=i + 1)  # not in the future: unpublished
    else:
        moment = START - SPAN * ((i + rng.random()) / max(total, 1))
    moment = moment.replace(microsecond=0)
    title = rng.choice(pc.titles)
    slug = f"{_slugify(title)[:72].rstrip('-')}-{i}"
    body = _body(rng, pc)
    fm = [f"title: {json.dumps(title, ensure_ascii=False)}\n", f"slug: {slug}\n"]
    fm.append(f"date: {_date(moment, rng)}\n")
    if rng.random() < 0.15:
        fm.append(f"updated: {_date(moment + timedelta(days=rng.randint(1, 400)), rng)}\n")
    fm.append(f"summary: {json.dumps(rng.choice(pc.summaries), ensure_ascii=False)}\n")
    fm.append(_yaml_list("categories", _zipf_sample(rng, pc.categories, rng.randint(1, 3)), rng))
    fm.append(_yaml_list("tags", _zipf_sample(rng, pc.tags, rng.randint(2, 4)), rng))
    if rng.random() < 0.3:
        fm.append(f"reading_time: {max(1, body.count(' ') // 220)}\n")
    if rng.random() < 0.25:
        fm.append(f"image: /images/{slug[:40]}.png\n")
        if rng.random() < 0.7:
            fm.append(f"image_alt: {json.dumps(rng.choice(pc.alts), ensure_ascii=False)}\n")
    return f"{moment.year}/{slug}.md", "---\n" + "".join(fm) + "---\n" + body


def write_posts(
    folder: Path, count: int, seed: int = 7, first: int = 0, newest: bool = False
) -> None:
    """Write `count` posts numbered from `first` under `folder`/<year>/ (same signature as
    synth.write_posts; `newest` dates them after every other post)."""
    total = first + count
    root = str(folder)
    made: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for i in range(first, total):
        rel, text = post(i, total, seed, newest)
        year = rel[:4]
        if year not in made:
            os.makedirs(os.path.join(root, year), exist_ok=True)
            made.add(year)
        fd = os.open(os.path.join(root, rel), flags, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    t0 = time.perf_counter()
    pc = pieces(args.seed)
    t1 = time.perf_counter()
    write_posts(args.folder, args.count, args.seed)
    t2 = time.perf_counter()
    print(f"pieces {t1 - t0:.2f} s (sources {pc.fingerprint}); {args.count} posts {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
