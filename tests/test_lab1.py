"""Lab 1 — the layer DB. Graded: expected answers come from the builder's ground truth.

Run: ``tox -e lab1`` (your code) · ``tox -e lab1 -- -k task3`` (one task) · ``tox -e solutions``.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from fakeroot_builder import corrupt
from fakeroot_builder.cache import graded_root
from fakeroot_builder.errors import (
    CorruptJSONError,
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    UnknownReferenceError,
)

task = pytest.mark.task

#: The ids found on a real host after `docker pull nginx` (shared/course): DiffIDs and the
#: db ids the layer DB had for them. A fact from outside this project to check ChainIDs against.
COURSE_LAYER_IDS = [
    "sha256:311627f8702d2d97e63b916cad711aa9f962a1f20da5572d68b8f223ff051e73",
    "sha256:674ca5344f959090515e9eac79055d8630851b21bbd584ac32765315284c05c5",
    "sha256:7f8881cae5296e2ef0103706a326235494b5f1dcd9ea960656165cf7643ddd47",
    "sha256:f21128d548a5122f430a58f123deb9c8b80f70b9fc98df280a9619b7e38b6a32",
    "sha256:dca0e6f80e8df5d85d45426101fefba3d41abe4fc90be994074066d4b135bef5",
    "sha256:d9664e6da0f787fb8c04e80f1e731223f8ef93f6e097e934442e1792da614dff",
    "sha256:ed44ff7a11e0afd3e5b58c730514faeac7d6a12faff3f52aa33d33e0369e7aad",
]
COURSE_DB_IDS = [
    "sha256:311627f8702d2d97e63b916cad711aa9f962a1f20da5572d68b8f223ff051e73",
    "sha256:a0e6c2974935e56e8d57d6fea041399b290da1566d82ea1a7d9c3ec7ef60a366",
    "sha256:9f55692205d904037fbc69a1d59354665af3c0c2a767b5e799e719170085bc11",
    "sha256:a3169fdf28b9329e3f1882c095bf11e12a465419c759169682ca706de81bef84",
    "sha256:a216b497301a9fc6283077c0906140e22b8f3a67ba92ab6253f036f48e1ff4b1",
    "sha256:89b7e61557f3502dc01aeae499b451574376c3e4c46e49294c72e22cd2d9634c",
    "sha256:807d78e4cdc589c2cdefb7bb6049a31bcc7bf0f90f335a8a8de1abeb0e6a3993",
]


def _short(name: str) -> str:
    """How a user types an image: ``nginx`` for ``nginx:latest``."""
    return name.removesuffix(":latest")


# -- task 1 --------------------------------------------------------------------------------------


@task("lab1", 1)
def test_layer_ids_of_every_image_are_its_config_diff_ids(lab1, root, check):
    for image in root.truth.images:
        check(lab1.image_layer_ids, root, _short(image.name), expect=list(image.layer_ids))


@task("lab1", 1)
def test_a_name_resolves_to_the_image_id(lab1, root, check):
    for image in root.truth.images:
        check(lab1.resolve_image, root, image.name, expect=image.image_id)


@task("lab1", 1)
def test_short_and_full_image_ids_resolve_to_the_same_image(lab1, root, check):
    image = root.truth.image("nginx:latest")
    for ref in (image.image_id, image.image_id[7:], image.image_id[7:19]):
        check(lab1.resolve_image, root, ref, expect=image.image_id)


@task("lab1", 1)
def test_digest_and_registry_qualified_references_resolve(lab1, root, check):
    image = root.truth.image("nginx:latest")
    digest_ref = next(r for r in image.refs if "@" in r)
    for ref in (digest_ref, "docker.io/library/nginx:latest", "index.docker.io/library/nginx", "nginx:1.25"):
        check(lab1.resolve_image, root, ref, expect=image.image_id)


@task("lab1", 1)
def test_every_reference_of_every_image_resolves_to_it(lab1, root, check):
    """Tags and digest references alike: ``nginx@<nginx:alpine's digest>`` is nginx:alpine."""
    refs = [(ref, image) for image in root.truth.images for ref in image.refs]
    assert any("@" in ref for ref, _ in refs)
    for ref, image in refs:
        check(lab1.resolve_image, root, ref, expect=image.image_id)


