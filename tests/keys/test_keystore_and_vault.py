"""Data keys wrapped by the root key, rotation, crypto-shredding and the vault."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from veil.errors import InputError, IntegrityError, KeyMaterialError, KeyShreddedError
from veil.keys import KeyStore, RootKey, Vault, env_variable
from veil.store import create_engine_for, upgrade


@pytest.fixture
def root() -> RootKey:
    return RootKey(os.urandom(32))


@pytest.fixture
def store(engine: Engine, root: RootKey) -> KeyStore:
    return KeyStore(engine, root)


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=40))
def test_seal_then_open_is_the_identity(
    plaintext: bytes, aad: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('k') / 'k.db'}")
    upgrade(engine)
    store = KeyStore(engine, RootKey(os.urandom(32)))
    assert store.open("vault", store.seal("vault", plaintext, aad), aad) == plaintext
    engine.dispose()


def test_data_keys_are_stored_only_wrapped(store: KeyStore, engine: Engine) -> None:
    key_id, material = store.data_key("vault")
    with engine.connect() as connection:
        wrapped = connection.execute(text("SELECT wrapped FROM data_keys")).scalar_one()
    assert material not in bytes(wrapped)
    assert store.data_key("vault") == (key_id, material)


def test_wrong_purpose_or_context_does_not_open(store: KeyStore) -> None:
    blob = store.seal("vault", b"sk-secret", b"openai")
    with pytest.raises(IntegrityError):
        store.open("vault", blob, b"anthropic")
    with pytest.raises(IntegrityError):
        store.open("pseudonym-map", blob, b"openai")
    with pytest.raises(IntegrityError):
        store.open("vault", blob[:-1] + bytes([blob[-1] ^ 1]), b"openai")


def test_a_wrapped_key_moved_to_another_purpose_does_not_unwrap(
    store: KeyStore, engine: Engine
) -> None:
    store.data_key("vault")
    map_key_id, _ = store.data_key("pseudonym-map")
    blob = store.seal("pseudonym-map", b"mapping")
    with engine.begin() as connection:
        vault_wrapped = connection.execute(
            text("SELECT wrapped FROM data_keys WHERE purpose = 'vault'")
        ).scalar_one()
        connection.execute(
            text("UPDATE data_keys SET wrapped = :w WHERE key_id = :k"),
            {"w": vault_wrapped, "k": map_key_id},
        )
    with pytest.raises(IntegrityError, match="does not unwrap"):
        store.open("pseudonym-map", blob)


def test_root_rotation_rewraps_keys_and_keeps_data_readable(
    store: KeyStore, engine: Engine, root: RootKey
) -> None:
    blob = store.seal("vault", b"sk-live", b"x")
    new_root = RootKey(os.urandom(32))
    assert store.rotate_root(new_root) == 1
    assert store.references(root.key_id) == 0
    assert KeyStore(engine, new_root).open("vault", blob, b"x") == b"sk-live"
    with pytest.raises(KeyMaterialError, match=f"wrapped by root key {new_root.key_id}"):
        KeyStore(engine, root).open("vault", blob, b"x")
    assert store.rotate_root(new_root) == 0  # resumable: nothing left under the old key


def test_shredding_a_subject_makes_its_data_unreadable_even_from_a_backup(
    store: KeyStore,
) -> None:
    backup_copy = store.seal("subject", b"Alice's address", subject="customer-42")
    other = store.seal("subject", b"Bob's address", subject="customer-7")
    assert store.shred("customer-42") == 1
    with pytest.raises(KeyMaterialError, match="shredded"):
        store.open("subject", backup_copy)
    assert store.open("subject", other) == b"Bob's address"


def test_data_sealed_for_a_subject_after_shredding_gets_a_fresh_key(store: KeyStore) -> None:
    before = store.seal("subject", b"old address", subject="customer-42")
    store.shred("customer-42")
    after = store.seal("subject", b"new address", subject="customer-42")
    assert store.open("subject", after) == b"new address"
    with pytest.raises(KeyShreddedError):
        store.open("subject", before)
    assert store.shred("customer-42") == 1  # the fresh key only


def test_an_unknown_key_id_names_it(store: KeyStore, engine: Engine) -> None:
    blob = store.seal("vault", b"x")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM data_keys"))
    with pytest.raises(KeyMaterialError, match="dk-"):
        store.open("vault", blob)


def test_vault_set_get_list_remove(store: KeyStore, engine: Engine) -> None:
    vault = Vault(engine, store, environ={})
    vault.set("openai", "sk-proj-first")
    vault.set("openai", "sk-proj-second")  # one record per name, replaced
    assert vault.get("openai") == "sk-proj-second"
    assert [entry.name for entry in vault.list()] == ["openai"]
    with engine.connect() as connection:
        sealed = connection.execute(text("SELECT sealed FROM vault_secrets")).scalar_one()
    assert b"sk-proj" not in bytes(sealed)
    assert vault.remove("openai") is True
    with pytest.raises(InputError, match="veil vault set openai"):
        vault.get("openai")


def test_environment_variable_overrides_the_vault(store: KeyStore, engine: Engine) -> None:
    assert env_variable("openai") == "OPENAI_API_KEY"
    vault = Vault(engine, store, environ={"OPENAI_API_KEY": "sk-from-env"})
    vault.set("openai", "sk-from-vault")
    assert vault.get("openai") == "sk-from-env"
    assert vault.source("openai") == "environment"


def test_rotation_keeps_the_previous_value_until_commit(store: KeyStore, engine: Engine) -> None:
    vault = Vault(engine, store, environ={})
    vault.set("anthropic", "old")
    vault.rotate("anthropic", "new")
    assert vault.get("anthropic") == "new"
    assert vault.list()[0].rotation_pending is True
    with pytest.raises(InputError, match="already pending"):
        vault.rotate("anthropic", "newer")
    vault.rollback_rotation("anthropic")
    assert vault.get("anthropic") == "old"
    vault.rotate("anthropic", "new")
    vault.commit_rotation("anthropic")
    assert vault.get("anthropic") == "new"
    with pytest.raises(InputError, match="No rotation"):
        vault.commit_rotation("anthropic")


def test_bad_names_and_empty_values_are_refused(store: KeyStore, engine: Engine) -> None:
    vault = Vault(engine, store, environ={})
    with pytest.raises(InputError, match="Invalid secret name"):
        vault.set("Open AI!", "x")
    with pytest.raises(InputError, match="empty"):
        vault.set("openai", "")


def test_reencrypt_moves_vault_data_to_a_fresh_key_and_destroys_the_old(
    store: KeyStore, engine: Engine
) -> None:
    vault = Vault(engine, store, environ={})
    vault.set("openai", "sk-one")
    vault.set("anthropic", "sk-two")
    vault.rotate("anthropic", "sk-three")
    with engine.connect() as connection:
        before = connection.execute(text("SELECT sealed FROM vault_secrets")).scalars().all()
    old_id, new_id, count = vault.reencrypt()
    assert count == 2
    assert old_id != new_id
    assert vault.get("openai") == "sk-one"
    assert vault.get("anthropic") == "sk-three"
    vault.rollback_rotation("anthropic")
    assert vault.get("anthropic") == "sk-two"
    with pytest.raises(KeyMaterialError, match="shredded"):
        store.open("vault", bytes(before[0]), b"vault\0anthropic")
    assert vault.reencrypt()[2] == 2  # again: the retired key names do not collide


def test_a_failed_reencrypt_changes_nothing(store: KeyStore, engine: Engine) -> None:
    vault = Vault(engine, store, environ={})
    vault.set("openai", "sk-one")

    def broken(_connection: object, _convert: object) -> int:
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        store.reencrypt("vault", broken)  # type: ignore[arg-type]
    assert vault.get("openai") == "sk-one"
