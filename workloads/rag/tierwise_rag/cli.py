"""``tierwise-rag`` (also ``tierwise rag ...``): serve, ingest a folder, query, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="tierwise RAG: hybrid retrieval over anchored and fluid knowledge", no_args_is_help=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the HTTP API (settings from TIERWISE_RAG_* env vars)."""
    import uvicorn

    uvicorn.run("tierwise_rag.app:create_app", factory=True, host=host, port=port, access_log=False)


@app.command()
def ingest(
    folder: Path, collection: str,
    kind: Annotated[str, typer.Option(help="anchored or fluid (created if missing)")] = "anchored",
    promote: bool = True, team: str = "cli",
    batch: Annotated[int, typer.Option(help="documents per staging write", min=1)] = 256,
) -> None:
    """Ingest every .md/.txt/.html file of FOLDER into COLLECTION (local store, TIERWISE_RAG_QDRANT_PATH).

    An anchored collection gets one new version through the same staging path as the HTTP API
    (open, add the files in batches, commit, promote); a fluid one gets upserts."""
    from .app import build_kb
    from .documents import RawDocument, content_type_for_path
    from .engine import NotFound
    from .settings import Settings, Team

    settings = Settings(teams={team: Team(api_key="cli-local-only-key", admin=["*"])}) if not Settings().teams else Settings()
    kb = build_kb(settings)
    try:
        kb.get_collection(team, collection)
    except NotFound:
        kb.create_collection(team, collection, kind)  # type: ignore[arg-type]
    paths = [(p, ct) for p in sorted(folder.rglob("*")) if p.is_file() and (ct := content_type_for_path(p.name))]
    raws = [RawDocument(p.relative_to(folder).as_posix(), p.read_bytes(), ct) for p, ct in paths]
    if kb.get_collection(team, collection).kind == "fluid":
        rep = kb.ingest(team, collection, raws)
        errors = [r for r in rep.results if r.error]
        out = {"version": None, "counts": rep.counts}
    else:
        staging = kb.open_staging(team, collection)
        errors = []
        for i in range(0, len(raws), batch):
            errors += [r for r in kb.stage_documents(team, collection, staging.id, raws[i : i + batch]) if r.error]
        rep = kb.commit_staging(team, collection, staging.id, promote=promote)
        out = {"version": rep.version, "created_version": rep.created_version, "promoted": rep.promoted, "counts": rep.counts}
    typer.echo(json.dumps({**out, "errors": [{"id": r.id, **(r.error or {})} for r in errors]}, indent=1))


@app.command()
def query(collection: str, text: str, top_k: int = 5, mode: str = "hybrid", team: str = "cli") -> None:
    """Query COLLECTION in the local store."""
    from .app import build_kb
    from .settings import Settings, Team

    settings = Settings(teams={team: Team(api_key="cli-local-only-key", admin=["*"])}) if not Settings().teams else Settings()
    res = build_kb(settings).retrieve(team, [collection], text, top_k=top_k, mode=mode)  # type: ignore[arg-type]
    for h in res.hits:
        typer.echo(f"{h.score:.4f}  {h.doc_id}#{h.chunk_index}  {' > '.join(h.headings)}  {h.text[:100]!r}")


@app.command("export-onnx")
def export_onnx_cmd(
    cache_dir: Annotated[Path | None, typer.Option(help="default: TIERWISE_RAG_ONNX_CACHE_DIR or ~/.cache")] = None,
    quantized: Annotated[bool, typer.Option(help="also write the int8 graph (TIERWISE_RAG_EMBED_QUANTIZED)")] = False,
) -> None:
    """Export the packaged all-MiniLM-L6-v2 weights to ONNX (once; a no-op when the cache has it)."""
    from .embedding import export_onnx, quantized_onnx
    from .settings import Settings

    path = export_onnx(cache_dir=cache_dir or Settings().onnx_cache_dir)
    typer.echo(str(path))
    if quantized:
        typer.echo(str(quantized_onnx(path)))