def _shared_prefix(ids):
    """The longest prefix two of ``ids`` share (bare hex), and the ids sharing it."""
    best, pair = "", []
    for a in ids:
        for b in ids:
            if a < b:
                n = len(os.path.commonprefix([a, b]))
                if n > len(best):
                    best, pair = a[:n], [a, b]
    return best, [i for i in ids if i.startswith(best)] if best else pair


@task("lab1", 1)
def test_a_short_id_two_images_share_is_ambiguous(lab1, root, small, broken_copy, check):
    ids = [image.image_id[7:] for image in root.truth.images]
    prefix, sharing = _shared_prefix(ids)
    if prefix:  # found in the tree
        check.raises(lab1.resolve_image, root, prefix, error=UnknownReferenceError, mentions=prefix)
        for image_hex in sharing:  # one character more is unique again
            short = image_hex[: len(prefix) + 1]
            if sum(i.startswith(short) for i in ids) == 1:
                check(lab1.resolve_image, root, short, expect="sha256:" + image_hex)
    # and made: a second config whose name starts with the same 12 characters as nginx's
    broken = broken_copy(small)
    image = broken.truth.image("nginx:latest")
    check(lab1.resolve_image, broken, image.image_id[7:19], expect=image.image_id)  # before the damage
    content = broken.path / "image/overlay2/imagedb/content/sha256"
    twin = image.image_id[7:19] + ("f" if image.image_id[19] != "f" else "e") * 52
    (content / twin).write_bytes((content / image.image_id[7:]).read_bytes())
    check.damaged(f"imagedb/content/sha256/ holds a second config whose name starts with {image.image_id[7:19]}")
    check.raises(lab1.resolve_image, broken, image.image_id[7:19], error=UnknownReferenceError)
    check(lab1.resolve_image, broken, image.image_id, expect=image.image_id)


@task("lab1", 1)
def test_an_unknown_image_is_an_error_naming_it(lab1, root, check):
    check.raises(lab1.resolve_image, root, "no-such-image:1", error=UnknownReferenceError, mentions="no-such-image")


