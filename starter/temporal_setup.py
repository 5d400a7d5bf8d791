"""Registering our search attributes on a Temporal server (dev server, time-skipping server, cluster)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from contracts.flows import SEARCH_ATTRIBUTES


def dev_server_flags() -> list[str]:
    """`temporal server start-dev --search-attribute Name=Keyword ...`"""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


def type_name(key: SearchAttributeKey) -> str:
    """The CLI's name of a key's type (Keyword, Datetime, ...)."""
    return IndexedValueType.Name(key.indexed_value_type).removeprefix("INDEXED_VALUE_TYPE_").title()


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    wanted = {key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES}
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace))
        missing = {name: kind for name, kind in wanted.items() if name not in existing.custom_attributes}
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping server cannot list them
            raise
        missing = wanted
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
