"""The partner registry: who may sell where and when, and how to reach them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...commerce import partners
from ...http.deps import CallerDep, RuntimeDep, require
from ...http.schemas import ContactUpdate, IdPath, PartnerPublic, PartnersPublic
from .common import errors

router = APIRouter(tags=["partners"])
__all__ = ["router"]


@router.get("/v1/partners")
def list_partners(
    rt: RuntimeDep,
    jurisdiction: Annotated[str | None, Query(max_length=2, pattern="^[A-Z]{2}$")] = None,
) -> PartnersPublic:
    """Every partner in the registry (from the bundle in force), with its contact. Public."""
    with rt.db.read() as session:
        rows = partners.list_partners(session, jurisdiction=jurisdiction)
        data = [PartnerPublic.model_validate(partners.partner_public(r)) for r in rows]
    return PartnersPublic(data=data, count=len(data))


@router.get("/v1/partners/{partner_id}", responses=errors(404))
def get_partner(partner_id: IdPath, rt: RuntimeDep) -> PartnerPublic:
    """One partner. Public."""
    with rt.db.read() as session:
        return PartnerPublic.model_validate(
            partners.partner_public(partners.get_partner(session, partner_id))
        )


@router.patch(
    "/v1/partners/{partner_id}",
    responses=errors(401, 403, 404),
    dependencies=[require("operator")],
)
def update_partner(
    partner_id: IdPath, body: ContactUpdate, rt: RuntimeDep, caller: CallerDep
) -> PartnerPublic:
    """Set how customers reach a partner. Role: operator."""
    row = partners.set_contact(rt, caller=caller, partner_id=partner_id, contact=body.contact)
    return PartnerPublic.model_validate(partners.partner_public(row))