@task("lab1", 1)
def test_a_broken_repositories_json_or_config_is_an_error_naming_the_file(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    store = broken.path / "image/overlay2"
    image = broken.truth.image("nginx:latest")
    check(lab1.resolve_image, broken, next(r for r in image.refs if r.startswith("nginx:")), expect=image.image_id)
    repos = store / "repositories.json"
    text = repos.read_text()
    repos.write_text(text.replace(image.image_id, "sha256:not-an-id"))
    check.damaged("repositories.json: every reference of nginx:latest now points at 'sha256:not-an-id'")
    check.raises(lab1.resolve_image, broken, next(r for r in image.refs if r.startswith("nginx:")),
                 error=MalformedIdError, mentions="image/overlay2/repositories.json")
    repos.write_text('{"Repositories": ["nginx"]}')
    check.damaged('repositories.json now holds {"Repositories": ["nginx"]}')
    check.raises(lab1.resolve_image, broken, "nginx", error=CorruptJSONError, mentions="image/overlay2/repositories.json")
    repos.unlink()  # a daemon that never pulled: no repositories.json; ids still resolve
    check(lab1.resolve_image, broken, image.image_id, expect=image.image_id)
    check.raises(lab1.resolve_image, broken, "nginx", error=UnknownReferenceError, mentions="nginx")
    repos.write_text("{}")  # a daemon whose repositories.json has no repositories yet
    check(lab1.resolve_image, broken, image.image_id[7:19], expect=image.image_id)
    check.raises(lab1.resolve_image, broken, "nginx", error=UnknownReferenceError, mentions="nginx")
    repos.unlink()
    config = store / "imagedb/content/sha256" / image.image_id[7:]
    doc = json.loads(config.read_text())
    doc["rootfs"]["diff_ids"][1] = "sha256:short"
    config.write_text(json.dumps(doc))
    check.damaged(f"the config of nginx:latest: its second diff id is now 'sha256:short'")
    check.raises(lab1.image_layer_ids, broken, image.image_id, error=MalformedIdError, mentions=f"imagedb/content/sha256/{image.image_id[7:]}")
    del doc["rootfs"]
    config.write_text(json.dumps(doc))
    check.damaged("the config of nginx:latest lost its rootfs")
    check.raises(lab1.image_layer_ids, broken, image.image_id, error=CorruptJSONError, mentions=f"imagedb/content/sha256/{image.image_id[7:]}")
    shutil.rmtree(store / "imagedb")
    check.damaged("image/overlay2/imagedb/ was removed (a daemon that never stored an image)")
    check.raises(lab1.resolve_image, broken, image.image_id[7:19], error=UnknownReferenceError, mentions=image.image_id[7:19])


@task("lab1", 1)
def test_image_refs_lists_every_tag_and_digest_of_an_image(lab1, root, check):
    for image in root.truth.images:
        check(lab1.image_refs, root, image.image_id, expect=sorted(image.refs))


# -- task 2 --------------------------------------------------------------------------------------


def _entry(layer):
    return {
        "db_id": layer.db_id,
        "layer_id": layer.layer_id,
        "cache_id": layer.cache_id,
        "parent": layer.parent,
        "size": layer.size,
    }


@task("lab1", 2)
def test_every_layer_db_entry_reads_back_as_written(lab1, root, check):
    for layer in root.truth.layers().values():
        check(lab1.read_layer, root, layer.db_id, expect=_entry(layer))


@task("lab1", 2)
def test_a_base_layer_has_no_parent(lab1, root, check):
    base = root.truth.image("busybox:latest").layers[0]
    check(lab1.read_layer, root, base.db_id, expect=_entry(base))


@task("lab1", 2)
def test_a_missing_layer_db_entry_is_an_error(lab1, root, check):
    absent = "sha256:" + "0" * 64
    assert absent not in root.truth.layers()
    check.raises(lab1.read_layer, root, absent, error=MissingEntryError, mentions=f"{root.path}/image/overlay2/layerdb/sha256/{'0' * 64}")


@task("lab1", 2)
def test_a_layer_db_entry_without_its_cache_id_file_is_an_error(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    layer = broken.truth.image("nginx:latest").layers[2]
    check(lab1.read_layer, broken, layer.db_id, expect=_entry(layer))  # before the damage
    (broken.path / "image/overlay2/layerdb/sha256" / layer.db_id[7:] / "cache-id").unlink()
    check.damaged(f"layer 3 of nginx:latest ({layer.db_id[:19]}…) lost its cache-id file")
    check.raises(lab1.read_layer, broken, layer.db_id, error=MissingEntryError, mentions=f"layerdb/sha256/{layer.db_id[7:]}/cache-id")


@task("lab1", 2)
def test_a_malformed_layer_db_file_is_an_error_naming_it(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    check.raises(lab1.read_layer, broken, "not-a-db-id", error=MalformedIdError, mentions="not-a-db-id")
    layers = broken.truth.image("nginx:latest").layers
    for layer, name, value in ((layers[1], "cache-id", "not-a-cache-id"), (layers[2], "size", "12kB"),
                               (layers[3], "parent", "sha256:nope"), (layers[4], "diff", "nope")):
        check(lab1.read_layer, broken, layer.db_id, expect=_entry(layer))  # before the damage
        (broken.path / "image/overlay2/layerdb/sha256" / layer.db_id[7:] / name).write_text(value)
        check.damaged(f"layer {layers.index(layer) + 1} of nginx:latest: its {name} file now holds {value!r}")
        check.raises(lab1.read_layer, broken, layer.db_id, error=MalformedIdError, mentions=f"layerdb/sha256/{layer.db_id[7:]}/{name}")


# -- task 3 --------------------------------------------------------------------------------------


@task("lab1", 3)
def test_chain_ids_of_the_course_nginx_match_the_real_layer_db(lab1, check):
    check(lab1.chain_ids, COURSE_LAYER_IDS, expect=COURSE_DB_IDS)


@task("lab1", 3)
def test_db_id_of_the_base_layer_is_its_layer_id(lab1, root, check):
    for image in root.truth.images:
        check(lab1.chain_ids, list(image.layer_ids[:1]), expect=[image.layers[0].db_id])


@task("lab1", 3)
def test_chain_ids_of_every_image_are_its_db_ids(lab1, root, check):
    for image in root.truth.images:
        check(lab1.chain_ids, list(image.layer_ids), expect=list(image.db_ids))


@task("lab1", 3)
def test_one_layer_id_on_two_parents_has_two_db_ids(lab1, root, check):
    layers = root.truth.layers().values()
    by_layer: dict[str, list[str]] = {}
    for layer in layers:
        by_layer.setdefault(layer.layer_id, []).append(layer.db_id)
    shared = {k: sorted(v) for k, v in by_layer.items() if len(v) > 1}
    assert shared, "the catalogue must hold a layer id under two db ids"
    for layer_id, db_ids in shared.items():
        check(lab1.db_ids_of_layer, root, layer_id, expect=db_ids)


@task("lab1", 3)
def test_db_id_in_an_image_is_the_one_of_its_own_stack(lab1, root, check):
    for name in ("nginx:latest", "nginx:alpine", "redis:7"):
        image = root.truth.image(name)
        for layer in image.layers:
            check(lab1.db_id_in_image, root, name, layer.layer_id, expect=layer.db_id)


@task("lab1", 3)
def test_a_layer_of_another_image_has_no_db_id_in_this_one(lab1, root, check):
    nginx, alpine = root.truth.image("nginx:latest"), root.truth.image("alpine:3.19")
    foreign = next(x for x in alpine.layer_ids if x not in nginx.layer_ids)
    check.raises(lab1.db_id_in_image, root, "nginx", foreign, error=UnknownReferenceError, mentions=foreign)


# -- task 4 --------------------------------------------------------------------------------------


@task("lab1", 4)
def test_each_layer_of_nginx_lives_in_overlay2_cache_id_diff(lab1, root, check):
    import os

    image = root.truth.image("nginx:latest")
    for layer in image.layers:
        check(
            lab1.layer_diff_dir, root, "nginx", layer.layer_id,
            expect=str(root.path / layer.diff_dir),
            normalize=os.path.normpath,
        )


@task("lab1", 4)
def test_the_shared_base_layer_is_one_directory_for_four_images(lab1, root, check):
    import os

    names = ("debian:bookworm-slim", "nginx:latest", "redis:7", "python:3.12-slim")
    base = root.truth.image(names[0]).layers[0]
    for name in names:
        check(lab1.layer_diff_dir, root, name, base.layer_id, expect=str(root.path / base.diff_dir), normalize=os.path.normpath)


@task("lab1", 4)
def test_a_missing_cache_directory_is_an_error_naming_it(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    layer = broken.truth.image("nginx:latest").layers[2]
    check(lab1.layer_diff_dir, broken, "nginx", layer.layer_id, expect=str(broken.path / layer.diff_dir),
          normalize=os.path.normpath)  # before the damage
    corrupt.remove_cache_dir(broken.path, broken.truth, layer)
    check.damaged(f"overlay2/{layer.cache_id[:12]}… (layer 3 of nginx:latest) was removed")
    check.raises(lab1.layer_diff_dir, broken, "nginx", layer.layer_id, error=MissingEntryError, mentions=f"{broken.path}/overlay2/{layer.cache_id}/diff")
    other = broken.truth.image("nginx:alpine").layers[0]
    check.raises(lab1.layer_diff_dir, broken, "nginx", other.layer_id, error=UnknownReferenceError, mentions=other.layer_id)


# -- task 5 --------------------------------------------------------------------------------------


@task("lab1", 5)
def test_following_parents_rebuilds_every_stack_base_first(lab1, root, check):
    for image in root.truth.images:
        check(lab1.image_stack, root, image.name, expect=list(image.db_ids))


@task("lab1", 5)
def test_an_intact_stack_matches_its_config(lab1, root, check):
    for name in ("nginx:latest", "deep:latest", "busybox:latest"):
        check(lab1.stack_matches_config, root, name, expect=True)


@task("lab1", 5)
def test_a_tampered_parent_no_longer_matches_the_config(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    image = broken.truth.image("nginx:latest")
    top, base = image.layers[-1], image.layers[0]
    check(lab1.stack_matches_config, broken, "nginx", expect=True)  # before the damage
    layerdb = broken.path / "image/overlay2/layerdb/sha256" / top.db_id[7:]
    (layerdb / "parent").write_text(base.db_id)
    check.damaged("the top layer of nginx:latest: its parent file now points at the base layer")
    check(lab1.stack_matches_config, broken, "nginx", expect=False)


@task("lab1", 5)
def test_a_parent_pointing_at_another_stack_of_the_same_depth_does_not_match(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    debian, alpine = broken.truth.image("nginx:latest"), broken.truth.image("nginx:alpine")
    assert len(debian.layers) == len(alpine.layers)
    check(lab1.stack_matches_config, broken, "nginx", expect=True)  # before the damage
    top = debian.layers[-1]
    (broken.path / "image/overlay2/layerdb/sha256" / top.db_id[7:] / "parent").write_text(alpine.layers[-2].db_id)
    check.damaged("the top layer of nginx:latest: its parent file now points at layer 6 of nginx:alpine")
    check(lab1.stack_matches_config, broken, "nginx", expect=False)


@task("lab1", 5)
def test_a_layer_entry_with_the_wrong_diff_does_not_match(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    middle = broken.truth.image("nginx:latest").layers[3]
    check(lab1.stack_matches_config, broken, "nginx", expect=True)  # before the damage
    other = broken.truth.image("nginx:alpine").layers[1].layer_id
    (broken.path / "image/overlay2/layerdb/sha256" / middle.db_id[7:] / "diff").write_text(other)
    check.damaged("layer 4 of nginx:latest: its diff file now holds layer 2 of nginx:alpine's layer id")
    check(lab1.stack_matches_config, broken, "nginx", expect=False)


@task("lab1", 5)
def test_a_parent_cycle_is_reported_not_followed_forever(lab1, small, broken_copy, check):
    broken = broken_copy(small)
    image = broken.truth.image("nginx:latest")
    check(lab1.image_stack, broken, "nginx", expect=list(image.db_ids))  # before the damage
    corrupt.parent_cycle(broken.path, broken.truth, image.layers[1], image.layers[-2])
    check.damaged("layer 2 of nginx:latest: its parent file now points at layer 6 (the walk from the top loops)")
    loop = "|".join(x.db_id[7:] for x in image.layers[1:-1])
    check.raises(lab1.image_stack, broken, "nginx", error=ParentCycleError,
                 mentions=re.compile(rf"{re.escape(str(broken.path))}/image/overlay2/layerdb/sha256/({loop})/parent\b"))


# -- task 6 --------------------------------------------------------------------------------------


@task("lab1", 6)
def test_same_pull_on_another_host_keeps_db_ids_and_changes_cache_ids(lab1, root, check):
    other = graded_root("other-host", root.truth.seed)
    for name in ("nginx:latest", "alpine:3.19"):
        a, b = root.truth.image(name), other.truth.image(name)
        rows = [
            {"layer_id": la.layer_id, "db_id_a": la.db_id, "db_id_b": lb.db_id,
             "cache_id_a": la.cache_id, "cache_id_b": lb.cache_id}
            for la, lb in zip(a.layers, b.layers)
        ]
        assert all(r["db_id_a"] == r["db_id_b"] and r["cache_id_a"] != r["cache_id_b"] for r in rows)
        check(lab1.compare_hosts, root, other, name, expect=rows)


@task("lab1", 6)
def test_different_content_means_different_db_ids(lab1, root, check):
    other = graded_root("other-content", root.truth.seed)
    a, b = root.truth.image("nginx:latest"), other.truth.image("nginx:latest")
    rows = [
        {"layer_id": la.layer_id, "db_id_a": la.db_id, "db_id_b": lb.db_id,
         "cache_id_a": la.cache_id, "cache_id_b": lb.cache_id}
        for la, lb in zip(a.layers, b.layers)
    ]
    assert all(r["db_id_a"] != r["db_id_b"] for r in rows)
    check(lab1.compare_hosts, root, other, "nginx", expect=rows)
