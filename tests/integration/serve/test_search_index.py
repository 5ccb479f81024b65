"""The profile search index, one behaviour suite run against every backend: Tantivy on
disk, and OpenSearch played by the local contract server (tests/support/opensearch).
Tantivy's own files (pointer, generations, readers across processes) are tested at the end."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.support.opensearch import OpenSearchServer

from opencdp.errors import InvalidNameError
from opencdp.identity.model import PROFILES
from opencdp.serve.search import (
    ProfileSearch,
    SearchError,
    SearchIndexUnavailableError,
    SearchPage,
    SearchRebuildNeededError,
    open_search,
    search_folder,
)
from opencdp.serve.search.tantivy_index import POINTER, TantivyProfileSearch
from opencdp.settings import load_settings

pytestmark = pytest.mark.integration

PEOPLE: list[dict[str, Any]] = [
    {"profile_id": "id-john", "first_name": "John", "last_name": "Smith",
     "email": "jsmith@example.com", "phone": "+14155550100", "city": "San Francisco",
     "region": "CA", "postcode": "94103", "country": "US", "sources": ["crm", "shopify"],
     "identified": True, "rfm_segment": "champions", "preferred_channel": "email",
     "external_ids": [("shopify", "SH-1001")], "company": "Initech"},
    {"profile_id": "id-jon", "first_name": "Jon", "last_name": "Smith",
     "email": "jon.s@example.org", "phone": "+14155550199", "city": "Oakland",
     "region": "CA", "country": "US", "sources": ["stripe"], "identified": True,
     "rfm_segment": "at_risk", "preferred_channel": "sms"},
    {"profile_id": "id-johnny", "first_name": "Johnny", "last_name": "Smithson",
     "email": "johnny@example.net", "phone": "+12125550123", "city": "New York",
     "region": "NY", "country": "US", "sources": ["shopify"], "identified": False},
    {"profile_id": "id-jose", "first_name": "José", "last_name": "Núñez",
     "email": "jose.nunez@example.es", "phone": "+34612345678", "city": "Madrid",
     "country": "ES", "sources": ["crm"], "identified": True},
    {"profile_id": "id-joanna", "first_name": "Joanna", "last_name": "Smith",
     "email": "joanna.smith@example.co.uk", "phone": "+442079460958", "city": "London",
     "postcode": "SW1A 1AA", "country": "GB", "sources": ["crm"], "identified": True},
    {"profile_id": "id-anon", "sources": ["events"], "identified": False},
]  # fmt: skip


def profiles(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PROFILES)


def ids(page: SearchPage) -> list[str]:
    """The page's profiles, by name: profile ids are "id-" and the name (the words of a
    profile id are searchable too, so ids equal to names would skew every ranking)."""
    return [hit.profile_id.removeprefix("id-") for hit in page.hits]


Opener = Callable[..., ProfileSearch]  # (tenant) -> the tenant's index


@pytest.fixture(params=["tantivy", "opensearch"])
def open_index(request: pytest.FixtureRequest, tmp_path: Path, clean_env: None) -> Iterator[Opener]:
    """`open_index(tenant)` opens the tenant's index of the backend under test as the loader
    and the API do (open_search); each call gives a new handle, as another process holds.
    Tenant "gb" is in the United Kingdom, the others in the United States."""
    search: dict[str, Any] = {"backend": request.param}
    opened: list[ProfileSearch] = []
    with contextlib.ExitStack() as stack:
        if request.param == "opensearch":
            search["url"] = stack.enter_context(OpenSearchServer()).url
        settings = load_settings(
            tmp_path, serve={"search": search}, tenants={"gb": {"default_country": "GB"}}
        )

        def open_(tenant: str = "acme") -> ProfileSearch:
            opened.append(open_search(settings, tenant))
            return opened[-1]

        yield open_
        for index in opened:
            index.close()


@pytest.fixture
def index(open_index: Opener) -> ProfileSearch:
    search = open_index()
    search.sync(profiles(PEOPLE), [], full=True, snapshot_id=7)
    return search


@pytest.fixture
def tantivy(tmp_path: Path) -> TantivyProfileSearch:
    search = TantivyProfileSearch(tmp_path / "search" / "acme", lock_timeout=1)
    search.sync(profiles(PEOPLE), [], full=True, snapshot_id=7)
    return search


# --- finding people ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "first"),
    [
        ("Jonh Smiht", "john"),  # a transposition in each word
        ("Jhon Smtih", "john"),
        ("John Smith", "john"),  # exact beats Jon Smith (fuzzy) and Johnny Smithson
        ("Jon Smith", "jon"),
        ("Smithsn", "johnny"),  # one edit from Smithson, two from Smith
        ("Joana Smyth", "joanna"),
        ("smith john", "john"),  # words in any order
    ],
)
def test_typo_tolerant_names(index: ProfileSearch, q: str, first: str) -> None:
    assert ids(index.search(q))[0] == first


def test_words_as_near_rank_alike(index: ProfileSearch) -> None:
    first, second, *_ = index.search("Johny").hits  # one edit from both John and Johnny
    assert {first.profile_id, second.profile_id} == {"id-john", "id-johnny"}
    assert first.score == second.score


def test_an_exact_name_ranks_above_fuzzy_and_prefix_matches(index: ProfileSearch) -> None:
    page = index.search("John Smith")
    assert ids(page)[:3] == ["john", "jon", "johnny"]  # exact, then one edit, then a prefix
    scores = [hit.score for hit in page.hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1]


@pytest.mark.parametrize("q", ["jsmtih@example.com", "jsmith@exmaple.com", "jsmith@example.co"])
def test_a_misspelled_email_finds_the_person(index: ProfileSearch, q: str) -> None:
    assert ids(index.search(q))[0] == "john"


@pytest.mark.parametrize("q", ["jsmi", "jsmith@exa", "JSmith@Example.com"])
def test_the_first_letters_of_an_email(index: ProfileSearch, q: str) -> None:
    assert ids(index.search(q)) == ["john"]


def test_the_local_part_of_an_email_ranks_its_owner_first(index: ProfileSearch) -> None:
    # "jsmith" is also "smith" misspelled: the other Smiths follow (in either order).
    first, *others = ids(index.search("jsmith"))
    assert first == "john"
    assert sorted(others) == ["joanna", "jon"]


@pytest.mark.parametrize(
    "q", ["0100", "5550100", "555-0100", "+1 (415) 555-0100", "4155550100", "(415) 555 0100"]
)
def test_a_phone_by_its_last_digits_or_in_any_format(index: ProfileSearch, q: str) -> None:
    assert ids(index.search(q)) == ["john"]


def test_a_whole_phone_scores_above_its_last_digits(index: ProfileSearch) -> None:
    (whole,) = index.search("+14155550199").hits
    (suffix,) = index.search("0199").hits
    assert whole.profile_id == suffix.profile_id == "id-jon"
    assert whole.score > suffix.score
    assert ids(index.search("555-01")) == []  # digits of the middle are not an end


def test_a_national_number_uses_the_tenant_country(open_index: Opener) -> None:
    search = open_index("gb")
    search.sync(profiles(PEOPLE), [], full=True, snapshot_id=1)
    assert ids(search.search("020 7946 0958")) == ["joanna"]


@pytest.mark.parametrize(
    ("q", "found"), [("jose", "jose"), ("JOSÉ NÚÑEZ", "jose"), ("nunez", "jose")]
)
def test_accents_and_case_do_not_matter(index: ProfileSearch, q: str, found: str) -> None:
    assert ids(index.search(q)) == [found]


def test_short_names_are_found_exactly(open_index: Opener) -> None:
    search = open_index("short")
    rows = [{"profile_id": "1", "first_name": "Li", "last_name": "Wu"}, PEOPLE[0]]
    search.sync(profiles(rows), [], full=True, snapshot_id=1)
    assert [hit.profile_id for hit in search.search("li wu").hits] == ["1"]
    assert search.search("lu wi").hits == ()  # two letters: no typo allowed


def test_a_misspelling_finds_every_name_near_it_however_many(open_index: Opener) -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    near = {f"smith{c}" for c in letters} | {f"{c}smith" for c in letters}  # one edit away
    search = open_index("many")
    rows = [{"profile_id": f"p{i}", "last_name": name} for i, name in enumerate(sorted(near))]
    search.sync(profiles(rows), [], full=True, snapshot_id=1)
    assert search.search("smith", limit=100).total == len(near) == 52  # more than 50 terms


def test_ids_company_and_places(index: ProfileSearch) -> None:
    assert ids(index.search("sh-1001")) == ["john"]
    assert ids(index.search("ID-JOSE")) == ["jose"]
    assert ids(index.search("initech")) == ["john"]
    assert ids(index.search("smith london")) == ["joanna"]
    assert ids(index.search("SW1A 1AA")) == ["joanna"]


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "found"),
    [
        ({"country": "us"}, {"john", "jon", "johnny"}),
        ({"country": "United Kingdom"}, {"joanna"}),
        ({"city": "san francisco"}, {"john"}),
        ({"region": "CA"}, {"john", "jon"}),
        ({"postcode": "sw1a1aa"}, {"joanna"}),
        ({"rfm_segment": "at_risk"}, {"jon"}),
        ({"preferred_channel": "email"}, {"john"}),
        ({"sources": "stripe"}, {"jon"}),
        ({"sources": "stripe,shopify"}, {"john", "jon", "johnny"}),
        ({"identified": "false"}, {"johnny"}),
        ({"identified": "true", "country": "GB"}, {"joanna"}),
    ],
)
def test_filters_by_trait(index: ProfileSearch, filters: dict[str, str], found: set[str]) -> None:
    # "smith" matches john, jon, joanna by name and johnny by prefix (Smithson).
    assert set(ids(index.search("smith", filters=filters))) == found


def test_filters_alone_list_the_matching_profiles(index: ProfileSearch) -> None:
    page = index.search("", filters={"sources": "crm"})
    assert set(ids(page)) == {"john", "jose", "joanna"}
    assert page.total == 3


def test_an_unknown_filter_is_refused(index: ProfileSearch) -> None:
    with pytest.raises(SearchError, match="unknown search filter 'email'") as caught:
        index.search("smith", filters={"email": "x"})
    assert "country" in str(caught.value)


# --- paging and absurd input ---------------------------------------------------------------


def test_pages_and_total(index: ProfileSearch) -> None:
    everything = index.search("smith", limit=10)
    assert everything.total == 4
    pages = [index.search("smith", limit=1, offset=k) for k in range(5)]
    assert [ids(p) for p in pages[:4]] == [[i] for i in ids(everything)]
    assert pages[4].hits == ()
    assert all(p.total == 4 for p in pages)
    with pytest.raises(SearchError):
        index.search("smith", limit=0)


@pytest.mark.parametrize(
    "q",
    [
        "",
        "   ",
        "x" * 1000,
        "smith " * 200,
        "!!!?!",
        '"john',
        "name:john",
        "(john OR smith)",
        "john*",
        "jo?n~2",
        "[a TO z]",
        "/.*/",
        "+john -smith",
        "\\",
        "\x00",
        "@",
        "🙂",
        "a" * 70 + "@example.com",
    ],
)
def test_absurd_queries_never_crash(index: ProfileSearch, q: str) -> None:
    page = index.search(q)
    assert page.total >= len(page.hits)


def test_query_syntax_is_read_as_text(index: ProfileSearch) -> None:
    assert ids(index.search("(john*"))[0] == "john"
    assert ids(index.search("name:jose")) == []  # "name" must match too: nobody is called so
    assert index.search("").hits == ()


# --- sync and snapshots --------------------------------------------------------------------


def test_a_missing_index_finds_nothing(open_index: Opener) -> None:
    search = open_index("never")
    assert search.search("john") == SearchPage((), 0)
    assert search.synced_snapshot() is None
    with pytest.raises(SearchError):  # input is still checked
        search.search("john", filters={"colour": "red"})


def test_an_incremental_sync_updates_adds_and_deletes(index: ProfileSearch) -> None:
    assert index.synced_snapshot() == 7
    renamed = {**PEOPLE[0], "last_name": "Smythe-Jones", "email": "john.sj@example.com"}
    new = {"profile_id": "id-mei", "first_name": "Mei", "last_name": "Chen", "country": "US"}
    index.sync(profiles([renamed, new]), ["id-jon"], full=False, snapshot_id=8)
    assert index.synced_snapshot() == 8
    assert ids(index.search("smythe jones")) == ["john"]
    assert ids(index.search("jsmith@example.com")) == []
    assert ids(index.search("john.sj@")) == ["john"]
    assert ids(index.search("mei chen")) == ["mei"]
    assert ids(index.search("jon smith", filters={"sources": "stripe"})) == []
    assert index.search("", filters={"country": "US"}).total == 3  # john, johnny, mei


def test_applying_the_same_delta_twice_changes_nothing(index: ProfileSearch) -> None:
    delta = profiles([{**PEOPLE[1], "city": "Berkeley"}])
    index.sync(delta, [], full=False, snapshot_id=8)
    index.sync(delta, [], full=False, snapshot_id=8)
    assert ids(index.search("jon", filters={"city": "berkeley"})) == ["jon"]
    assert index.search("", filters={"sources": "stripe"}).total == 1


def test_deleting_an_unknown_profile_is_harmless(index: ProfileSearch) -> None:
    index.sync(profiles([]), ["nobody"], full=False, snapshot_id=9)
    assert index.synced_snapshot() == 9
    assert index.search("", filters={"identified": "true"}).total == 4


def test_a_full_sync_replaces_everything(index: ProfileSearch) -> None:
    for snapshot in (8, 9, 10):
        index.sync(profiles(PEOPLE[3:5]), [], full=True, snapshot_id=snapshot)
    assert ids(index.search("smith")) == ["joanna"]
    assert ids(index.search("jose")) == ["jose"]
    assert index.search("", filters={"country": "US"}).total == 0
    assert index.synced_snapshot() == 10


def test_an_incremental_sync_needs_an_index(open_index: Opener) -> None:
    search = open_index("new")
    with pytest.raises(SearchRebuildNeededError, match="does not exist"):
        search.sync(profiles(PEOPLE), [], full=False, snapshot_id=1)
    assert search.synced_snapshot() is None


@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        (pa.table({"email": ["a@b.c"]}), ValueError, "no profile_id column"),
        (pa.table({"profile_id": ["a", None]}), ValueError, "have no profile_id"),
        (pa.table({"profile_id": ["a", "a"]}), ValueError, "repeat"),
    ],
)
def test_a_bad_delta_changes_nothing(
    index: ProfileSearch, table: pa.Table, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        index.sync(table, [], full=True, snapshot_id=8)
    assert index.synced_snapshot() == 7
    assert ids(index.search("John Smith"))[0] == "john"


def test_a_bad_snapshot_id_or_deleted_id_is_refused(index: ProfileSearch) -> None:
    with pytest.raises(TypeError):
        index.sync(profiles([]), [], full=False, snapshot_id="8")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        index.sync(profiles([]), [8], full=False, snapshot_id=8)  # type: ignore[list-item]
    assert index.synced_snapshot() == 7


# --- readers -------------------------------------------------------------------------------


def test_a_reader_sees_each_commit_of_another_writer(
    index: ProfileSearch, open_index: Opener
) -> None:
    reader = open_index()
    assert ids(reader.search("mei")) == []
    index.sync(
        profiles([{"profile_id": "id-mei", "first_name": "Mei"}]), [], full=False, snapshot_id=8
    )
    assert ids(reader.search("mei")) == ["mei"]
    index.sync(profiles([]), ["id-mei"], full=False, snapshot_id=9)
    assert ids(reader.search("mei")) == []
    index.sync(profiles(PEOPLE[3:4]), [], full=True, snapshot_id=10)  # a new generation
    assert ids(reader.search("jose")) == ["jose"]
    assert reader.search("smith").total == 0
    assert reader.synced_snapshot() == 10


def test_a_closed_reader_opens_again(index: ProfileSearch) -> None:
    assert ids(index.search("jose")) == ["jose"]
    index.close()
    assert ids(index.search("jose")) == ["jose"]


@pytest.mark.parametrize("tenant", ["../acme", "Acme", "a/b", ""])
def test_a_bad_tenant_name_is_refused(open_index: Opener, tenant: str) -> None:
    with pytest.raises(InvalidNameError):
        open_index(tenant)


# --- Tantivy's own files -------------------------------------------------------------------


def test_a_full_sync_keeps_the_current_and_the_previous_generation(
    tantivy: TantivyProfileSearch,
) -> None:
    for snapshot in (8, 9, 10):
        tantivy.sync(profiles(PEOPLE[3:5]), [], full=True, snapshot_id=snapshot)
    assert sorted(p.name for p in tantivy.folder.glob("gen-*")) == ["gen-000003", "gen-000004"]


def test_the_pointer_counts_the_documents(tantivy: TantivyProfileSearch) -> None:
    new = {"profile_id": "id-mei", "first_name": "Mei"}
    tantivy.sync(profiles([new]), ["id-jon"], full=False, snapshot_id=8)
    pointer = tantivy.pointer()
    assert pointer is not None
    assert pointer.documents == len(PEOPLE) + 1 - 1


def test_a_refused_delta_leaves_no_generation_behind(tantivy: TantivyProfileSearch) -> None:
    with pytest.raises(ValueError, match="repeat"):
        tantivy.sync(pa.table({"profile_id": ["a", "a"]}), [], full=True, snapshot_id=8)
    assert sorted(p.name for p in tantivy.folder.glob("gen-*")) == ["gen-000001"]


def test_an_index_of_an_older_format_needs_a_full_sync(tantivy: TantivyProfileSearch) -> None:
    pointer_path = tantivy.folder / POINTER
    data = json.loads(pointer_path.read_text())
    pointer_path.write_text(json.dumps({**data, "format": 0}))
    assert tantivy.synced_snapshot() is None
    with pytest.raises(SearchRebuildNeededError, match="format 0"):
        tantivy.search("john")
    with pytest.raises(SearchRebuildNeededError, match="older format"):
        tantivy.sync(profiles(PEOPLE), [], full=False, snapshot_id=8)
    tantivy.sync(profiles(PEOPLE), [], full=True, snapshot_id=8)
    assert ids(tantivy.search("john smith"))[0] == "john"


def test_a_reader_sees_a_commit_its_pointer_does_not_show_yet(
    tantivy: TantivyProfileSearch,
) -> None:
    """A writer that stopped between its Tantivy commit and the pointer: the commit shows."""
    reader = TantivyProfileSearch(tantivy.folder)
    assert reader.search("mei").total == 0
    pointer = (tantivy.folder / POINTER).read_bytes()
    tantivy.sync(
        profiles([{"profile_id": "id-mei", "first_name": "Mei"}]), [], full=False, snapshot_id=8
    )
    (tantivy.folder / POINTER).write_bytes(pointer)  # as it was before the sync
    assert ids(reader.search("mei")) == ["mei"]
    assert reader.synced_snapshot() == 7


def test_a_vanished_generation_is_an_unavailable_index(tantivy: TantivyProfileSearch) -> None:
    reader = TantivyProfileSearch(tantivy.folder)
    for generation in tantivy.folder.glob("gen-*"):
        shutil.rmtree(generation)
    with pytest.raises(SearchIndexUnavailableError, match="cannot be read"):
        reader.search("john")


def test_open_search_uses_the_tenant_folder_and_country(tmp_path: Path, clean_env: None) -> None:
    settings = load_settings(root=tmp_path, tenants={"acme_uk": {"default_country": "GB"}})
    search = open_search(settings, "acme_uk")
    assert isinstance(search, TantivyProfileSearch)
    assert search.folder == tmp_path / "state" / "search" / "acme_uk"
    assert search.default_country == "GB"
    search.sync(profiles(PEOPLE), [], full=True, snapshot_id=3)
    assert (tmp_path / "state" / "search" / "acme_uk" / POINTER).exists()
    assert ids(open_search(settings, "acme_uk").search("020 7946 0958")) == ["joanna"]
    assert open_search(settings, "other").search("joanna").hits == ()  # one index per tenant


@pytest.mark.parametrize("tenant", ["../acme", "Acme", "a/b", ""])
def test_a_bad_tenant_name_has_no_folder(tmp_path: Path, tenant: str) -> None:
    with pytest.raises(InvalidNameError):
        search_folder(tmp_path, tenant)
