"""Paged listings (tags, referrers) are bounded as a whole, not only page by page.

Each page is bounded by ``unpack.max_manifest_size``, but a hostile registry can chain pages with
``Link: <…>; rel="next"``: up to 1000 of them were fetched, parsed and kept (4 GiB with the default
limit), on the trust check's path for referrers. The whole listing now stops at four documents' worth.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Callable

import pytest

from engine.registry import mediatypes as mt
from engine.registry.client import LISTING_DOCUMENTS, RegistryClient
from engine.registry.errors import VerificationError
from tests.engine.registry.fixtures import make_config
from tests.engine.registry.hostile import Hostile, reply
from tests.engine.registry.test_hostile import ref_on

Make = Callable[..., RegistryClient]
LIMIT = 64 * 1024
SUBJECT = "sha256:" + "5" * 64


def _page(kind: str) -> bytes:
    """A page just under LIMIT bytes: tags, or referrer descriptors."""
    if kind == "tags":
        return json.dumps({"name": "evil/app", "tags": [f"t{i:06d}" for i in range(LIMIT // 12)]}).encode()
    entry = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "6" * 64, "size": 1,
             "artifactType": "application/vnd.evil"}
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                       "manifests": [entry] * (LIMIT // 200)}).encode()


@pytest.mark.parametrize("kind", ["tags", "referrers"])
def test_endless_chain_of_pages_stops_at_the_listing_budget(make_client: Make, hostile: Hostile,
                                                            kind: str) -> None:
    path = "/v2/evil/app/tags/list" if kind == "tags" else f"/v2/evil/app/referrers/{SUBJECT}"
    page = _page(kind)
    assert LIMIT // 2 < len(page) <= LIMIT
    served = {"n": 0}

    def endless(h: BaseHTTPRequestHandler) -> None:
        served["n"] += 1
        reply(h, 200, page, {"Content-Type": "application/json" if kind == "tags" else mt.OCI_INDEX,
                             "Link": f'<{path}?last={served["n"]}>; rel="next"'})

    hostile.on("GET", path, endless)
    client = make_client(make_config(unpack={"max_manifest_size": LIMIT}))
    listing = (lambda: client.list_tags(ref_on(hostile))) if kind == "tags" else \
        (lambda: client.referrers(ref_on(hostile), SUBJECT))
    with pytest.raises(VerificationError, match=rf"its pages add up to more than {LISTING_DOCUMENTS} times "
                                                rf"the {LIMIT}-byte limit \(unpack.max_manifest_size\)"):
        listing()
    assert served["n"] <= 2 * LISTING_DOCUMENTS + 1


def test_a_listing_within_the_budget_is_whole(make_client: Make, hostile: Hostile) -> None:
    path = "/v2/evil/app/tags/list"
    pages = [json.dumps({"tags": [f"p{n}-{i}" for i in range(3)]}).encode() for n in range(3)]

    def paged(h: BaseHTTPRequestHandler) -> None:
        n = int(h.path.partition("last=")[2] or 0)
        more = {"Link": f'<{path}?last={n + 1}>; rel="next"'} if n + 1 < len(pages) else {}
        reply(h, 200, pages[n], {"Content-Type": "application/json", **more})

    hostile.on("GET", path, paged)
    assert make_client().list_tags(ref_on(hostile)) == [f"p{n}-{i}" for n in range(3) for i in range(3)]
