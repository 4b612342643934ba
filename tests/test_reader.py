"""The reference reader (solutions/) fails on a broken root with a typed error naming the path.

Each test damages a copy of a built root the way real roots get damaged and checks both the
error's type (from fakeroot_builder.errors) and that the culprit path is in the message.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

from fakeroot_builder import corrupt, errors
from fakeroot_builder.cache import BuiltRoot, cached_root, copy_root
from fakeroot_builder.errors import (
    CorruptJSONError,
    DanglingLinkError,
    DockerLabError,
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    RootError,
    TooManyLowersError,
    UnknownReferenceError,
)
from fakeroot_builder.plan import CANONICAL_SEED
from solutions.lab1 import layerdb
from solutions.lab2 import overlay

NGINX = "nginx:latest"


@pytest.fixture(scope="module")
def small() -> BuiltRoot:
    """nginx (7 layers on the debian base) and busybox, with nginx's containers: cheap to copy."""
    return cached_root(seed=CANONICAL_SEED, images=[NGINX, "busybox:latest"])


@pytest.fixture
def broken(small, tmp_path) -> BuiltRoot:
    return copy_root(small, tmp_path / "root")


def layerdb_entry(root: Path, db_id: str) -> Path:
    return root / "image/overlay2/layerdb/sha256" / db_id.removeprefix("sha256:")


def raised(exc_info: pytest.ExceptionInfo, error: type, path: Path | str) -> None:
    """The error is exactly ``error`` (a RootError), names ``path`` and is catchable as DockerLabError."""
    exc = exc_info.value
    assert type(exc) is error, f"raised {type(exc).__name__}: {exc}"
    assert isinstance(exc, RootError) and isinstance(exc, DockerLabError)
    assert str(path) in str(exc), f"{exc!s} does not name {path}"
    assert exc.path == str(path)


def test_every_error_of_the_tree_is_a_dockerlab_error():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass) if obj.__module__ == errors.__name__]
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert issubclass(cls, DockerLabError), cls


def test_missing_parent_entry_is_a_missing_entry_error_naming_that_entry(broken):
    nginx = broken.truth.image(NGINX)
    gone = layerdb_entry(broken.path, nginx.layers[2].db_id)
    shutil.rmtree(gone)
    with pytest.raises(MissingEntryError) as exc_info:
        layerdb.image_stack(str(broken.path), NGINX)
    raised(exc_info, MissingEntryError, gone)


def test_parent_cycle_is_a_parent_cycle_error_naming_a_parent_file(broken):
    nginx = broken.truth.image(NGINX)
    corrupt.parent_cycle(broken.path, broken.truth, nginx.layers[0], nginx.layers[-1])
    with pytest.raises(ParentCycleError) as exc_info:
        layerdb.image_stack(str(broken.path), NGINX)
    cycle = {str(layerdb_entry(broken.path, layer.db_id) / "parent") for layer in nginx.layers}
    assert type(exc_info.value) is ParentCycleError
    assert exc_info.value.path in cycle and exc_info.value.path in str(exc_info.value)


def test_missing_cache_dir_is_a_missing_entry_error_from_layer_diff_dir_and_read_link(broken):
    layer = broken.truth.image(NGINX).layers[3]
    corrupt.remove_cache_dir(broken.path, broken.truth, layer)
    cache_dir = broken.path / "overlay2" / layer.cache_id
    with pytest.raises(MissingEntryError) as exc_info:
        layerdb.layer_diff_dir(str(broken.path), NGINX, layer.layer_id)
    raised(exc_info, MissingEntryError, cache_dir / "diff")
    with pytest.raises(MissingEntryError) as exc_info:
        overlay.read_link(str(broken.path), layer.cache_id)
    raised(exc_info, MissingEntryError, cache_dir)


def test_dangling_short_link_is_a_dangling_link_error_naming_the_link(broken):
    layers = broken.truth.image(NGINX).layers
    base, top = layers[0], layers[-1]
    corrupt.dangle_link(broken.path, broken.truth, base)
    link = broken.path / "overlay2" / "l" / base.link
    with pytest.raises(DanglingLinkError) as exc_info:
        overlay.lower_chain(str(broken.path), top.cache_id)
    raised(exc_info, DanglingLinkError, link)
    with pytest.raises(DanglingLinkError) as exc_info:
        overlay.resolve_link(str(broken.path), base.link)
    raised(exc_info, DanglingLinkError, link)


def test_short_link_to_a_removed_diff_is_a_dangling_link_error(broken):
    layer = broken.truth.image(NGINX).layers[1]
    shutil.rmtree(broken.path / "overlay2" / layer.cache_id / "diff")
    with pytest.raises(DanglingLinkError) as exc_info:
        overlay.resolve_link(str(broken.path), layer.link)
    raised(exc_info, DanglingLinkError, broken.path / "overlay2" / "l" / layer.link)


