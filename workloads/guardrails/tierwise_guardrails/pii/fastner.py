"""The spaCy ``en_core_web_sm`` NER model, run with plain numpy instead of thinc + the Cython parser.

Same weights, same architecture, same greedy decoding — only cheaper execution for the short texts a
guardrail sees (one prompt at a time, ~20 tokens): thinc's per-layer Python dispatch, the parser's
per-call setup and ``doc.set_ents`` cost more than the arithmetic. ``tests/test_fastner.py`` holds
the entities equal to spaCy's own ``ner`` component on a corpus that is not the evaluation data.

The model (``spacy.TransitionBasedParser.v2``, ``state_type="ner"``, its own tok2vec):

* tok2vec: 4 ``HashEmbed`` tables over NORM, PREFIX, SUFFIX, SHAPE (MurmurHash3 x86-128 of the
  64-bit attribute id, 4 keys per id, rows summed) → concat → Maxout(96, pieces 3) → LayerNorm →
  4 × residual(window ±1 → Maxout(96, 3) → LayerNorm) → Linear(64).
* lower (``PrecomputableAffine``): per token, 3 feature slots × 64 hidden × 2 pieces, precomputed
  once per doc; a state's hidden layer is the sum of the slots of its context tokens (B(0), the
  open entity's first token E(0), and B(0)-1 while an entity is open; a missing token uses the
  learned padding) + bias, max over pieces.
* upper: Linear(74 actions) over the hidden layer; BILUO transition system, greedy argmax over the
  valid actions (first maximum wins, as in ``arg_max_if_valid``).

Only documents straight out of the tokenizer are supported (no preset entities, no sentence
boundaries), which is how the detector calls it.

Optimisation over a literal port: while no entity is open, a state's context is (B(0), -, -), so
the scores and the best *valid* action of every closed state are computed for all tokens in one
batched matrix product; the Python loop only does work inside entities.
"""

from __future__ import annotations

import numpy as np
from thinc.api import NumpyOps

# thinc's blis gemm: single-threaded. numpy's OpenBLAS matmul may fan out to threads, which on a
# loaded 2-core host costs far more than these (~20 x 288) products.
_GEMM = NumpyOps().gemm

_MOVES = {"B": 1, "I": 2, "L": 3, "U": 4, "O": 5}
_B, _I, _L, _U, _O = 1, 2, 3, 4, 5


def _maxout_pieces(Z: np.ndarray) -> np.ndarray:
    """Max over the piece axis (second to last) of (..., nP, nH)."""
    H = Z[..., 0, :]
    for p in range(1, Z.shape[-2]):
        H = np.maximum(H, Z[..., p, :])
    return H


def _find(model, name: str, **dims) -> list:
    found = [n for n in model.walk(order="dfs_pre") if n.name == name and all(n.maybe_get_dim(k) == v for k, v in dims.items())]
    return found


