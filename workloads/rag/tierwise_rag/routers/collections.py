"""Collection admin API: create / list / get / update / drop, versions, promote, rollback, delete a version, documents and staleness views."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, Response

from ..deps import KBDep, TeamDep
from ..engine import CollectionInfo
from ..schemas import CreateCollectionRequest, PromoteRequest, RollbackRequest, UpdateCollectionRequest

router = APIRouter(prefix="/v1/collections")


@router.get("")
async def list_collections(kb: KBDep, team: TeamDep) -> dict[str, Any]:
    return {"object": "list", "data": [c.model_dump() for c in kb.list_collections(team)]}


@router.post("", status_code=201, response_model=CollectionInfo)
async def create_collection(body: CreateCollectionRequest, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return await asyncio.to_thread(kb.create_collection, team, body.name, body.kind, fusion=body.fusion, max_age_seconds=body.max_age_seconds)


@router.get("/{name}", response_model=CollectionInfo)
async def get_collection(name: str, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return kb.get_collection(team, name)


@router.patch("/{name}", response_model=CollectionInfo)
async def update_collection(name: str, body: UpdateCollectionRequest, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return await asyncio.to_thread(kb.update_collection, team, name, fusion=body.fusion, max_age_seconds=body.max_age_seconds)


@router.delete("/{name}", status_code=204)
async def drop_collection(name: str, kb: KBDep, team: TeamDep) -> Response:
    await asyncio.to_thread(kb.drop_collection, team, name)
    return Response(status_code=204)


@router.get("/{name}/versions")
async def list_versions(name: str, kb: KBDep, team: TeamDep) -> dict[str, Any]:
    info = kb.get_collection(team, name)
    return {"object": "list", "active_version": info.active_version, "history": info.history, "data": [v.model_dump() for v in info.versions]}


@router.post("/{name}/promote", response_model=CollectionInfo)
async def promote(name: str, body: PromoteRequest, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return await asyncio.to_thread(kb.promote, team, name, body.version)


@router.post("/{name}/rollback", response_model=CollectionInfo)
async def rollback(name: str, body: RollbackRequest, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return await asyncio.to_thread(kb.rollback, team, name, body.version)


@router.delete("/{name}/versions/{version}", response_model=CollectionInfo)
async def delete_version(name: str, version: str, kb: KBDep, team: TeamDep) -> CollectionInfo:
    return await asyncio.to_thread(kb.delete_version, team, name, version)


@router.get("/{name}/staleness")
async def staleness(name: str, kb: KBDep, team: TeamDep) -> dict[str, Any]:
    return dataclasses.asdict(kb.staleness(team, name))


@router.get("/{name}/documents")
async def documents(name: str, kb: KBDep, team: TeamDep) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": k, **v} for k, v in sorted(kb.documents(team, name).items())]}