def test_unparsable_cache_id_is_a_malformed_id_error_naming_the_cache_id_file(broken):
    layer = broken.truth.image(NGINX).layers[2]
    corrupt.unparse_cache_id(broken.path, broken.truth, layer)
    path = layerdb_entry(broken.path, layer.db_id) / "cache-id"
    with pytest.raises(MalformedIdError) as exc_info:
        layerdb.read_layer(str(broken.path), layer.db_id)
    raised(exc_info, MalformedIdError, path)
    with pytest.raises(MalformedIdError) as exc_info:
        layerdb.layer_diff_dir(str(broken.path), NGINX, layer.layer_id)
    raised(exc_info, MalformedIdError, path)


def test_truncated_image_config_is_a_corrupt_json_error_naming_the_config(broken):
    nginx = broken.truth.image(NGINX)
    corrupt.truncate_config(broken.path, broken.truth, nginx.image_id)
    path = broken.path / "image/overlay2/imagedb/content/sha256" / nginx.image_id.removeprefix("sha256:")
    with pytest.raises(CorruptJSONError) as exc_info:
        layerdb.image_layer_ids(str(broken.path), NGINX)
    raised(exc_info, CorruptJSONError, path)


def test_truncated_repositories_json_is_a_corrupt_json_error_naming_it(broken):
    path = broken.path / "image/overlay2/repositories.json"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptJSONError) as exc_info:
        layerdb.resolve_image(str(broken.path), NGINX)
    raised(exc_info, CorruptJSONError, path)


def test_more_than_128_lowers_is_a_too_many_lowers_error_naming_the_lower_file(broken):
    layer = broken.truth.image(NGINX).layers[-1]
    corrupt.too_many_lowers(broken.path, broken.truth, layer)
    path = broken.path / "overlay2" / layer.cache_id / "lower"
    assert len(path.read_text().split(":")) > 128
    with pytest.raises(TooManyLowersError) as exc_info:
        overlay.lower_chain(str(broken.path), layer.cache_id)
    raised(exc_info, TooManyLowersError, path)


def test_exactly_128_lowers_is_still_allowed(broken):
    layer = broken.truth.image(NGINX).layers[-1]
    path = broken.path / "overlay2" / layer.cache_id / "lower"
    path.write_text(":".join([f"l/{layer.lower[0]}"] * 128))
    assert len(overlay.lower_chain(str(broken.path), layer.cache_id)) == 128


def test_unknown_image_is_an_unknown_reference_error(small):
    with pytest.raises(UnknownReferenceError) as exc_info:
        layerdb.resolve_image(str(small.path), "no-such-image:1")
    assert isinstance(exc_info.value, DockerLabError)
    assert "no-such-image" in str(exc_info.value)
    raised(exc_info, UnknownReferenceError, small.path / "image/overlay2/repositories.json")


def test_ambiguous_short_id_is_an_unknown_reference_error(broken):
    image_id = broken.truth.image(NGINX).image_id.removeprefix("sha256:")
    content = broken.path / "image/overlay2/imagedb/content/sha256"
    twin = image_id[:12] + ("0" if image_id[12] != "0" else "1") * 52
    (content / twin).write_bytes((content / image_id).read_bytes())
    with pytest.raises(UnknownReferenceError) as exc_info:
        layerdb.resolve_image(str(broken.path), image_id[:12])
    raised(exc_info, UnknownReferenceError, content)
    assert "ambiguous" in str(exc_info.value)
    # one character more is unique again
    assert layerdb.resolve_image(str(broken.path), image_id[:13]) == "sha256:" + image_id


def test_unknown_container_is_an_unknown_reference_error(small):
    with pytest.raises(UnknownReferenceError) as exc_info:
        overlay.mount_options(str(small.path), "no_such_container")
    raised(exc_info, UnknownReferenceError, small.path / "containers")


def test_broken_canonical_copy_still_fails_with_a_typed_error(canonical, broken_copy):
    """The same on the full canonical root: the deep image's missing middle entry."""
    copy = broken_copy(canonical)
    deep = copy.truth.image("deep:latest")
    gone = layerdb_entry(copy.path, deep.layers[len(deep.layers) // 2].db_id)
    shutil.rmtree(gone)
    with pytest.raises(MissingEntryError) as exc_info:
        layerdb.stack_matches_config(str(copy.path), "deep:latest")
    raised(exc_info, MissingEntryError, gone)
    # the reader reports, rather than raises, the layers it cannot follow
    assert deep.layers[len(deep.layers) // 2 + 1].db_id in overlay.check_lowers(str(copy.path))


@pytest.mark.parametrize("damage, error", [
    (lambda p: p.write_text("[]"), errors.CorruptJSONError),
    (lambda p: p.write_text('{"Repositories": []}'), errors.CorruptJSONError),
    (lambda p: p.write_bytes(b"\xff\xfe{"), errors.CorruptFileError),
    (lambda p: (p.unlink(), p.mkdir()), errors.MissingEntryError),
], ids=["a-list", "repositories-not-a-map", "not-utf8", "a-directory"])
def test_a_repositories_json_of_the_wrong_shape_is_a_typed_error_naming_it(broken, damage, error):
    path = broken.path / "image/overlay2/repositories.json"
    damage(path)
    with pytest.raises(error) as info:
        layerdb.resolve_image(str(broken.path), "nginx")
    assert str(path) in str(info.value)