class NumpyNer:
    """Built from a loaded spaCy ``ner`` pipe; ``__call__(doc)`` → [(start_token, end_token, label)]."""

    def __init__(self, ner_pipe) -> None:
        from spacy.attrs import IS_SPACE, NORM, PREFIX, SHAPE, SUFFIX
        model = ner_pipe.model
        if ner_pipe.cfg.get("beam_width", 1) != 1:
            raise ValueError("NumpyNer supports greedy (beam_width=1) NER only")
        if model.attrs.get("unseen_classes"):
            raise ValueError("NumpyNer does not support models with unseen classes")
        self._ops = NumpyOps()
        self._columns = [NORM, PREFIX, SUFFIX, SHAPE, IS_SPACE]  # the last one is for decoding
        t2v = model.get_ref("tok2vec")
        embeds = sorted(_find(t2v, "hashembed"), key=lambda n: n.attrs["column"])
        if len(embeds) != 4:
            raise ValueError("unexpected tok2vec: expected 4 HashEmbed tables")
        self._embeds = [(np.ascontiguousarray(e.get_param("E"), dtype=np.float32), int(e.attrs["seed"])) for e in embeds]
        maxouts = _find(t2v, "maxout")
        norms = _find(t2v, "layernorm")
        if len(maxouts) != 5 or len(norms) != 5 or maxouts[0].get_dim("nI") != 384:
            raise ValueError("unexpected tok2vec: expected MultiHashEmbed + 4-layer MaxoutWindowEncoder")
        self._layers = []
        for mo, ln in zip(maxouts, norms):
            nO, nP, nI = mo.get_dim("nO"), mo.get_dim("nP"), mo.get_dim("nI")
            # Piece-major rows (nP, nO): the max over pieces becomes elementwise np.maximum of
            # contiguous blocks instead of a slow reduction over a length-3 inner axis.
            W = mo.get_param("W").transpose(1, 0, 2).reshape(nP * nO, nI)
            self._layers.append(
                (np.ascontiguousarray(W, dtype=np.float32), mo.get_param("b").T.reshape(nP * nO).astype(np.float32),
                 nO, nP, ln.get_param("G").astype(np.float32), ln.get_param("b").astype(np.float32))
            )
        proj = [n for n in _find(t2v, "linear")]
        if len(proj) != 1:
            raise ValueError("unexpected tok2vec: expected one output Linear")
        # The first Maxout is linear before its max: concat(e_1..e_4) @ W0.T == sum_t e_t @ W0_t.T,
        # and each e_t is a sum of 4 table rows. So precompute every table row times its block of
        # W0 once (11,000 x 288 floats, 12.7 MB) and gather: no per-text product for this layer.
        W0 = self._layers[0][0]
        self._embeds_mixed = []
        off = 0
        for E, seed in self._embeds:
            width = E.shape[1]
            P = (E.astype(np.float64) @ W0[:, off : off + width].T.astype(np.float64)).astype(np.float32)
            self._embeds_mixed.append((P, seed))
            off += width
        self._proj_W = np.ascontiguousarray(proj[0].get_param("W"), dtype=np.float32)
        self._proj_b = proj[0].get_param("b").astype(np.float32)
        lower = model.get_ref("lower")
        nF, nH, nPl, nIl = (lower.get_dim(d) for d in ("nF", "nO", "nP", "nI"))
        if nF != 3:
            raise ValueError("NumpyNer supports the 3-feature NER state only")
        self._nH, self._nPl = nH, nPl
        # Piece-major again: (nF, nP, nH).
        self._lower_W = np.ascontiguousarray(
            lower.get_param("W").transpose(0, 2, 1, 3).reshape(nF * nPl * nH, nIl), dtype=np.float32
        )
        self._lower_b = np.ascontiguousarray(lower.get_param("b").T, dtype=np.float32)  # (nP, nH)
        self._pad = np.ascontiguousarray(lower.get_param("pad").reshape(nF, nH, nPl).transpose(0, 2, 1), dtype=np.float32)
        upper = model.get_ref("upper")
        self._upper_WT = np.ascontiguousarray(upper.get_param("W").T, dtype=np.float32)  # (nH, nA)
        self._upper_b = upper.get_param("b").astype(np.float32)
        moves = ner_pipe.moves
        names = [moves.get_class_name(i) for i in range(moves.n_moves)]
        if len(names) != self._upper_b.shape[0]:
            raise ValueError("action count does not match the output layer")
        self._move = np.array([_MOVES.get(n.split("-", 1)[0], 0) for n in names])
        self._label = [n.split("-", 1)[1] if "-" in n else "" for n in names]
        labels = sorted({lab for lab in self._label if lab})
        lab_id = {lab: i + 1 for i, lab in enumerate(labels)}
        self._label_id = np.array([lab_id.get(lab, 0) for lab in self._label])
        m, lid = self._move, self._label_id
        # Validity of each action in a state with no open entity (no preset entities):
        # B needs >= 2 tokens left and a non-space token; U a non-space token; O always; I/L never.
        self._closed_b = (m == _B) & (lid > 0)
        self._closed_u = (m == _U) & (lid > 0)
        self._closed_o = m == _O
        self._in_label = {i: (m == _I) & (lid == i) for i in range(1, len(labels) + 1)}
        self._last_label = {i: (m == _L) & (lid == i) for i in range(1, len(labels) + 1)}

    # -- tok2vec ---------------------------------------------------------------------------------
    def tokvecs(self, doc, ids: np.ndarray | None = None) -> np.ndarray:
        if ids is None:
            ids = doc.to_array(self._columns)
        (W0, b0, nO, nP, G0, g0) = self._layers[0]
        Y = None
        for col, (P, seed) in enumerate(self._embeds_mixed):
            keys = self._ops.hash(np.ascontiguousarray(ids[:, col]), seed) % P.shape[0]
            part = P[keys].sum(axis=1)
            Y = part if Y is None else Y + part
        X = self._norm(self._pieces(Y + b0, nO, nP), G0, g0)
        # spaCy runs the window encoder through ``with_array(pad=receptive_field)``: the sequence
        # gets `depth` zero rows on each side, and those rows pass through the layers too. Layer k
        # only needs rows within depth-k of the text, so each layer computes two rows fewer.
        depth = len(self._layers) - 1
        zeros = np.zeros((depth, nO), np.float32)
        X = np.concatenate([zeros, X, zeros])
        for (W, b, nO, nP, G, g) in self._layers[1:]:
            win = np.concatenate([X[:-2], X[1:-1], X[2:]], axis=1)
            X = X[1:-1] + self._maxout_norm(win, W, b, nO, nP, G, g)
        return self._gemm(X, self._proj_W) + self._proj_b

    def _gemm(self, X, W):
        return _GEMM(np.ascontiguousarray(X), W, trans2=True)

    @classmethod
    def _maxout_norm(cls, X, W, b, nO, nP, G, g):
        Y = _GEMM(X, W, trans2=True)
        Y += b
        return cls._norm(cls._pieces(Y, nO, nP), G, g)

    @staticmethod
    def _pieces(Y, nO, nP):
        H = Y[:, :nO]
        for p in range(1, nP):
            H = np.maximum(H, Y[:, p * nO : (p + 1) * nO])
        return H

    @staticmethod
    def _norm(H, G, g):
        mu = H.mean(axis=1, keepdims=True)
        var = H.var(axis=1, keepdims=True) + np.float32(1e-08)
        return ((H - mu) * var ** np.float32(-0.5)) * G + g

    # -- greedy BILUO decoding -------------------------------------------------------------------
    def __call__(self, doc) -> list[tuple[int, int, str]]:
        n = len(doc)
        if n == 0:
            return []
        ids = doc.to_array(self._columns)
        T = self.tokvecs(doc, ids)
        nH, nP = self._nH, self._nPl
        F = self._gemm(T, self._lower_W).reshape(n, 3, nP, nH)  # feature slot contributions per token
        pad, bias = self._pad, self._lower_b
        # Closed states: context (B(0), -1, -1) for every token at once.
        Z = F[:, 0] + (pad[1] + pad[2] + bias)
        U = _maxout_pieces(Z) @ self._upper_WT + self._upper_b
        is_space = ids[:, 4] != 0
        valid = np.broadcast_to(self._closed_o, U.shape).copy()
        ok = ~is_space
        valid |= ok[:, None] & self._closed_u[None, :]
        can_b = ok.copy()
        can_b[-1] = False  # B needs at least 2 tokens left in the buffer
        valid |= can_b[:, None] & self._closed_b[None, :]
        best_closed = np.where(valid, U, -np.inf).argmax(axis=1)
        move, label_id = self._move, self._label_id
        ents: list[tuple[int, int, str]] = []
        b = 0
        while b < n:
            a = int(best_closed[b])
            mv = move[a]
            if mv == _O:
                b += 1
                continue
            if mv == _U:
                ents.append((b, b + 1, self._label[a]))
                b += 1
                continue
            # B: open an entity at b; step through I... until L.
            start, lid, lab = b, int(label_id[a]), self._label[a]
            b += 1
            in_ok, last_ok = self._in_label[lid], self._last_label[lid]
            while True:
                h = _maxout_pieces(F[b, 0] + F[start, 1] + F[b - 1, 2] + bias)
                s = h @ self._upper_WT + self._upper_b
                mask = last_ok | in_ok if n - b >= 2 else last_ok
                a = int(np.where(mask, s, -np.inf).argmax())
                b += 1
                if move[a] == _L:
                    ents.append((start, b, lab))
                    break
        return ents
