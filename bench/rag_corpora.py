"""Corpora and metrics for the RAG benchmark (``bench/rag.py``): question-titled sections of FAQ
documents that Debian packages install, as (queries by id, answer text by the same id), and the
ranx-based scoring and tuning helpers every mode shares."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

FAQ_DIR = Path("/usr/share/doc/debian/FAQ")
PY_FAQ_DIR = Path("/usr/share/doc/python3.11/html/faq")
GIT_FAQ = Path("/usr/share/doc/git/html/gitfaq.html")
SQLITE_FAQ = Path("/usr/share/doc/sqlite3/faq.html")
XZ_FAQ = Path("/usr/share/doc/xz-utils/faq.txt.gz")
ZLIB_FAQ = Path("/usr/share/doc/zlib1g-dev/FAQ.gz")


# ---------------------------------------------------------------------------------------------- corpora
def load_faq(faq_dir: Path = FAQ_DIR) -> tuple[dict[str, str], dict[str, str]]:
    """Debian FAQ: (queries by id, answer-section HTML by the same id)."""
    from selectolax.lexbor import LexborHTMLParser

    queries: dict[str, str] = {}
    docs: dict[str, str] = {}
    for path in sorted(faq_dir.glob("*.en.html")):
        if path.name == "index.en.html":
            continue
        tree = LexborHTMLParser(path.read_text(encoding="utf-8"))
        for h2 in tree.css("h2.title"):
            title = " ".join(h2.text().split())
            m = re.match(r"^(\d+\.\d+)\.\s+(.*)$", title)
            if not m or not m.group(2).endswith("?"):
                continue
            section = h2
            while section is not None and not (section.tag == "div" and "section" in (section.attributes.get("class") or "").split()):
                section = section.parent
            if section is None:
                continue
            anchor = h2.css_first("a[id]")
            sid = f"{path.name.split('.')[0]}#{anchor.attributes['id'] if anchor else m.group(1)}"
            html = section.html or ""
            titlepage = section.css_first("div.titlepage")
            if titlepage is not None and titlepage.html:
                html = html.replace(titlepage.html, "", 1)  # the question text is removed from its answer
            queries[sid] = m.group(2)
            docs[sid] = html
    return queries, docs


def load_python_faq(faq_dir: Path = PY_FAQ_DIR) -> tuple[dict[str, str], dict[str, str]]:
    """Python FAQ (Sphinx HTML): each ``<section>`` whose heading is a question, minus the heading and
    minus nested sections (they are questions of their own)."""
    from selectolax.lexbor import LexborHTMLParser

    queries: dict[str, str] = {}
    docs: dict[str, str] = {}
    for path in sorted(faq_dir.glob("*.html")):
        if path.name == "index.html":
            continue
        tree = LexborHTMLParser(path.read_text(encoding="utf-8"))
        for section in tree.css("section[id]"):
            children = list(section.iter())
            at = next((i for i, c in enumerate(children) if c.tag in ("h1", "h2", "h3", "h4")), None)
            if at is None:
                continue
            title = " ".join(children[at].text().replace("¶", "").split())
            if not title.endswith("?"):
                continue
            parts = [c.html or "" for i, c in enumerate(children) if i != at and c.tag != "section"]
            sid = f"{path.stem}#{section.attributes['id']}"
            queries[sid] = title
            docs[sid] = "<div>" + "".join(parts) + "</div>"
    return queries, docs


def load_tools_faq(git_faq: Path = GIT_FAQ, sqlite_faq: Path = SQLITE_FAQ) -> tuple[dict[str, str], dict[str, str]]:
    """gitfaq (AsciiDoc HTML: ``<dt>`` question, ``<dd>`` answer) and the SQLite FAQ (``(n) question``
    in bold, answer in the following blockquote)."""
    from selectolax.lexbor import LexborHTMLParser

    queries: dict[str, str] = {}
    docs: dict[str, str] = {}
    tree = LexborHTMLParser(git_faq.read_text(encoding="utf-8"))
    for n, dt in enumerate(tree.css("dt.hdlist1")):
        title = " ".join(dt.text().split())
        dd = dt.next
        while dd is not None and dd.tag != "dd":
            dd = dd.next
        if title.endswith("?") and dd is not None:
            queries[f"gitfaq#{n}"] = title
            docs[f"gitfaq#{n}"] = dd.html or ""
    html = sqlite_faq.read_text(encoding="utf-8")
    for m in re.finditer(r'<a name="q(\d+)"></a>\s*<p><b>\((\d+)\)\s*(.*?)</b></p>\s*(<blockquote>.*?)(?=<a name="q\d+"></a>|<hr|</body>|$)', html, re.S):
        title = " ".join(re.sub(r"<[^>]+>", "", m.group(3)).split())
        queries[f"sqlitefaq#{m.group(1)}"] = title
        docs[f"sqlitefaq#{m.group(1)}"] = m.group(4)
    return queries, docs


def load_xz_zlib_faq(xz: Path = XZ_FAQ, zlib: Path = ZLIB_FAQ) -> tuple[dict[str, str], dict[str, str]]:
    """Plain-text FAQs of xz-utils (``Q:`` / ``A:`` blocks) and zlib (numbered questions) — the
    confirmation corpus: never used to choose anything, evaluated with the shipped defaults only."""
    import gzip

    queries: dict[str, str] = {}
    docs: dict[str, str] = {}
    text = gzip.decompress(xz.read_bytes()).decode("utf-8")
    for n, m in enumerate(re.finditer(r"^Q:\s+(.*?)\n\s*\nA:\s+(.*?)(?=^Q:|\Z)", text, re.S | re.M)):
        queries[f"xzfaq#{n}"] = " ".join(m.group(1).split())
        docs[f"xzfaq#{n}"] = "\n".join(line.strip() for line in m.group(2).strip().splitlines())
    text = gzip.decompress(zlib.read_bytes()).decode("utf-8")
    for m in re.finditer(r"^ ?(\d+)\. (.*?)\n\s*\n(.*?)(?=^ ?\d+\. |\Z)", text, re.S | re.M):
        queries[f"zlibfaq#{m.group(1)}"] = " ".join(m.group(2).split())
        docs[f"zlibfaq#{m.group(1)}"] = "\n".join(line.strip() for line in m.group(3).strip().splitlines())
    return queries, docs


PY_LIBRARY_DIR = Path("/usr/share/doc/python3.11/html/library")


def docs_2kb(n: int = 600, size: int = 2000, library_dir: Path = PY_LIBRARY_DIR) -> list[str]:
    """The ingest-throughput document set: real prose from the Python library reference HTML
    (``python3.11-doc``, files in sorted order): its paragraphs and code blocks, joined by blank
    lines and cut into ``n`` plain-text documents of at most ``size`` bytes, at paragraph boundaries
    once a document is at least half full, else on whitespace. Deterministic for one package version."""
    from selectolax.lexbor import LexborHTMLParser

    docs: list[str] = []
    cur = ""
    for path in sorted(library_dir.glob("*.html")):
        body = LexborHTMLParser(path.read_text(encoding="utf-8")).css_first("div.body")
        if body is None:
            continue
        for node in body.css("p, pre"):
            raw = node.text(separator=" ").replace("\u00b6", "")
            text = raw.strip() if node.tag == "pre" else " ".join(raw.split())
            while text:
                joined = f"{cur}\n\n{text}" if cur else text
                if len(joined.encode()) <= size:
                    cur, text = joined, ""
                    break
                if len(cur.encode()) >= size // 2:  # at least half full: the paragraph starts the next one
                    docs.append(cur)
                    cur = ""
                    continue
                room = size - len(cur.encode()) - (2 if cur else 0)
                head = text.encode()[:room].decode("utf-8", "ignore")
                cut = head.rfind(" ")
                cut = len(head) if cut <= 0 else cut
                docs.append(f"{cur}\n\n{text[:cut].rstrip()}" if cur else text[:cut].rstrip())
                cur, text = "", text[cut:].strip()
            if len(docs) >= n:
                return docs[:n]
    return docs


CORPORA = {"debian-faq": load_faq, "python-faq": load_python_faq, "git-sqlite-faq": load_tools_faq}
CONFIRM = {"xz-zlib-faq": load_xz_zlib_faq}


# ---------------------------------------------------------------------------------------------- metrics
def percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fold_docs(doc_ids: list[str], n: int = 10) -> dict[str, float]:
    """Chunk hits (best first) -> the first ``n`` distinct documents, scored by rank."""
    ranked: dict[str, float] = {}
    for d in doc_ids:
        if d not in ranked:
            ranked[d] = float(100 - len(ranked))
            if len(ranked) == n:
                break
    return ranked or {"__none__": 0.0}


def score(run: dict[str, dict[str, float]], qids: list[str]) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({q: {q: 1} for q in qids})
    m = evaluate(qrels, Run({q: run[q] for q in qids}), ["ndcg@10", "recall@10", "mrr@10"])
    return {"ndcg_at_10": round(float(m["ndcg@10"]), 4), "recall_at_10": round(float(m["recall@10"]), 4), "mrr_at_10": round(float(m["mrr@10"]), 4)}


class MemoEmbedder:
    """Tuning only: remembers query vectors so a grid does not re-embed the same questions (it
    changes speed, not results). Timed runs use the real embedder."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.dim, self._memo = inner, inner.name, inner.dim, {}

    def embed(self, texts: list[str], **kw):  # type: ignore[no-untyped-def]
        import numpy as np

        if len(texts) != 1:
            return self.inner.embed(texts, **kw)
        if texts[0] not in self._memo:
            self._memo[texts[0]] = self.inner.embed(texts)
        return np.array(self._memo[texts[0]])

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def pick(rows: list[dict], train: list[str], key: str) -> dict:
    """Minimax over training corpora of ``row[key][corpus]`` (a ratio to the best single retriever);
    ties: the better mean, then the earlier row."""
    best, best_key = rows[0], None
    for row in rows:
        vals = [row[key][c] for c in train]
        k = (round(min(vals), 4), round(statistics.fmean(vals), 4))
        if best_key is None or k > best_key:
            best, best_key = row, k
    return best
